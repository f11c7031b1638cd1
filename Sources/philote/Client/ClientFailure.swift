/// How `philote client` fails: one line for standard error and the exit status. Every error path ends in
/// one of these, so the user never sees a stack trace or a Swift error description.
struct ClientFailure: Error {
    /// Exit status for a command line that cannot work (bad URL, no credentials).
    static let usage: Int32 = 2
    /// Exit status for everything that went wrong on the way or on the wire.
    static let runtime: Int32 = 1

    var message: String
    var status: Int32

    init(_ message: String, status: Int32 = ClientFailure.runtime) {
        self.message = message
        self.status = status
    }
}
