extension MetricsSnapshot {
    /// The `/metrics` body: every family of `MetricFamily.all` that has samples in this snapshot, in order.
    public var prometheusText: String {
        var out = PrometheusText()
        for family in MetricFamily.all {
            guard let samples = family.samples(in: self) else { continue }
            out.family(family.name, family.kind, help: family.help)
            let label = family.source.labelName
            for (labelValue, value) in samples {
                if let label {
                    out.sample(family.name, labels: [label: labelValue], value)
                } else {
                    out.sample(family.name, value)
                }
            }
        }
        return out.text
    }
}
