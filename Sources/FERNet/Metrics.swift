/// A confusion matrix (rows: true label, columns: predicted) and the figures derived from it.
public struct Confusion: Codable, Sendable {
    public let labels: [String]
    public private(set) var matrix: [[Int]]

    public init(labels: [String]) {
        self.labels = labels
        matrix = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
    }

    public mutating func add(truth: Int, predicted: Int) { matrix[truth][predicted] += 1 }

    public var total: Int { matrix.reduce(0) { $0 + $1.reduce(0, +) } }
    public var correct: Int { (0..<labels.count).reduce(0) { $0 + matrix[$1][$1] } }
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    public var perClass: [ClassReport] {
        (0..<labels.count).map { c in
            let tp = Double(matrix[c][c])
            let support = matrix[c].reduce(0, +)
            let predicted = (0..<labels.count).reduce(0) { $0 + matrix[$1][c] }
            let p = predicted == 0 ? 0 : tp / Double(predicted)
            let r = support == 0 ? 0 : tp / Double(support)
            let f = p + r == 0 ? 0 : 2 * p * r / (p + r)
            return ClassReport(label: labels[c], precision: p, recall: r, f1: f, support: support)
        }
    }

    /// Unweighted mean of the per-class F1 scores.
    public var macroF1: Double { let pc = perClass; return pc.reduce(0) { $0 + $1.f1 } / Double(max(pc.count, 1)) }
}

/// Index of the largest value.
public func argmax(_ v: ArraySlice<Float>) -> Int {
    var bi = v.startIndex, bv = -Float.infinity
    for i in v.indices where v[i] > bv { bv = v[i]; bi = i }
    return bi - v.startIndex
}
