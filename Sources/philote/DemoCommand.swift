import ArgumentParser
import Philote

#if canImport(Glibc)
    import Glibc
#endif

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Serve pub/sub with a chat demo at /demo (development only: it gives a token to anyone who asks).",
        discussion: """
            Open http://127.0.0.1:6380/demo in two browser windows. Runs only with the development secret (SECRET \
            unset or equal to it), and keeps history (HISTORY_SIZE=1000 unless set) so a reloaded page catches up.
            """
    )

    func run() throws {
        var configuration = ServerRunner.loadConfiguration()
        if let secret = configuration.secret, secret != DemoSettings.secret {
            ServerRunner.fail(
                """
                philote demo gives a token to anyone who asks, so it runs only with the development secret, never \
                with a real SECRET. Unset SECRET (or set it to "\(DemoSettings.secret)") to try the demo; serve \
                real clients with `philote serve`.
                """, status: 2)
        }
        configuration.secret = DemoSettings.secret
        if getenv("HISTORY_SIZE") == nil { configuration.historySize = 1000 }
        let application = PubSubApplication(configuration: configuration)
        application.demo = DemoSettings()
        ServerRunner.run(configuration: configuration, application: application, mode: "demo") { server in
            application.attach(to: server)
        }
    }
}
