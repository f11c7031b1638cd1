/// An enum whose cases tell one family's samples apart (a reason, a source). Each case's raw value is its
/// index in `allCases` and in the counters it labels; `label` is the value Prometheus shows.
protocol MetricLabel: CaseIterable {
    var label: String { get }
}

extension LoopMetrics.Rejection: MetricLabel {}
extension LoopMetrics.AuthFailure: MetricLabel {}
extension LoopMetrics.HandshakeFailure: MetricLabel {}
extension LoopMetrics.Source: MetricLabel {}
extension LoopMetrics.Refresh: MetricLabel {}
// Declared here rather than in Broker/: metrics read the broker, the broker knows nothing of metrics.
extension BrokerStatus.Drop: MetricLabel {}
