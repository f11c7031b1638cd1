/// The outcome of a non-blocking call: done, or `EAGAIN` (which is flow, not failure).
public enum IOResult<Value> {
    case processed(Value)
    case wouldBlock
}
