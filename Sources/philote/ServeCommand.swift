import ArgumentParser
import Philote

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve pub/sub (the default when no command is given). Requires SECRET."
    )

    func run() throws {
        let configuration = ServerRunner.loadConfiguration()
        guard configuration.secret != nil else {
            ServerRunner.fail(
                """
                SECRET is not set: it is the key that signs and verifies client tokens. Make one with
                  export SECRET="$(openssl rand -hex 32)"
                and give the same value to the backends that mint tokens.
                """, status: 2)
        }
        let application = PubSubApplication(configuration: configuration)
        ServerRunner.run(configuration: configuration, application: application, mode: "pubsub") { server in
            application.attach(to: server)
        }
    }
}
