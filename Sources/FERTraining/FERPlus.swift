import FERNet
import Foundation

/// Microsoft's FER+ relabelling of FER2013 (`fer2013new.csv`): for every FER2013 row, in the same
/// order, ten annotators' votes over neutral, happiness, surprise, sadness, anger, disgust, fear,
/// contempt, unknown and NF (not a face).
///
/// Training can blend these votes into its targets (`TrainConfig.ferPlusWeight`): each Training
/// face's target becomes (1-w)·its FER2013 label + w·its FER+ vote distribution over the seven
/// FER2013 emotions, so a face whose label the annotators dispute is learnt with less certainty.
public struct FERPlusVotes: Sendable {
    /// The FER+ column that holds each FER2013 label's votes, in FER2013 label order.
    public static let columnForLabel = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]

    /// Each row's split, in file order.
    public var usage: [Usage]
    /// count·7 vote counts in FER2013 label order (contempt, unknown and NF left out).
    public var votes: [Float]
    public var count: Int { usage.count }

    public init(usage: [Usage], votes: [Float]) { self.usage = usage; self.votes = votes }

    /// Loads `fer2013new.csv` (or a gzipped copy).
    public static func load(_ path: String) throws -> FERPlusVotes {
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.missing(path) }
        return try parse(FERDataset.readMaybeGzip(path), file: path)
    }

    /// Parses the CSV: header `Usage,Image name,<vote columns>` naming at least the seven FER2013
    /// emotions as FER+ spells them; every row a split and non-negative integer votes. A bad row
    /// throws an error naming its line.
    public static func parse(_ bytes: [UInt8], file: String) throws -> FERPlusVotes {
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        // "\r\n" is one Character in Swift: split on both line ends
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let header = lines.first else { throw DatasetError.empty(file) }
        let cols = header.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let wanted = columnForLabel.map { name in cols.firstIndex(of: name.lowercased()) }
        guard cols.count >= 9, cols[0] == "usage", !wanted.contains(nil) else {
            throw DatasetError.badHeader(file, String(header.prefix(80)))
        }
        let index = wanted.map { $0! }
        var usage: [Usage] = [], votes: [Float] = []
        usage.reserveCapacity(lines.count); votes.reserveCapacity(lines.count * 7)
        for (i, line) in lines.enumerated().dropFirst() {
            if line.isEmpty { continue }
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == cols.count else {
                throw DatasetError.malformed(file: file, line: i + 1, reason: "\(f.count) fields, the header has \(cols.count)")
            }
            let u = f[0].trimmingCharacters(in: .whitespaces)
            guard let use = Usage(rawValue: u) else {
                throw DatasetError.malformed(file: file, line: i + 1, reason: "Usage \"\(u.prefix(40))\" is not Training, PublicTest or PrivateTest")
            }
            for (label, c) in index.enumerated() {
                guard let v = Int(f[c].trimmingCharacters(in: .whitespaces)), v >= 0, v <= 1000 else {
                    throw DatasetError.malformed(file: file, line: i + 1,
                                                 reason: "\(columnForLabel[label]) votes \"\(f[c].prefix(20))\" are not a count")
                }
                votes.append(Float(v))
            }
            usage.append(use)
        }
        guard !usage.isEmpty else { throw DatasetError.empty(file) }
        return FERPlusVotes(usage: usage, votes: votes)
    }

    /// Number of rows of a split.
    public func count(_ split: Usage) -> Int { usage.lazy.filter { $0 == split }.count }

    /// The vote distributions (7 per row, summing to 1; all zero where no annotator chose one of
    /// the seven) of the first `limit` rows of `split`, in file order.
    public func distributions(_ split: Usage, limit: Int = .max) -> [Float] {
        var out: [Float] = []
        var taken = 0
        for i in 0..<count where usage[i] == split && taken < limit {
            let row = votes[(i * 7)..<(i * 7 + 7)]
            let total = row.reduce(0, +)
            out.append(contentsOf: row.map { total > 0 ? $0 / total : 0 })
            taken += 1
        }
        return out
    }

    /// The share of rows (of those with votes for one of the seven emotions) whose most-voted
    /// emotion is the FER2013 label; `distributions` and `labels` are the same rows. A check that
    /// the two files are in the same order: about 0.64 on FER2013's Training rows, 1/7 at random.
    public static func agreement(distributions d: [Float], labels: [UInt8]) -> Double {
        var agree = 0, voted = 0
        for (r, l) in labels.enumerated() {
            let row = d[(r * 7)..<(r * 7 + 7)]
            guard row.contains(where: { $0 > 0 }) else { continue }
            voted += 1
            if argmax(row) == Int(l) { agree += 1 }
        }
        return voted == 0 ? 0 : Double(agree) / Double(voted)
    }
}
