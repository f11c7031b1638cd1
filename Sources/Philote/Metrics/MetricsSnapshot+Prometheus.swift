extension MetricsSnapshot {
    /// The `/metrics` body. Counters end in `_total`, sizes are in bytes and times in seconds, as
    /// Prometheus' naming rules (and `promtool check metrics`) want.
    public var prometheusText: String {
        var out = PrometheusText()
        out.family("philote_info", .gauge, help: "Always 1; the version is a label.")
        out.sample("philote_info", labels: ["version": version], "1")
        out.single(
            "philote_ready", .gauge, help: "1 while /readyz answers 200 (accepting, not draining), else 0.",
            ready ? "1" : "0")
        out.single("philote_connections", .gauge, help: "Open WebSocket connections.", String(connections))
        out.single("philote_connections_max", .gauge, help: "MAX_CONNECTIONS.", String(maxConnections))
        out.single(
            "philote_connections_total", .counter, help: "WebSocket upgrades accepted.", String(connectionsOpened))
        out.labelled(
            "philote_connections_rejected_total", .counter,
            help: "Well-formed upgrade requests refused, by reason.", label: "reason",
            LoopMetrics.Rejection.allCases.map { ($0.label, String(rejections[$0.rawValue])) })
        out.labelled(
            "philote_handshake_errors_total", .counter,
            help: "Malformed, refused or timed-out HTTP requests and upgrades, by reason.", label: "reason",
            LoopMetrics.HandshakeFailure.allCases.map { ($0.label, String(handshakeFailures[$0.rawValue])) })
        out.labelled(
            "philote_auth_failures_total", .counter,
            help: "Tokens refused at the upgrade or by the HTTP API, by reason.", label: "reason",
            LoopMetrics.AuthFailure.allCases.map { ($0.label, String(authFailures[$0.rawValue])) })
        out.single(
            "philote_messages_received_total", .counter, help: "WebSocket data messages received from clients.",
            String(messagesIn))
        out.single(
            "philote_messages_sent_total", .counter,
            help: "Data messages written in full to clients: deliveries and replies.", String(messagesOut))
        out.single(
            "philote_received_bytes_total", .counter, help: "Bytes read from client sockets.", String(bytesIn))
        out.single("philote_sent_bytes_total", .counter, help: "Bytes written to client sockets.", String(bytesOut))
        out.labelled(
            "philote_publishes_total", .counter, help: "Messages accepted for delivery, by where they came from.",
            label: "source", LoopMetrics.Source.allCases.map { ($0.label, String(publishes[$0.rawValue])) })
        out.labelled(
            "philote_publishes_denied_total", .counter,
            help: "Publishes refused for lack of write permission, by where they came from.", label: "source",
            LoopMetrics.Source.allCases.map { ($0.label, String(publishesDenied[$0.rawValue])) })
        out.single(
            "philote_slow_consumer_closes_total", .counter,
            help: "Connections closed with 1008 for passing MAX_BACKPRESSURE.", String(slowConsumerCloses))
        out.single(
            "philote_handoff_dropped_total", .counter,
            help: "Publishes an event loop missed because 64 MiB of publishes were already waiting for it (stalled).",
            String(handOffDropped))
        out.single(
            "philote_compression_input_bytes_total", .counter,
            help: "Bytes given to permessage-deflate (once per message and window size).", String(compressionInput))
        out.single(
            "philote_compression_output_bytes_total", .counter, help: "Bytes permessage-deflate produced.",
            String(compressionOutput))
        out.single(
            "philote_compression_ratio", .gauge,
            help: "Input bytes per output byte of permessage-deflate so far (0 before any).",
            PrometheusText.number(compressionRatio))
        out.labelled(
            "philote_tls_handshakes_total", .counter, help: "TLS handshakes, by result.", label: "result",
            [("ok", String(tlsHandshakes)), ("failed", String(tlsHandshakeFailures))])
        out.single(
            "philote_broker_configured", .gauge, help: "1 when a broker (e.g. Redis) is configured.",
            brokerConfigured ? "1" : "0")
        out.single(
            "philote_broker_connected", .gauge, help: "1 while the configured broker is connected.",
            brokerConnected ? "1" : "0")
        out.single(
            "philote_broker_shards", .gauge, help: "Redis instances configured (REDIS_URL entries).",
            String(brokerShards))
        out.single(
            "philote_broker_connected_shards", .gauge,
            help: "Redis instances whose publish and subscribe connections are both up.", String(brokerConnectedShards))
        out.single(
            "philote_broker_published_total", .counter, help: "Messages sent to the broker for other servers.",
            String(brokerPublished))
        out.single(
            "philote_broker_received_total", .counter, help: "Messages from other servers received through the broker.",
            String(brokerReceived))
        out.labelled(
            "philote_broker_dropped_messages_total", .counter,
            help: "Messages not sent to the broker, by reason (instance down, or its queue full).", label: "reason",
            BrokerStatus.Drop.allCases.map { ($0.label, String(brokerDropped[$0.rawValue])) })
        out.single(
            "philote_broker_malformed_total", .counter,
            help: "Messages on the broker's channels that were not a Philote envelope (ignored).",
            String(brokerMalformed))
        out.single(
            "philote_broker_reconnects_total", .counter, help: "Connections to Redis re-established after a loss.",
            String(brokerReconnects))
        out.family("philote_loop_events_total", .counter, help: "Readiness events handled, by event loop.")
        for (index, loop) in loops.enumerated() {
            out.sample("philote_loop_events_total", labels: ["loop": String(index)], String(loop.events))
        }
        out.family("philote_loop_wakeups_total", .counter, help: "Returns from epoll_wait, by event loop.")
        for (index, loop) in loops.enumerated() {
            out.sample("philote_loop_wakeups_total", labels: ["loop": String(index)], String(loop.iterations))
        }
        out.family(
            "philote_loop_sockets", .gauge, help: "Client sockets (open or still in their handshake), by event loop.")
        for (index, loop) in loops.enumerated() {
            out.sample("philote_loop_sockets", labels: ["loop": String(index)], String(loop.sockets))
        }
        if let process {
            out.single(
                "process_start_time_seconds", .gauge, help: "Start time of the process since the Unix epoch.",
                PrometheusText.number(process.startTimeSeconds.rounded(.down)))
            out.single(
                "process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.",
                String(process.residentBytes))
            if let open = process.openDescriptors {
                out.single("process_open_fds", .gauge, help: "Number of open file descriptors.", String(open))
            }
            out.single(
                "process_max_fds", .gauge, help: "Maximum number of open file descriptors.",
                String(process.maxDescriptors))
        }
        return out.text
    }
}
