/// Every family `/metrics` shows, in the order it shows them. Counters end in `_total`, sizes are in bytes and
/// times in seconds, as Prometheus' naming rules (and `promtool check metrics`) want.
///
/// A new metric is one line here; a new per-loop counter also needs its field in `LoopMetrics`.
extension MetricFamily {
    static let all: [MetricFamily] = [
        .init(
            "philote_info", .gauge, "Always 1; the version is a label.",
            .madeFromSnapshot(label: "version") { [($0.version, "1")] }),
        .init(
            "philote_ready", .gauge, "1 while /readyz answers 200 (accepting, not draining), else 0.",
            .figure { $0.ready ? "1" : "0" }),
        .init("philote_connections", .gauge, "Open WebSocket connections.", .figure { String($0.connections) }),
        .init("philote_connections_max", .gauge, "MAX_CONNECTIONS.", .figure { String($0.maxConnections) }),
        .init(
            "philote_connections_total", .counter, "WebSocket upgrades accepted.",
            .loop { $0.connectionsOpened.relaxedValue }),
        .init(
            "philote_connections_rejected_total", .counter, "Well-formed upgrade requests refused, by reason.",
            .loops(by: "reason", LoopMetrics.Rejection.self) { $0.rejections[$1].relaxedValue }),
        .init(
            "philote_handshake_errors_total", .counter,
            "Malformed, refused or timed-out HTTP requests and upgrades, by reason.",
            .loops(by: "reason", LoopMetrics.HandshakeFailure.self) { $0.handshakeFailures[$1].relaxedValue }),
        .init(
            "philote_auth_failures_total", .counter,
            "Tokens refused at the upgrade, in a token refresh or by the HTTP API, by reason.",
            .loops(by: "reason", LoopMetrics.AuthFailure.self) { $0.authFailures[$1].relaxedValue }),
        .init(
            "philote_token_refreshes_total", .counter, "Token refreshes on open connections, by result.",
            .loops(by: "result", LoopMetrics.Refresh.self) { $0.tokenRefreshes[$1].relaxedValue }),
        .init(
            "philote_messages_received_total", .counter, "WebSocket data messages received from clients.",
            .loop { $0.messagesIn.relaxedValue }),
        .init(
            "philote_messages_sent_total", .counter,
            "Data messages written in full to clients: deliveries and replies.",
            .loop { $0.messagesOut.relaxedValue }),
        .init(
            "philote_received_bytes_total", .counter, "Bytes read from client sockets.",
            .loop { $0.bytesIn.relaxedValue }),
        .init(
            "philote_sent_bytes_total", .counter, "Bytes written to client sockets.",
            .loop { $0.bytesOut.relaxedValue }),
        .init(
            "philote_publishes_total", .counter, "Messages accepted for delivery, by where they came from.",
            .loops(by: "source", LoopMetrics.Source.self) { $0.publishes[$1].relaxedValue }),
        .init(
            "philote_publishes_denied_total", .counter,
            "Publishes refused for lack of write permission, by where they came from.",
            .loops(by: "source", LoopMetrics.Source.self) { $0.publishesDenied[$1].relaxedValue }),
        .init(
            "philote_slow_consumer_closes_total", .counter,
            "Connections closed with 1008 for passing MAX_BACKPRESSURE.",
            .loop { $0.slowConsumerCloses.relaxedValue }),
        .init(
            "philote_handoff_dropped_total", .counter,
            "Publishes an event loop missed because 64 MiB of publishes were already waiting for it (stalled).",
            .loop { $0.handOffDropped.relaxedValue }),
        .init(
            compressionInputName, .counter,
            "Bytes given to permessage-deflate (once per message and window size).",
            .loop { $0.compressionInput.relaxedValue }),
        .init(
            compressionOutputName, .counter, "Bytes permessage-deflate produced.",
            .loop { $0.compressionOutput.relaxedValue }),
        .init(
            "philote_compression_ratio", .gauge,
            "Input bytes per output byte of permessage-deflate so far (0 before any).",
            .figure { PrometheusText.number($0.compressionRatio) }),
        .init(
            "philote_tls_handshakes_total", .counter, "TLS handshakes, by result.",
            .loops(by: "result", ["ok", "failed"]) {
                $1 == 0 ? $0.tlsHandshakes.relaxedValue : $0.tlsHandshakeFailures.relaxedValue
            }),
        .init(
            "philote_broker_configured", .gauge, "1 when a broker (e.g. Redis) is configured.",
            .broker { _ in 1 }),
        .init(
            "philote_broker_connected", .gauge, "1 while the configured broker is connected.",
            .broker { $0.isConnected ? 1 : 0 }),
        .init(
            "philote_broker_shards", .gauge, "Redis instances configured (REDIS_URL entries).",
            .broker { UInt64($0.shardCount) }),
        .init(
            "philote_broker_connected_shards", .gauge,
            "Redis instances whose publish and subscribe connections are both up.",
            .broker { UInt64(clamping: $0.connectedShards.relaxedValue) }),
        .init(
            "philote_broker_published_total", .counter, "Messages sent to the broker for other servers.",
            .broker { $0.published.relaxedValue }),
        .init(
            "philote_broker_received_total", .counter, "Messages from other servers received through the broker.",
            .broker { $0.received.relaxedValue }),
        .init(
            "philote_broker_dropped_messages_total", .counter,
            "Messages not sent to the broker, by reason (instance down, or its queue full).",
            .broker(by: "reason", BrokerStatus.Drop.self) { $0.dropped[$1].relaxedValue }),
        .init(
            "philote_broker_malformed_total", .counter,
            "Messages on the broker's channels that were not a Philote envelope (ignored).",
            .broker { $0.malformed.relaxedValue }),
        .init(
            "philote_broker_reconnects_total", .counter, "Connections to Redis re-established after a loss.",
            .broker { $0.reconnects.relaxedValue }),
        .init(
            "philote_history_channels", .gauge, "Channels with a history record (HISTORY_SIZE > 0 only).",
            .history { String($0.channels) }),
        .init(
            "philote_history_messages", .gauge, "Messages kept for recovery, all channels.",
            .history { String($0.messages) }),
        .init(
            "philote_history_bytes", .gauge, "Bytes history holds, counted against HISTORY_MAX_MEMORY.",
            .history { String($0.bytes) }),
        .init(
            "philote_recoveries_total", .counter, "Answers to since= at the upgrade, by outcome.",
            .madeFromSnapshot(label: "outcome") { snapshot in
                snapshot.history.map { history in
                    zip(RecoveryCounters.outcomes, history.recoveries).map { ($0, String($1)) }
                }
            }),
        .init(
            "philote_replayed_messages_total", .counter, "Messages sent from history to recovering connections.",
            .history { String($0.replayed) }),
        .init(
            "philote_loop_events_total", .counter, "Readiness events handled, by event loop.",
            .eachLoop { String($0.events) }),
        .init(
            "philote_loop_wakeups_total", .counter, "Returns from epoll_wait, by event loop.",
            .eachLoop { String($0.iterations) }),
        .init(
            "philote_loop_sockets", .gauge, "Client sockets (open or still in their handshake), by event loop.",
            .eachLoop { String($0.sockets) }),
        .init(
            "process_start_time_seconds", .gauge, "Start time of the process since the Unix epoch.",
            .process { PrometheusText.number($0.startTimeSeconds.rounded(.down)) }),
        .init(
            "process_resident_memory_bytes", .gauge, "Resident memory size in bytes.",
            .process { String($0.residentBytes) }),
        .init(
            "process_open_fds", .gauge, "Number of open file descriptors.",
            .process { $0.openDescriptors.map(String.init) }),
        .init(
            "process_max_fds", .gauge, "Maximum number of open file descriptors.",
            .process { String($0.maxDescriptors) }),
    ]

    /// The two counters the compression ratio is made from.
    static let compressionInputName = "philote_compression_input_bytes_total"
    static let compressionOutputName = "philote_compression_output_bytes_total"
}
