import ArgumentParser
import Philote

struct EchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Serve a WebSocket echo server: every message back to its sender with its own opcode."
    )

    func run() throws {
        let configuration = ServerRunner.loadConfiguration()
        ServerRunner.run(configuration: configuration, application: EchoApplication(), mode: "echo") { _ in }
    }
}
