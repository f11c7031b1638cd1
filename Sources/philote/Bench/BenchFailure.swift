/// Why a bench run cannot start: one line, and the exit status (2 for arguments, 1 for the server).
struct BenchFailure: Error {
    let message: String
    let status: Int32

    init(_ message: String, status: Int32) {
        self.message = message
        self.status = status
    }
}
