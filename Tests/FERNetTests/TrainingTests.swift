import XCTest
@testable import FERNet

final class TrainingTests: XCTestCase {
    /// Two seeded runs give identical losses, and an interrupted run resumed from its checkpoint
    /// ends exactly where the uninterrupted one does.
    func testSeededTrainingIsReproducibleAndResumable() throws {
        let all = try SharedData.load()
        let train = all.subset([.training]), val = all.subset([.publicTest])
        func take(_ d: FERDataset, _ n: Int) -> FERDataset {
            FERDataset(images: Array(d.images.prefix(n * 2304)), labels: Array(d.labels.prefix(n)), usage: Array(d.usage.prefix(n)))
        }
        let tr = take(train, 256), va = take(val, 128)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 2; c.batchSize = 32; c.learningRate = 3e-3; c.seed = 11
        let a = try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "a", resume: false)
        try a.run()
        let b = try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "b", resume: false)
        try b.run()
        XCTAssertEqual(a.state.history.map(\.trainLoss), b.state.history.map(\.trainLoss))
        // the same run interrupted after epoch 1, then resumed from its checkpoint
        let dir = tempDir()
        try Trainer(config: c, train: tr, val: va, directory: dir, name: "r", resume: false).run(until: 1)
        let r = try Trainer(config: c, train: tr, val: va, directory: dir, name: "r", resume: true)
        try r.run()
        XCTAssertEqual(r.state.history.map(\.trainLoss), a.state.history.map(\.trainLoss))
        XCTAssertEqual(r.state.history.map(\.valAccuracy), a.state.history.map(\.valAccuracy))
        XCTAssertEqual(r.network.exportTensors().map(\.values), a.network.exportTensors().map(\.values))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.json").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("curves.svg").path))
    }

    /// The tiny network learns: PublicTest accuracy after two epochs on 4,000 faces beats the
    /// majority class (happy, 24.9%).
    func testTinyNetworkLearns() throws {
        let all = try SharedData.load()
        let train = all.subset([.training]), val = all.subset([.publicTest])
        let n = 4000
        let tr = FERDataset(images: Array(train.images.prefix(n * 2304)), labels: Array(train.labels.prefix(n)), usage: Array(train.usage.prefix(n)))
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 3; c.batchSize = 64; c.learningRate = 3e-3; c.augmentation = .none
        let t = try Trainer(config: c, train: tr, val: val, directory: tempDir(), name: "t", resume: false)
        try t.run()
        XCTAssertGreaterThan(t.state.bestAccuracy, 0.30)
        XCTAssertLessThan(t.state.history.last!.trainLoss, t.state.history.first!.trainLoss)
    }
}
