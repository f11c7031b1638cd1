import CSystem

/// The two Lua scripts that keep channel history in Redis (README "Several servers" and "History and recovery").
/// Each runs atomically on the channel's instance, which is what makes offsets global and keeps a message out
/// of every server's live stream until it is in history.
///
/// Keys of a channel: `<prefix>history:<channel>`, a stream whose entry ids are the offsets (`<offset>-0`), each
/// with the publish time `t` (Redis's clock, ms) and the frame `f`; `<prefix>position:<channel>`, a hash with
/// the `epoch` and the last `offset`. Both expire after HISTORY_TTL without a publish.
enum HistoryScripts {
    /// KEYS: stream, position, pub/sub channel. ARGV: MAXLEN, TTL (ms), an epoch to start with, the envelope's
    /// head, the frame. Appends and publishes the positioned envelope (head, epoch, 20-digit offset, frame); a
    /// channel without a position, or whose stream is gone (flushed, expired), starts a new epoch at offset 1,
    /// so an offset is never given twice in one epoch. Returns the offset.
    static let append = """
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        local offset
        if epoch and redis.call('EXISTS', KEYS[1]) == 1 then
          offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
        else
          epoch = ARGV[3]
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[2], 'epoch', epoch, 'offset', 1)
          offset = 1
        end
        local now = redis.call('TIME')
        local ms = now[1] * 1000 + math.floor(now[2] / 1000)
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], offset .. '-0', 't', ms, 'f', ARGV[5])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        redis.call('PUBLISH', KEYS[3], ARGV[4] .. epoch .. string.format('%020d', offset) .. ARGV[5])
        return offset
        """

    /// KEYS: stream, position, pub/sub channel. ARGV: the offset to read after, the most entries to return, the
    /// marker envelope. Publishes the marker first, so that the caller's subscription sees exactly where in the
    /// channel's live stream this read happened; returns `{epoch, last offset, now (ms), entries}`, the entries
    /// newest first (the newest `count` after the offset, so that they always reach the last one), or an empty
    /// array when the channel has no history.
    static let fetch = """
        redis.call('PUBLISH', KEYS[3], ARGV[3])
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then return {} end
        local last = redis.call('HGET', KEYS[2], 'offset')
        local now = redis.call('TIME')
        local ms = now[1] * 1000 + math.floor(now[2] / 1000)
        local entries = {}
        if tonumber(ARGV[2]) > 0 then
          entries = redis.call('XREVRANGE', KEYS[1], '+', '(' .. ARGV[1] .. '-0', 'COUNT', ARGV[2])
        end
        return {epoch, last, tostring(ms), entries}
        """

    static let appendSHA = sha1Hex(append)
    static let fetchSHA = sha1Hex(fetch)

    private static func sha1Hex(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = bytes.withUnsafeBufferPointer { CSystem_sha1($0.baseAddress, $0.count, &digest) }
        let hex = Array("0123456789abcdef".utf8)
        return digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }
    }
}
