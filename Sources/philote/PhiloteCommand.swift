import ArgumentParser
import Philote

@main
struct PhiloteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "philote",
        abstract: "A WebSocket publish/subscribe server (the Philote 0.3 wire contract).",
        discussion: "Configuration comes from the environment (SECRET, PORT, HOST, WORKERS, ...); see README.md.",
        version: PhiloteVersion.string,
        subcommands: [ServeCommand.self, DemoCommand.self, EchoCommand.self, TokenCommand.self, ClientCommand.self, HealthCommand.self, BenchCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
