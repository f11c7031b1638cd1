/// One family on `/metrics`: its name, type and meaning, and where its samples come from. The families
/// themselves are listed in `MetricFamily.all`.
struct MetricFamily: Sendable {
    let name: String
    let kind: PrometheusText.Kind
    let help: String
    let source: MetricSource

    init(_ name: String, _ kind: PrometheusText.Kind, _ help: String, _ source: MetricSource) {
        self.name = name
        self.kind = kind
        self.help = help
        self.source = source
    }

    /// (label value, sample) pairs in `snapshot`, in the order shown; nil when the family is left out.
    func samples(in snapshot: MetricsSnapshot) -> [(String, String)]? {
        switch source {
        case .summedOverLoops(let labels, _), .readFromBroker(let labels, _):
            labels.values.indices.map { (labels.values[$0], String(snapshot.count(name, label: $0))) }
        case .madeFromSnapshot(_, let make):
            make(snapshot)
        }
    }
}
