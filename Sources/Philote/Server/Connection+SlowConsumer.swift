/// The backpressure rule's consequence for fan-out (see Subscriber).
extension Connection {
    /// A slow consumer (see Subscriber), closed here, in the flush after the delivery that found it: its queue is
    /// freed at once, so it never holds memory or slows anyone else.
    @inline(never)
    func closeSlowConsumer() {
        subscriber.overflowHandled()
        guard phase == .open else { return }
        services.logger.debug("slow consumer", ["conn": String(handlerID)])
        services.metrics.slowConsumerCloses.add(fromOwner: 1)
        subscriber.queue.dropUnsent(keeping: transport.committedPlaintext)
        close(.policyViolation, reason: "slow consumer")
    }
}
