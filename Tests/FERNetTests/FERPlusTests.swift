import XCTest
@testable import FERNet
@testable import FERTraining

/// FER+ votes (`fer2013new.csv`) and training on targets blended from them.
final class FERPlusTests: XCTestCase {
    static let header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"

    /// fer2013new.csv beside FER2013 in ../shared/data/fer2013; skips when absent.
    func votesPath() throws -> String {
        let p = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/fer2013/fer2013new.csv").path
        guard FileManager.default.fileExists(atPath: p) else {
            throw XCTSkip("FER+ votes not found beside the checkout (../shared/data/fer2013/fer2013new.csv)")
        }
        return p
    }

    func testParsesVotesInFER2013LabelOrder() throws {
        let csv = Self.header + "Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0\r\nPublicTest,,0,0,0,0,0,0,0,0,0,10\nTraining,fer2.png,0,9,1,0,0,0,0,0,0,0\n"
        let v = try FERPlusVotes.parse(Array(csv.utf8), file: "t.csv")
        XCTAssertEqual(v.usage, [.training, .publicTest, .training])
        // angry, disgust, fear, happy, sad, surprise, neutral
        XCTAssertEqual(Array(v.votes[0..<7]), [3, 2, 0, 0, 1, 0, 4])
        XCTAssertEqual(v.count(.training), 2)
        let d = v.distributions(.training)
        XCTAssertEqual(d.count, 14)
        XCTAssertEqual(Array(d[0..<7]), [0.3, 0.2, 0, 0, 0.1, 0, 0.4].map { Float($0) })
        XCTAssertEqual(Array(d[7..<14]), [0, 0, 0, 0.9, 0, 0.1, 0].map { Float($0) })
        XCTAssertEqual(v.distributions(.publicTest), [Float](repeating: 0, count: 7), "NF only: no distribution")
        XCTAssertEqual(v.distributions(.training, limit: 1).count, 7)
        XCTAssertEqual(FERPlusVotes.agreement(distributions: d, labels: [6, 3]), 1)
        XCTAssertEqual(FERPlusVotes.agreement(distributions: d, labels: [0, 3]), 0.5)
    }

    func testMalformedVotesNameTheLine() {
        let cases: [(String, String)] = [
            (Self.header + "Training,a.png,1,2,3\n", "t.csv:2: 5 fields"),
            (Self.header + "Training,a.png,4,0,0,1,3,2,0,0,0,0\nTest,b.png,4,0,0,1,3,2,0,0,0,0\n", "t.csv:3: Usage \"Test\""),
            (Self.header + "Training,a.png,4,0,x,1,3,2,0,0,0,0\n", "t.csv:2: surprise votes \"x\""),
            (Self.header + "Training,a.png,4,0,0,1,-3,2,0,0,0,0\n", "t.csv:2: anger votes \"-3\""),
            ("emotion,pixels,Usage\n0,1 2 3,Training\n", "header must name"),
            (Self.header, "holds no images"),
        ]
        for (csv, expected) in cases {
            XCTAssertThrowsError(try FERPlusVotes.parse(Array(csv.utf8), file: "t.csv"), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should contain \(expected)")
            }
        }
    }

    /// The real votes line up with the real FER2013 rows: the annotators' favourite is the
    /// Kaggle label on most Training rows (far above the 1/7 of unrelated rows), and shifting the
    /// rows by one destroys that.
    func testRealVotesLineUpWithFER2013() throws {
        let votes = try FERPlusVotes.load(try votesPath())
        let train = try SharedData.load().subset([.training])
        XCTAssertEqual(votes.count(.training), train.count)
        let d = votes.distributions(.training)
        let agree = FERPlusVotes.agreement(distributions: d, labels: train.labels)
        XCTAssertGreaterThan(agree, 0.55)
        let shifted = FERPlusVotes.agreement(distributions: Array(d.dropFirst(7)), labels: Array(train.labels.dropLast()))
        XCTAssertLessThan(shifted, 0.35)
    }

    /// A run with FER+ votes learns the blended targets: (1-w)·label + w·votes, rows without
    /// votes one-hot; the recipe records w; a resume reads the votes again from the recorded file.
    func testTrainingBlendsVotesIntoTargetsAndResumes() throws {
        let all = try SharedData.load()
        let train = all.subset([.training]), val = all.subset([.publicTest])
        let n = 64
        let tr = FERDataset(images: Array(train.images.prefix(n * 2304)), labels: Array(train.labels.prefix(n)), usage: Array(train.usage.prefix(n)))
        let va = FERDataset(images: Array(val.images.prefix(64 * 2304)), labels: Array(val.labels.prefix(64)), usage: Array(val.usage.prefix(64)))
        // a votes file for these rows: row 0 all neutral, row 1 none of the seven, the rest split sad/happy
        var csv = Self.header
        for i in 0..<n {
            switch i {
            case 0: csv += "Training,a.png,10,0,0,0,0,0,0,0,0,0\n"
            case 1: csv += "Training,,0,0,0,0,0,0,0,2,3,5\n"
            default: csv += "Training,b.png,0,5,0,5,0,0,0,0,0,0\n"
            }
        }
        let dir = tempDir()
        let file = dir.appendingPathComponent("votes.csv")
        try csv.write(to: file, atomically: true, encoding: .utf8)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 2; c.batchSize = 32; c.seed = 3
        c.ferPlusFile = file.path; c.ferPlusWeight = 0.25
        let t = try Trainer(config: c, train: tr, val: va, directory: dir, name: "v", resume: false)
        let targets = t.targets(rows: [0, 1, 2], classes: 7)
        var expected = [Float](repeating: 0, count: 21)
        expected[Int(tr.labels[0])] += 0.75; expected[6] += 0.25
        expected[7 + Int(tr.labels[1])] = 1
        expected[14 + Int(tr.labels[2])] += 0.75; expected[14 + 3] += 0.125; expected[14 + 4] += 0.125
        assertClose(targets, expected, atol: 1e-6, "blended targets")
        try t.run(until: 1)
        let model = try FacialExpressionModel(contentsOf: dir.appendingPathComponent("v.json"))
        XCTAssertEqual(model.description.training?.ferPlusWeight, 0.25)
        let r = try Trainer(config: TrainConfig(), train: tr, val: va, directory: dir, name: "v", resume: true)
        XCTAssertEqual(r.votes, t.votes)
        XCTAssertEqual(r.targets(rows: [0, 1, 2], classes: 7), targets)
        // without votes the targets are one-hot labels
        var plain = c; plain.ferPlusFile = nil
        let p = try Trainer(config: plain, train: tr, val: va, directory: tempDir(), name: "p", resume: false)
        XCTAssertNil(p.votes)
        XCTAssertEqual(p.targets(rows: [2], classes: 7).enumerated().filter { $0.element == 1 }.map(\.offset), [Int(tr.labels[2])])
        // a votes file shorter than the training rows is refused
        try (Self.header + "Training,a.png,10,0,0,0,0,0,0,0,0,0\n").write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "s", resume: false)) { error in
            XCTAssertTrue("\(error)".contains("votes for 1 Training rows; training uses 64"), "\(error)")
        }
    }
}
