/// The handlers an event loop flushes at the end of its tick, in the order they were marked.
///
/// Entries are unretained, so that marking a connection dirty, once per connection per tick on the
/// fan-out path, costs no reference count: a handler is kept alive by the loop's handler table while
/// registered, and by the loop's retired list from the moment it is deregistered until the end of the
/// tick's flush pass. A plain buffer rather than an array, because an array's append checks uniqueness,
/// and calling a handler read from an array retains and releases it around the call.
struct DirtyList: ~Copyable {
    struct Entry {
        let handler: Unmanaged<AnyObject>
        /// The handler's dynamic type, to call `flush()` on the unretained reference.
        let handlerType: any EventHandler.Type

        /// An entry for `handler`, to be kept by whoever marks it dirty often (no reference count per mark).
        init(_ handler: EventHandler) {
            self.handler = Unmanaged.passUnretained(handler)
            handlerType = type(of: handler)
        }

        /// Calls the handler's `flush()` without retaining it (see the list's comment for why it is alive).
        func flush() {
            Self.flush(handler, as: handlerType)
        }

        private static func flush<Handler: EventHandler>(_ handler: Unmanaged<AnyObject>, as _: Handler.Type) {
            // Unchecked: `handlerType` is the dynamic type of this very object, recorded by `append`.
            handler._withUnsafeGuaranteedRef { unsafeDowncast($0, to: Handler.self).flush() }
        }
    }

    private var storage: UnsafeMutablePointer<Entry>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func append(_ handler: EventHandler) {
        append(Entry(handler))
    }

    @inline(__always)
    mutating func append(_ entry: Entry) {
        if count == capacity { grow() }
        (storage + count).initialize(to: entry)
        count += 1
    }

    @inline(never)
    private mutating func grow() {
        let larger = UnsafeMutablePointer<Entry>.allocate(capacity: capacity * 2)
        larger.moveInitialize(from: storage, count: count)
        storage.deallocate()
        storage = larger
        capacity *= 2
    }

    subscript(index: Int) -> Entry {
        precondition(index < count)
        return storage[index]
    }

    mutating func removeAll() {
        storage.deinitialize(count: count)
        count = 0
    }
}
