/// The HTTP phase of a connection: the request head, then the body the application chose to read, then one
/// answer, which the application may give later (`awaitingAnswer`). A WebSocket upgrade ends it early. Pure
/// logic over bytes; the connection sends what it decides.
struct HTTPExchange {
    enum State {
        case readingHead(RequestHeadParser)
        case readingBody(RequestBodyReader)
        /// The request was handed to the application: its answer comes now or later (`HTTPAnswer.later`).
        case awaitingAnswer
        /// Answered, upgraded, or closing: input here is ignored.
        case over
    }

    /// What the bytes read so far amount to.
    enum Step {
        case needMore
        /// The request cannot be served: answered with `error` (and closed). `head` is there when it was read.
        case refused(HandshakeError, head: RequestHead?)
        /// A plain request, whole, with the body the application wanted (empty otherwise).
        case request(RequestHead, body: [UInt8])
        /// A WebSocket upgrade request; the bytes after the head start at `consumed` in the last input.
        case upgrade(RequestHead, consumed: Int)
    }

    private(set) var state: State

    init(maxHeadSize: Int) {
        state = .readingHead(RequestHeadParser(maxHeadSize: maxHeadSize))
    }

    var isAwaitingAnswer: Bool {
        if case .awaitingAnswer = state { return true }
        return false
    }

    /// Takes the next bytes. `bodyLimit` bounds a body; `readsBody` says whether the application wants the body
    /// of a plain request at all (one it answers from the head, an unauthorised publish say, is never buffered).
    mutating func feed(
        _ input: UnsafeRawBufferPointer, bodyLimit: Int, readsBody: (RequestHead) -> Bool
    ) -> Step {
        switch state {
        case .readingBody(let body):
            body.feed(input)
            guard body.isComplete else { return .needMore }
            state = .awaitingAnswer
            return .request(body.head, body: body.body)
        case .readingHead(var parser):
            // Moved out while it grows, so that the buffer inside is never shared (and never copied on write).
            state = .over
            switch parser.feed(input) {
            case .needMore:
                state = .readingHead(parser)
                return .needMore
            case .failure(let error):
                return .refused(error, head: nil)
            case .complete(let head, let consumed):
                if head.tokens("Upgrade").contains(where: { $0.asciiCaseInsensitiveEquals("websocket") }) {
                    return .upgrade(head, consumed: consumed)
                }
                let step = request(
                    head, rest: UnsafeRawBufferPointer(rebasing: input[consumed...]), bodyLimit: bodyLimit,
                    readsBody: readsBody)
                if case .request = step { state = .awaitingAnswer }
                return step
            }
        case .awaitingAnswer, .over:
            return .needMore
        }
    }

    /// A plain request (the API, health, metrics), with its body if it announces one and the application wants it.
    private mutating func request(
        _ head: RequestHead, rest: UnsafeRawBufferPointer, bodyLimit: Int, readsBody: (RequestHead) -> Bool
    ) -> Step {
        switch RequestBodyReader.announcedLength(of: head, limit: bodyLimit) {
        case .failure(let error):
            return .refused(error, head: head)
        case .success(0):
            return .request(head, body: [])
        case .success where !readsBody(head):
            // Answered from the head: what arrives of the body is dropped while the connection closes.
            return .request(head, body: [])
        case .success(let length):
            let body = RequestBodyReader(head: head, expectedLength: length)
            body.feed(rest)
            if body.isComplete { return .request(head, body: body.body) }
            state = .readingBody(body)
            return .needMore
        }
    }

    /// Nothing more is read as HTTP (answered, upgraded or closing); the head parser's buffer goes.
    mutating func end() {
        state = .over
    }
}
