/// Where a metric family's samples come from. Counters (per loop, or the broker's) are read into the snapshot
/// when it is taken, by family name; everything else is made from the snapshot's own figures when rendered.
enum MetricSource: Sendable {
    /// Counters each event loop keeps (one per label value, by index), summed over the loops.
    case summedOverLoops(MetricLabels, @Sendable (LoopMetrics, Int) -> UInt64)
    /// The broker's figures (one per label value, by index); zero when no broker is configured.
    case readFromBroker(MetricLabels, @Sendable (BrokerStatus, Int) -> UInt64)
    /// (label value, sample) pairs made from the snapshot; nil leaves the whole family out.
    case madeFromSnapshot(label: String?, @Sendable (MetricsSnapshot) -> [(String, String)]?)

    /// The label that tells this family's samples apart; nil for a family of one sample.
    var labelName: String? {
        switch self {
        case .summedOverLoops(let labels, _), .readFromBroker(let labels, _): labels.name
        case .madeFromSnapshot(let label, _): label
        }
    }
}
