/// The label that tells a family's samples apart and its values, in the order they are shown: one sample per
/// value. A family of one sample has no label name and one (unused) value.
struct MetricLabels: Sendable {
    let name: String?
    let values: [String]

    static let none = MetricLabels(name: nil, values: [""])

    init(name: String?, values: [String]) {
        self.name = name
        self.values = values
    }

    /// One value per case of `Label`, in declaration order (so indexed by raw value).
    init<Label: MetricLabel>(_ name: String, _ label: Label.Type) {
        self.init(name: name, values: Label.allCases.map(\.label))
    }
}
