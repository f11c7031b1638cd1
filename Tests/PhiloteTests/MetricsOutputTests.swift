import Synchronization
import Testing

@testable import Philote

/// Pins the whole `/metrics` body, byte for byte: dashboards and alerts key on the names, labels and order,
/// so a change to how metrics are declared must not change what a scrape reads.
@Suite struct MetricsOutputTests {
    /// Two loops and a broker with a distinct value in every counter, so that a family reading the wrong
    /// counter, or a loop left out of a sum, shows in the text.
    static func filledSnapshot() -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        snapshot.version = "9.9.9"
        snapshot.ready = false
        snapshot.connections = 17
        snapshot.maxConnections = 5000
        let broker = BrokerStatus(shardCount: 3)
        broker.connectedShards.store(2, ordering: .relaxed)
        broker.published.add(fromOwner: 301)
        broker.received.add(fromOwner: 302)
        broker.dropped[0].add(fromOwner: 303)
        broker.dropped[1].add(fromOwner: 304)
        broker.malformed.add(fromOwner: 305)
        broker.reconnects.add(fromOwner: 306)
        snapshot.add(broker)
        for (index, metrics) in [LoopMetrics(), LoopMetrics()].enumerated() {
            // The second loop adds 1000 to each figure of the first: sums end in the first loop's digits.
            let base = UInt64(1 + index * 1000)
            for i in 0..<6 { metrics.rejections[i].add(fromOwner: base + 10 + UInt64(i)) }
            for i in 0..<9 { metrics.authFailures[i].add(fromOwner: base + 20 + UInt64(i)) }
            for i in 0..<7 { metrics.handshakeFailures[i].add(fromOwner: base + 30 + UInt64(i)) }
            for i in 0..<2 { metrics.publishes[i].add(fromOwner: base + 40 + UInt64(i)) }
            for i in 0..<2 { metrics.publishesDenied[i].add(fromOwner: base + 50 + UInt64(i)) }
            for i in 0..<2 { metrics.tokenRefreshes[i].add(fromOwner: base + 70 + UInt64(i)) }
            metrics.connectionsOpened.add(fromOwner: base + 60)
            metrics.messagesIn.add(fromOwner: base + 61)
            metrics.messagesOut.add(fromOwner: base + 62)
            metrics.bytesIn.add(fromOwner: base + 63)
            metrics.bytesOut.add(fromOwner: base + 64)
            metrics.slowConsumerCloses.add(fromOwner: base + 65)
            metrics.handOffDropped.add(fromOwner: base + 66)
            metrics.compressed(from: Int(base) * 5, to: Int(base) * 2)
            metrics.tlsHandshakes.add(fromOwner: base + 67)
            metrics.tlsHandshakeFailures.add(fromOwner: base + 68)
            metrics.sockets.add(fromOwner: 70 + index)
            snapshot.add(metrics, events: 80 + base, iterations: 90 + base)
        }
        snapshot.process = ProcessStatistics(
            startTimeSeconds: 1_700_000_000.75, residentBytes: 12288, openDescriptors: 9, maxDescriptors: 1024)
        return snapshot
    }

    @Test func everyFamilyWithDistinctValues() {
        #expect(Self.filledSnapshot().prometheusText == Self.filledText)
    }

    /// No loop, no broker, no process figures: loop families keep their HELP and TYPE lines, process ones go.
    @Test func emptySnapshot() {
        var snapshot = MetricsSnapshot()
        snapshot.version = "9.9.9"
        #expect(snapshot.prometheusText == Self.emptyText)
    }

    /// A kernel that cannot count descriptors cheaply: that one family is left out, the others stay.
    @Test func processWithoutOpenDescriptorCount() {
        var snapshot = MetricsSnapshot()
        snapshot.process = ProcessStatistics(
            startTimeSeconds: 5, residentBytes: 1, openDescriptors: nil, maxDescriptors: 2)
        let text = snapshot.prometheusText
        #expect(!text.contains("process_open_fds"))
        #expect(
            text.hasSuffix(
                """
                # HELP process_resident_memory_bytes Resident memory size in bytes.
                # TYPE process_resident_memory_bytes gauge
                process_resident_memory_bytes 1
                # HELP process_max_fds Maximum number of open file descriptors.
                # TYPE process_max_fds gauge
                process_max_fds 2

                """))
    }

    @Test func brokerWithEveryInstanceUp() {
        var snapshot = MetricsSnapshot()
        let broker = BrokerStatus(shardCount: 2)
        broker.connectedShards.store(2, ordering: .relaxed)
        snapshot.add(broker)
        let lines = snapshot.prometheusText.split(separator: "\n")
        #expect(lines.contains("philote_broker_connected 1"))
        #expect(lines.contains("philote_broker_connected_shards 2"))
    }

    static let filledText = #"""
        # HELP philote_info Always 1; the version is a label.
        # TYPE philote_info gauge
        philote_info{version="9.9.9"} 1
        # HELP philote_ready 1 while /readyz answers 200 (accepting, not draining), else 0.
        # TYPE philote_ready gauge
        philote_ready 0
        # HELP philote_connections Open WebSocket connections.
        # TYPE philote_connections gauge
        philote_connections 17
        # HELP philote_connections_max MAX_CONNECTIONS.
        # TYPE philote_connections_max gauge
        philote_connections_max 5000
        # HELP philote_connections_total WebSocket upgrades accepted.
        # TYPE philote_connections_total counter
        philote_connections_total 1122
        # HELP philote_connections_rejected_total Well-formed upgrade requests refused, by reason.
        # TYPE philote_connections_rejected_total counter
        philote_connections_rejected_total{reason="max_connections"} 1022
        philote_connections_rejected_total{reason="draining"} 1024
        philote_connections_rejected_total{reason="unauthorized"} 1026
        philote_connections_rejected_total{reason="forbidden"} 1028
        philote_connections_rejected_total{reason="other"} 1030
        philote_connections_rejected_total{reason="pending_handshakes"} 1032
        # HELP philote_handshake_errors_total Malformed, refused or timed-out HTTP requests and upgrades, by reason.
        # TYPE philote_handshake_errors_total counter
        philote_handshake_errors_total{reason="bad_request"} 1062
        philote_handshake_errors_total{reason="method_not_allowed"} 1064
        philote_handshake_errors_total{reason="upgrade_required"} 1066
        philote_handshake_errors_total{reason="head_too_large"} 1068
        philote_handshake_errors_total{reason="body_too_large"} 1070
        philote_handshake_errors_total{reason="timeout"} 1072
        philote_handshake_errors_total{reason="other"} 1074
        # HELP philote_auth_failures_total Tokens refused at the upgrade, in a token refresh or by the HTTP API, by reason.
        # TYPE philote_auth_failures_total counter
        philote_auth_failures_total{reason="missing"} 1042
        philote_auth_failures_total{reason="malformed"} 1044
        philote_auth_failures_total{reason="unsupported_algorithm"} 1046
        philote_auth_failures_total{reason="invalid_signature"} 1048
        philote_auth_failures_total{reason="expired"} 1050
        philote_auth_failures_total{reason="not_yet_valid"} 1052
        philote_auth_failures_total{reason="issued_in_future"} 1054
        philote_auth_failures_total{reason="invalid_claim"} 1056
        philote_auth_failures_total{reason="api_not_granted"} 1058
        # HELP philote_token_refreshes_total Token refreshes on open connections, by result.
        # TYPE philote_token_refreshes_total counter
        philote_token_refreshes_total{result="accepted"} 1142
        philote_token_refreshes_total{result="refused"} 1144
        # HELP philote_messages_received_total WebSocket data messages received from clients.
        # TYPE philote_messages_received_total counter
        philote_messages_received_total 1124
        # HELP philote_messages_sent_total Data messages written in full to clients: deliveries and replies.
        # TYPE philote_messages_sent_total counter
        philote_messages_sent_total 1126
        # HELP philote_received_bytes_total Bytes read from client sockets.
        # TYPE philote_received_bytes_total counter
        philote_received_bytes_total 1128
        # HELP philote_sent_bytes_total Bytes written to client sockets.
        # TYPE philote_sent_bytes_total counter
        philote_sent_bytes_total 1130
        # HELP philote_publishes_total Messages accepted for delivery, by where they came from.
        # TYPE philote_publishes_total counter
        philote_publishes_total{source="websocket"} 1082
        philote_publishes_total{source="http"} 1084
        # HELP philote_publishes_denied_total Publishes refused for lack of write permission, by where they came from.
        # TYPE philote_publishes_denied_total counter
        philote_publishes_denied_total{source="websocket"} 1102
        philote_publishes_denied_total{source="http"} 1104
        # HELP philote_slow_consumer_closes_total Connections closed with 1008 for passing MAX_BACKPRESSURE.
        # TYPE philote_slow_consumer_closes_total counter
        philote_slow_consumer_closes_total 1132
        # HELP philote_handoff_dropped_total Publishes an event loop missed because 64 MiB of publishes were already waiting for it (stalled).
        # TYPE philote_handoff_dropped_total counter
        philote_handoff_dropped_total 1134
        # HELP philote_compression_input_bytes_total Bytes given to permessage-deflate (once per message and window size).
        # TYPE philote_compression_input_bytes_total counter
        philote_compression_input_bytes_total 5010
        # HELP philote_compression_output_bytes_total Bytes permessage-deflate produced.
        # TYPE philote_compression_output_bytes_total counter
        philote_compression_output_bytes_total 2004
        # HELP philote_compression_ratio Input bytes per output byte of permessage-deflate so far (0 before any).
        # TYPE philote_compression_ratio gauge
        philote_compression_ratio 2.5
        # HELP philote_tls_handshakes_total TLS handshakes, by result.
        # TYPE philote_tls_handshakes_total counter
        philote_tls_handshakes_total{result="ok"} 1136
        philote_tls_handshakes_total{result="failed"} 1138
        # HELP philote_broker_configured 1 when a broker (e.g. Redis) is configured.
        # TYPE philote_broker_configured gauge
        philote_broker_configured 1
        # HELP philote_broker_connected 1 while the configured broker is connected.
        # TYPE philote_broker_connected gauge
        philote_broker_connected 0
        # HELP philote_broker_shards Redis instances configured (REDIS_URL entries).
        # TYPE philote_broker_shards gauge
        philote_broker_shards 3
        # HELP philote_broker_connected_shards Redis instances whose publish and subscribe connections are both up.
        # TYPE philote_broker_connected_shards gauge
        philote_broker_connected_shards 2
        # HELP philote_broker_published_total Messages sent to the broker for other servers.
        # TYPE philote_broker_published_total counter
        philote_broker_published_total 301
        # HELP philote_broker_received_total Messages from other servers received through the broker.
        # TYPE philote_broker_received_total counter
        philote_broker_received_total 302
        # HELP philote_broker_dropped_messages_total Messages not sent to the broker, by reason (instance down, or its queue full).
        # TYPE philote_broker_dropped_messages_total counter
        philote_broker_dropped_messages_total{reason="disconnected"} 303
        philote_broker_dropped_messages_total{reason="queue_full"} 304
        # HELP philote_broker_malformed_total Messages on the broker's channels that were not a Philote envelope (ignored).
        # TYPE philote_broker_malformed_total counter
        philote_broker_malformed_total 305
        # HELP philote_broker_reconnects_total Connections to Redis re-established after a loss.
        # TYPE philote_broker_reconnects_total counter
        philote_broker_reconnects_total 306
        # HELP philote_loop_events_total Readiness events handled, by event loop.
        # TYPE philote_loop_events_total counter
        philote_loop_events_total{loop="0"} 81
        philote_loop_events_total{loop="1"} 1081
        # HELP philote_loop_wakeups_total Returns from epoll_wait, by event loop.
        # TYPE philote_loop_wakeups_total counter
        philote_loop_wakeups_total{loop="0"} 91
        philote_loop_wakeups_total{loop="1"} 1091
        # HELP philote_loop_sockets Client sockets (open or still in their handshake), by event loop.
        # TYPE philote_loop_sockets gauge
        philote_loop_sockets{loop="0"} 70
        philote_loop_sockets{loop="1"} 71
        # HELP process_start_time_seconds Start time of the process since the Unix epoch.
        # TYPE process_start_time_seconds gauge
        process_start_time_seconds 1700000000
        # HELP process_resident_memory_bytes Resident memory size in bytes.
        # TYPE process_resident_memory_bytes gauge
        process_resident_memory_bytes 12288
        # HELP process_open_fds Number of open file descriptors.
        # TYPE process_open_fds gauge
        process_open_fds 9
        # HELP process_max_fds Maximum number of open file descriptors.
        # TYPE process_max_fds gauge
        process_max_fds 1024

        """#

    static let emptyText = #"""
        # HELP philote_info Always 1; the version is a label.
        # TYPE philote_info gauge
        philote_info{version="9.9.9"} 1
        # HELP philote_ready 1 while /readyz answers 200 (accepting, not draining), else 0.
        # TYPE philote_ready gauge
        philote_ready 1
        # HELP philote_connections Open WebSocket connections.
        # TYPE philote_connections gauge
        philote_connections 0
        # HELP philote_connections_max MAX_CONNECTIONS.
        # TYPE philote_connections_max gauge
        philote_connections_max 0
        # HELP philote_connections_total WebSocket upgrades accepted.
        # TYPE philote_connections_total counter
        philote_connections_total 0
        # HELP philote_connections_rejected_total Well-formed upgrade requests refused, by reason.
        # TYPE philote_connections_rejected_total counter
        philote_connections_rejected_total{reason="max_connections"} 0
        philote_connections_rejected_total{reason="draining"} 0
        philote_connections_rejected_total{reason="unauthorized"} 0
        philote_connections_rejected_total{reason="forbidden"} 0
        philote_connections_rejected_total{reason="other"} 0
        philote_connections_rejected_total{reason="pending_handshakes"} 0
        # HELP philote_handshake_errors_total Malformed, refused or timed-out HTTP requests and upgrades, by reason.
        # TYPE philote_handshake_errors_total counter
        philote_handshake_errors_total{reason="bad_request"} 0
        philote_handshake_errors_total{reason="method_not_allowed"} 0
        philote_handshake_errors_total{reason="upgrade_required"} 0
        philote_handshake_errors_total{reason="head_too_large"} 0
        philote_handshake_errors_total{reason="body_too_large"} 0
        philote_handshake_errors_total{reason="timeout"} 0
        philote_handshake_errors_total{reason="other"} 0
        # HELP philote_auth_failures_total Tokens refused at the upgrade, in a token refresh or by the HTTP API, by reason.
        # TYPE philote_auth_failures_total counter
        philote_auth_failures_total{reason="missing"} 0
        philote_auth_failures_total{reason="malformed"} 0
        philote_auth_failures_total{reason="unsupported_algorithm"} 0
        philote_auth_failures_total{reason="invalid_signature"} 0
        philote_auth_failures_total{reason="expired"} 0
        philote_auth_failures_total{reason="not_yet_valid"} 0
        philote_auth_failures_total{reason="issued_in_future"} 0
        philote_auth_failures_total{reason="invalid_claim"} 0
        philote_auth_failures_total{reason="api_not_granted"} 0
        # HELP philote_token_refreshes_total Token refreshes on open connections, by result.
        # TYPE philote_token_refreshes_total counter
        philote_token_refreshes_total{result="accepted"} 0
        philote_token_refreshes_total{result="refused"} 0
        # HELP philote_messages_received_total WebSocket data messages received from clients.
        # TYPE philote_messages_received_total counter
        philote_messages_received_total 0
        # HELP philote_messages_sent_total Data messages written in full to clients: deliveries and replies.
        # TYPE philote_messages_sent_total counter
        philote_messages_sent_total 0
        # HELP philote_received_bytes_total Bytes read from client sockets.
        # TYPE philote_received_bytes_total counter
        philote_received_bytes_total 0
        # HELP philote_sent_bytes_total Bytes written to client sockets.
        # TYPE philote_sent_bytes_total counter
        philote_sent_bytes_total 0
        # HELP philote_publishes_total Messages accepted for delivery, by where they came from.
        # TYPE philote_publishes_total counter
        philote_publishes_total{source="websocket"} 0
        philote_publishes_total{source="http"} 0
        # HELP philote_publishes_denied_total Publishes refused for lack of write permission, by where they came from.
        # TYPE philote_publishes_denied_total counter
        philote_publishes_denied_total{source="websocket"} 0
        philote_publishes_denied_total{source="http"} 0
        # HELP philote_slow_consumer_closes_total Connections closed with 1008 for passing MAX_BACKPRESSURE.
        # TYPE philote_slow_consumer_closes_total counter
        philote_slow_consumer_closes_total 0
        # HELP philote_handoff_dropped_total Publishes an event loop missed because 64 MiB of publishes were already waiting for it (stalled).
        # TYPE philote_handoff_dropped_total counter
        philote_handoff_dropped_total 0
        # HELP philote_compression_input_bytes_total Bytes given to permessage-deflate (once per message and window size).
        # TYPE philote_compression_input_bytes_total counter
        philote_compression_input_bytes_total 0
        # HELP philote_compression_output_bytes_total Bytes permessage-deflate produced.
        # TYPE philote_compression_output_bytes_total counter
        philote_compression_output_bytes_total 0
        # HELP philote_compression_ratio Input bytes per output byte of permessage-deflate so far (0 before any).
        # TYPE philote_compression_ratio gauge
        philote_compression_ratio 0
        # HELP philote_tls_handshakes_total TLS handshakes, by result.
        # TYPE philote_tls_handshakes_total counter
        philote_tls_handshakes_total{result="ok"} 0
        philote_tls_handshakes_total{result="failed"} 0
        # HELP philote_broker_configured 1 when a broker (e.g. Redis) is configured.
        # TYPE philote_broker_configured gauge
        philote_broker_configured 0
        # HELP philote_broker_connected 1 while the configured broker is connected.
        # TYPE philote_broker_connected gauge
        philote_broker_connected 0
        # HELP philote_broker_shards Redis instances configured (REDIS_URL entries).
        # TYPE philote_broker_shards gauge
        philote_broker_shards 0
        # HELP philote_broker_connected_shards Redis instances whose publish and subscribe connections are both up.
        # TYPE philote_broker_connected_shards gauge
        philote_broker_connected_shards 0
        # HELP philote_broker_published_total Messages sent to the broker for other servers.
        # TYPE philote_broker_published_total counter
        philote_broker_published_total 0
        # HELP philote_broker_received_total Messages from other servers received through the broker.
        # TYPE philote_broker_received_total counter
        philote_broker_received_total 0
        # HELP philote_broker_dropped_messages_total Messages not sent to the broker, by reason (instance down, or its queue full).
        # TYPE philote_broker_dropped_messages_total counter
        philote_broker_dropped_messages_total{reason="disconnected"} 0
        philote_broker_dropped_messages_total{reason="queue_full"} 0
        # HELP philote_broker_malformed_total Messages on the broker's channels that were not a Philote envelope (ignored).
        # TYPE philote_broker_malformed_total counter
        philote_broker_malformed_total 0
        # HELP philote_broker_reconnects_total Connections to Redis re-established after a loss.
        # TYPE philote_broker_reconnects_total counter
        philote_broker_reconnects_total 0
        # HELP philote_loop_events_total Readiness events handled, by event loop.
        # TYPE philote_loop_events_total counter
        # HELP philote_loop_wakeups_total Returns from epoll_wait, by event loop.
        # TYPE philote_loop_wakeups_total counter
        # HELP philote_loop_sockets Client sockets (open or still in their handshake), by event loop.
        # TYPE philote_loop_sockets gauge

        """#
}
