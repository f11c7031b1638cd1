/// Bytes as they are: `writev` of the queued frames, or one copy and a `write` when there are many small ones.
struct PlainTransport: ByteTransport {
    let fd: Int32
    // unowned(unsafe): the loop outlives its connections.
    unowned(unsafe) let loop: EventLoop

    /// Queued frames from which a write copies instead of handing the kernel an iovec per frame.
    static let gatherCopyThreshold = 32

    @inline(__always)
    func prepareOutput(resume: () -> Bool) -> TransportOutput { .ready }
    var wantsWritable: Bool { false }
    var committedPlaintext: Int { 0 }

    @inline(__always)
    func write(count: Int, bytes: Int) -> TransportWrite {
        let result: IOResult<Int>
        do {
            if count >= Self.gatherCopyThreshold && bytes <= loop.writeBuffer.count {
                // Many small frames: one copy into the loop's write buffer and a plain write costs the kernel
                // less than walking dozens of iovecs.
                loop.gatherCopy(count: count)
                result = try Socket.write(fd, UnsafeRawBufferPointer(rebasing: loop.writeBuffer[..<bytes]))
            } else {
                result = try Socket.writev(fd, loop.ioVectors, count: Int32(count))
            }
        } catch {
            // EPIPE / ECONNRESET: the peer is gone; nothing more can be delivered.
            return .failed
        }
        switch result {
        case .processed(let written):
            return written < bytes ? .blocked(written, recordsWaiting: false) : .wrote(written)
        case .wouldBlock: return .blocked(0, recordsWaiting: false)
        }
    }

    func countWhenWritten(messages: Int, bytes: Int) {
        // Never asked: a plain write's bytes are on the wire when it returns, and counted then.
    }

    func finishOutput() -> TransportOutput {
        Socket.shutdownWrite(fd)
        return .ready
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deliver: (UnsafeMutableRawBufferPointer) -> Bool)
        -> TransportRead
    {
        switch Self.read(fd, into: buffer) {
        case .data(let count):
            _ = deliver(UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]))
            return .done
        case .none: return .done
        case .end: return .closed
        }
    }

    func stopInput() {}
    func closed() {}

    enum SocketInput {
        case data(Int)
        case none
        /// The peer's FIN or a read error: without a close frame (or, over TLS, a close_notify), an abnormal
        /// closure or a truncated stream.
        case end
    }

    /// One read from the socket.
    @inline(__always)
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> SocketInput {
        do {
            switch try Socket.read(fd, into: buffer) {
            case .wouldBlock: return .none
            case .processed(let read) where read > 0: return .data(read)
            case .processed: return .end
            }
        } catch {
            return .end
        }
    }
}
