import Synchronization
import Testing

@testable import Philote

@Suite struct MetricsTests {
    @Test func familyAndSamples() {
        var text = PrometheusText()
        text.single("demo_total", .counter, help: "A demo.", "3")
        text.labelled("demo_by_reason_total", .counter, help: "By reason.", label: "reason", [("a", "1"), ("b", "2")])
        #expect(
            text.text == """
                # HELP demo_total A demo.
                # TYPE demo_total counter
                demo_total 3
                # HELP demo_by_reason_total By reason.
                # TYPE demo_by_reason_total counter
                demo_by_reason_total{reason="a"} 1
                demo_by_reason_total{reason="b"} 2

                """)
    }

    @Test func labelValuesAndHelpAreEscaped() {
        var text = PrometheusText()
        text.family("x", .gauge, help: "back\\slash\nnewline \"quotes\" stay")
        text.sample("x", labels: ["version": "a\"b\\c\nd", "loop": "0"], "1")
        #expect(
            text.text == """
                # HELP x back\\\\slash\\nnewline "quotes" stay
                # TYPE x gauge
                x{version="a\\"b\\\\c\\nd",loop="0"} 1

                """)
    }

    @Test func numbersAsPrometheusParsesThem() {
        #expect(PrometheusText.number(0) == "0")
        #expect(PrometheusText.number(3) == "3")
        #expect(PrometheusText.number(2.5) == "2.5")
        #expect(PrometheusText.number(-1) == "-1")
        #expect(PrometheusText.number(.nan) == "NaN")
        #expect(PrometheusText.number(.infinity) == "+Inf")
        #expect(PrometheusText.number(-.infinity) == "-Inf")
        #expect(PrometheusText.number(1e300) == "1e+300")
    }

    @Test func labelArraysMatchTheirEnums() {
        let metrics = LoopMetrics()
        #expect(metrics.rejections.count == LoopMetrics.Rejection.allCases.count)
        #expect(metrics.authFailures.count == LoopMetrics.AuthFailure.allCases.count)
        #expect(metrics.handshakeFailures.count == LoopMetrics.HandshakeFailure.allCases.count)
        #expect(metrics.publishes.count == LoopMetrics.Source.allCases.count)
        #expect(metrics.publishesDenied.count == LoopMetrics.Source.allCases.count)
        #expect(metrics.tokenRefreshes.count == LoopMetrics.Refresh.allCases.count)
    }

    /// Counters are kept in the snapshot by family name: two families of one name would share them.
    @Test func familyNamesAreUniqueAndCountersEndInTotal() {
        let names = MetricFamily.all.map(\.name)
        #expect(Set(names).count == names.count)
        for family in MetricFamily.all where family.kind == .counter {
            #expect(family.name.hasSuffix("_total"), "\(family.name)")
        }
    }

    @Test func snapshotSumsEveryLoop() {
        let first = LoopMetrics(), second = LoopMetrics()
        first.messagesIn.add(fromOwner: 2)
        second.messagesIn.add(fromOwner: 3)
        first.authFailed(.expired)
        second.authFailed(.expired)
        second.authFailed(.missing)
        first.rejected(.maxConnections)
        second.published(.http, count: 4)
        first.compressed(from: 300, to: 100)
        second.sockets.add(fromOwner: 5)
        var snapshot = MetricsSnapshot()
        snapshot.add(first, events: 10, iterations: 7)
        snapshot.add(second, events: 1, iterations: 1)
        #expect(snapshot.count("philote_messages_received_total") == 5)
        let auth = "philote_auth_failures_total"
        #expect(snapshot.count(auth, label: LoopMetrics.AuthFailure.expired.rawValue) == 2)
        #expect(snapshot.count(auth, label: LoopMetrics.AuthFailure.missing.rawValue) == 1)
        let rejected = "philote_connections_rejected_total"
        #expect(snapshot.count(rejected, label: LoopMetrics.Rejection.maxConnections.rawValue) == 1)
        #expect(snapshot.counts["philote_publishes_total"] == [0, 4])
        #expect(snapshot.compressionRatio == 3)
        #expect(
            snapshot.loops == [
                .init(events: 10, iterations: 7, sockets: 0), .init(events: 1, iterations: 1, sockets: 5),
            ])
    }

    @Test func renderedSnapshot() {
        var snapshot = MetricsSnapshot()
        snapshot.version = "9.9.9"
        snapshot.connections = 4
        let metrics = LoopMetrics()
        metrics.messagesOut.add(fromOwner: 12)
        metrics.authFailed(.invalidSignature)
        metrics.authFailed(.invalidSignature)
        metrics.sockets.add(fromOwner: 1)
        snapshot.add(metrics, events: 5, iterations: 3)
        snapshot.process = ProcessStatistics(
            startTimeSeconds: 1_700_000_000.75, residentBytes: 4096, openDescriptors: 9, maxDescriptors: 1024)
        let text = snapshot.prometheusText
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            #"philote_info{version="9.9.9"} 1"#, "philote_ready 1", "philote_connections 4",
            "philote_messages_sent_total 12", #"philote_auth_failures_total{reason="invalid_signature"} 2"#,
            #"philote_auth_failures_total{reason="expired"} 0"#, #"philote_loop_events_total{loop="0"} 5"#,
            #"philote_loop_wakeups_total{loop="0"} 3"#, #"philote_loop_sockets{loop="0"} 1"#,
            "# TYPE philote_messages_sent_total counter", "# TYPE philote_connections gauge",
            "philote_compression_ratio 0", #"philote_tls_handshakes_total{result="ok"} 0"#,
            "philote_broker_connected 0", "process_start_time_seconds 1700000000", "process_open_fds 9",
        ] {
            #expect(lines.contains(expected), "missing: \(expected)")
        }
        #expect(text.hasSuffix("\n"))
        // Every sample belongs to the family announced just before it; counters end in _total.
        var family = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                family = String(parts[2])
                if parts[3] == "counter" { #expect(family.hasSuffix("_total"), "\(family)") }
            } else if !line.hasPrefix("#") {
                #expect(line.hasPrefix(family + " ") || line.hasPrefix(family + "{"), "\(line) outside \(family)")
            }
        }
    }

    @Test func singleWriterAddsAreVisibleToReaders() {
        let counter = Atomic<UInt64>(0)
        for _ in 0..<1000 { counter.add(fromOwner: 3) }
        #expect(counter.load(ordering: .relaxed) == 3000)
        let gauge = Atomic<Int>(0)
        gauge.add(fromOwner: 2)
        gauge.add(fromOwner: -3)
        #expect(gauge.load(ordering: .relaxed) == -1)
    }
}
