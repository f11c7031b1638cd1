/// The short forms the metric table is written in.
extension MetricSource {
    /// One counter each loop keeps.
    static func loop(_ read: @escaping @Sendable (LoopMetrics) -> UInt64) -> MetricSource {
        .summedOverLoops(.none) { metrics, _ in read(metrics) }
    }

    /// Counters each loop keeps per case of `Label` (`read` gets the case's raw value).
    static func loops<Label: MetricLabel>(
        by name: String, _ label: Label.Type, _ read: @escaping @Sendable (LoopMetrics, Int) -> UInt64
    ) -> MetricSource {
        .summedOverLoops(MetricLabels(name, label), read)
    }

    /// Counters each loop keeps under fixed label values (`read` gets the value's index).
    static func loops(
        by name: String, _ values: [String], _ read: @escaping @Sendable (LoopMetrics, Int) -> UInt64
    ) -> MetricSource {
        .summedOverLoops(MetricLabels(name: name, values: values), read)
    }

    /// One of the broker's figures.
    static func broker(_ read: @escaping @Sendable (BrokerStatus) -> UInt64) -> MetricSource {
        .readFromBroker(.none) { status, _ in read(status) }
    }

    /// The broker's figures per case of `Label` (`read` gets the case's raw value).
    static func broker<Label: MetricLabel>(
        by name: String, _ label: Label.Type, _ read: @escaping @Sendable (BrokerStatus, Int) -> UInt64
    ) -> MetricSource {
        .readFromBroker(MetricLabels(name, label), read)
    }

    /// One sample made from the snapshot's server-wide figures.
    static func figure(_ value: @escaping @Sendable (MetricsSnapshot) -> String) -> MetricSource {
        .madeFromSnapshot(label: nil) { [("", value($0))] }
    }

    /// One figure of history's; the family is left out with history off.
    static func history(_ value: @escaping @Sendable (HistoryFigures) -> String) -> MetricSource {
        .madeFromSnapshot(label: nil) { snapshot in snapshot.history.map { [("", value($0))] } }
    }

    /// One sample per event loop, labelled by the loop's index.
    static func eachLoop(_ value: @escaping @Sendable (MetricsSnapshot.Loop) -> String) -> MetricSource {
        .madeFromSnapshot(label: "loop") { snapshot in
            snapshot.loops.enumerated().map { (String($0.offset), value($0.element)) }
        }
    }

    /// One sample of the process's statistics; the family is left out when they, or this figure, are unknown.
    static func process(_ value: @escaping @Sendable (ProcessStatistics) -> String?) -> MetricSource {
        .madeFromSnapshot(label: nil) { snapshot in snapshot.process.flatMap(value).map { [("", $0)] } }
    }
}
