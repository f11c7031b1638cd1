import CSystem

/// One Redis instance as the broker uses it: a link that PUBLISHes (and PINGs) and a link in subscribe
/// mode, with the state of each channel subscription on it.
///
/// Subscriptions change one step at a time per channel: a channel whose UNSUBSCRIBE is still unanswered
/// is not SUBSCRIBEd again until the answer comes (hiredis 0.14 keys its message callbacks by channel
/// and drops the key when the unsubscribe answer arrives, which would silently lose a re-subscription
/// sent in between). The subscribing link also holds one subscription of its own for its whole life,
/// so its subscription count never reaches zero while changes are in flight (hiredis 0.14 leaves
/// subscribe mode at zero and then aborts on the next subscribe answer).
final class RedisShard: RedisLinkDelegate {
    let index: Int
    let publisher: RedisLink
    let subscriber: RedisLink
    unowned let broker: RedisBroker

    private enum Subscription {
        case subscribing
        case subscribed
        case unsubscribing
    }

    /// Keyed by the client-visible channel name (without the prefix).
    private var subscriptions: [[UInt8]: Subscription] = [:]
    private(set) var isUp = false

    init(index: Int, publisher: RedisLink, subscriber: RedisLink, broker: RedisBroker) {
        self.index = index
        self.publisher = publisher
        self.subscriber = subscriber
        self.broker = broker
        publisher.delegate = self
        subscriber.delegate = self
    }

    var label: String { publisher.endpoint.label }

    /// Redis has confirmed this server's subscription to `channel`: its messages reach this server from now on.
    func isSubscribed(_ channel: [UInt8]) -> Bool { subscriptions[channel] == .subscribed }

    func start() {
        publisher.start()
        subscriber.start()
    }

    /// Brings the channel's subscription in line with whether this server has readers for it.
    func reconcile(_ channel: [UInt8]) {
        guard subscriber.isReady else { return }
        let wanted = broker.hasReaders(channel)
        switch subscriptions[channel] {
        case nil where wanted:
            subscriptions[channel] = .subscribing
            subscriber.command(
                [RedisShard.subscribeWord, broker.key(for: channel)], redisSubscriptionReplied)
        case .subscribed where !wanted:
            subscriptions[channel] = .unsubscribing
            // No callback: hiredis hands the answer to the channel's subscribe callback.
            subscriber.command([RedisShard.unsubscribeWord, broker.key(for: channel)], nil)
        default:
            // In flight: decided again when the answer comes.
            break
        }
    }

    private static let subscribeWord = Array("SUBSCRIBE".utf8)
    private static let unsubscribeWord = Array("UNSUBSCRIBE".utf8)
    /// More channels per SUBSCRIBE would save little and make one huge command after a reconnect.
    private static let resubscribeBatch = 512

    // MARK: RedisLinkDelegate

    func linkReady(_ link: RedisLink) {
        if link === publisher { broker.loadScripts(on: publisher) }
        if link === subscriber {
            subscriptions.removeAll()
            subscriber.command(
                [RedisShard.subscribeWord, broker.controlKey], redisSubscriptionReplied)
            // Everything this server's clients read, in batches.
            var batch: [[UInt8]] = [RedisShard.subscribeWord]
            for channel in broker.channelsWithReaders(onShard: index) {
                subscriptions[channel] = .subscribing
                batch.append(broker.key(for: channel))
                if batch.count > RedisShard.resubscribeBatch {
                    subscriber.command(batch, redisSubscriptionReplied)
                    batch.removeSubrange(1...)
                }
            }
            if batch.count > 1 { subscriber.command(batch, redisSubscriptionReplied) }
        }
        if link.connections > 1 { broker.status.reconnects.add(fromOwner: 1) }
        updateUp()
    }

    func linkLost(_ link: RedisLink) {
        if link === subscriber {
            subscriptions.removeAll()
            broker.unsubscribed(nil, shard: index)
        } else if subscriber.isReady {
            // The publishing side noticed first (PING unanswered, or the connection dropped): a Redis that
            // stopped answering would leave the subscribing side silently stuck, so both start over.
            subscriber.close(because: "the publishing connection to the same Redis was lost")
        }
        updateUp()
    }

    func link(_ link: RedisLink, pushed reply: UnsafeMutablePointer<redisReply>) {
        let answer = reply.pointee
        guard answer.type == REDIS_REPLY_ARRAY, answer.elements >= 3, let elements = answer.element,
            let kind = elements[0], let name = elements[1], kind.pointee.type == REDIS_REPLY_STRING,
            name.pointee.type == REDIS_REPLY_STRING
        else { return }
        let kindText = UnsafeRawBufferPointer(start: kind.pointee.str, count: kind.pointee.len)
        let key = UnsafeRawBufferPointer(start: name.pointee.str, count: name.pointee.len)
        if kindText.elementsEqual("message".utf8) {
            guard let payload = elements[2], payload.pointee.type == REDIS_REPLY_STRING else { return }
            broker.received(
                key: key, payload: UnsafeRawBufferPointer(start: payload.pointee.str, count: payload.pointee.len))
            return
        }
        guard let channel = broker.channel(forKey: key) else { return }
        if kindText.elementsEqual("subscribe".utf8) {
            if subscriptions[channel] == .subscribing {
                subscriptions[channel] = .subscribed
                broker.subscribed(channel)
            }
        } else if kindText.elementsEqual("unsubscribe".utf8) {
            subscriptions[channel] = nil
            broker.unsubscribed(channel, shard: index)
        } else {
            return
        }
        reconcile(channel)
    }

    private func updateUp() {
        let up = publisher.isReady && subscriber.isReady
        guard up != isUp else { return }
        isUp = up
        broker.status.connectedShards.add(fromOwner: up ? 1 : -1)
    }
}
