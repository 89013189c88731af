import XCTest
@testable import FERNet
@testable import FERTraining

/// The first `n` faces of a dataset.
private func take(_ d: FERDataset, _ n: Int) -> FERDataset {
    FERDataset(images: Array(d.images.prefix(n * 2304)), labels: Array(d.labels.prefix(n)), usage: Array(d.usage.prefix(n)))
}

final class TrainingTests: XCTestCase {
    /// Two seeded runs give identical losses, and an interrupted run resumed from its checkpoint
    /// ends exactly where the uninterrupted one does.
    func testSeededTrainingIsReproducibleAndResumable() throws {
        let all = try SharedData.load()
        let train = all.subset([.training]), val = all.subset([.publicTest])
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
        // the best model's card counts every epoch of the run, whichever was best
        let card = try XCTUnwrap(ModelDescription.load(dir.appendingPathComponent("r.json")).card)
        XCTAssertEqual(card.epochsTrained, 2)
        XCTAssertEqual(card.bestEpoch, r.state.bestEpoch)
        // resuming on other faces (another --limit) is refused, naming both counts
        XCTAssertThrowsError(try Trainer(config: c, train: take(train, 300), val: va, directory: dir, name: "r", resume: true)) { error in
            XCTAssertTrue("\(error)".contains("trains on 256 Training faces, this data has 300"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("curves.svg").path))
    }

    /// Rerunning the command that started a long run must not throw the run away: a new run in a
    /// directory holding a checkpoint is refused, saying what the checkpoint holds and leaving
    /// every file as it was; `overwrite` starts again there, and `resume` continues.
    func testANewRunDoesNotReplaceAnotherRunsCheckpoint() throws {
        let all = try SharedData.load()
        let tr = take(all.subset([.training]), 96), va = take(all.subset([.publicTest]), 64)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 3; c.batchSize = 32; c.seed = 5
        let dir = tempDir()
        XCTAssertNil(Trainer.existingRun(in: dir))
        let first = try Trainer(config: c, train: tr, val: va, directory: dir, name: "m", resume: false)
        try first.run(until: 1)
        func files() throws -> [String: Data] {
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            return try Dictionary(uniqueKeysWithValues: names.map { ($0, try Data(contentsOf: dir.appendingPathComponent($0))) })
        }
        let before = try files()
        XCTAssertTrue(before.keys.contains("checkpoint.weights") && before.keys.contains("m.json"), "\(before.keys)")
        var again = c; again.seed = 6
        XCTAssertThrowsError(try Trainer(config: again, train: tr, val: va, directory: dir, name: "m", resume: false)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(dir.path) && text.contains("tiny, 1 of 3 epochs done")
                          && text.contains("best PublicTest") && text.contains("--resume") && text.contains("--overwrite"), text)
        }
        XCTAssertEqual(try files(), before, "a refused run changed the directory")
        // the run continues where it stopped
        let resumed = try Trainer(config: again, train: tr, val: va, directory: dir, name: "m", resume: true)
        XCTAssertEqual(resumed.state.epochsDone, 1)
        XCTAssertEqual(resumed.state.config.seed, 5)
        // a checkpoint that cannot be read still stops a new run
        try Data("{".utf8).write(to: dir.appendingPathComponent("checkpoint.json"))
        XCTAssertThrowsError(try Trainer(config: again, train: tr, val: va, directory: dir, name: "m", resume: false)) { error in
            XCTAssertTrue("\(error)".contains("unreadable"), "\(error)")
        }
        // overwrite starts again from epoch 0 with the new recipe
        let fresh = try Trainer(config: again, train: tr, val: va, directory: dir, name: "m", resume: false, overwrite: true)
        XCTAssertEqual(fresh.state.epochsDone, 0)
        try fresh.run(until: 1)
        XCTAssertEqual(Trainer.existingRun(in: dir).map { $0.hasPrefix("tiny, 1 of 3 epochs done") }, true)
        XCTAssertNotEqual(try Data(contentsOf: dir.appendingPathComponent("checkpoint.weights")), before["checkpoint.weights"])
    }

    /// Distillation: with a teacher (the shipped model), each Training face's target is
    /// (1-w)·its label + w·the teacher's flip-TTA probabilities for that very face; the saved
    /// model's recipe names the teacher and w, a resumed run computes the same targets, and a
    /// teacher with other labels is refused.
    func testATeacherBlendsItsProbabilitiesIntoTheTargets() throws {
        let all = try SharedData.load()
        let tr = take(all.subset([.training]), 64), va = take(all.subset([.publicTest]), 64)
        let teacherURL = packageRoot.appendingPathComponent("Models/fernet.json")
        let teacher = try FacialExpressionModel(contentsOf: teacherURL)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 2; c.batchSize = 32; c.seed = 4
        c.teacherFile = teacherURL.path; c.teacherWeight = 0.4
        let dir = tempDir()
        let t = try Trainer(config: c, train: tr, val: va, directory: dir, name: "s", resume: false)
        let rows = [0, 5, 9, 63]
        let targets = t.targets(rows: rows, classes: 7)
        var agree = 0
        for (i, r) in rows.enumerated() {
            let p = teacher.predict(face: tr.image(r), flipTTA: true)   // one face at a time, not the batched path
            var expected = p.map { 0.4 * $0 }
            expected[Int(tr.labels[r])] += 0.6
            assertClose(Array(targets[(i * 7)..<(i * 7 + 7)]), expected, atol: 1e-5, "row \(r)")
            XCTAssertEqual(targets[(i * 7)..<(i * 7 + 7)].reduce(0, +), 1, accuracy: 1e-5)
        }
        // the teacher's probabilities belong to the right faces: it agrees with most labels
        let votes = try XCTUnwrap(t.votes)
        for r in 0..<tr.count where argmax(votes[(r * 7)..<(r * 7 + 7)]) == Int(tr.labels[r]) { agree += 1 }
        XCTAssertGreaterThan(agree, 40, "the teacher agrees with \(agree) of 64 Training labels")
        try t.run(until: 1)
        let saved = try XCTUnwrap(ModelDescription.load(dir.appendingPathComponent("s.json")).training)
        XCTAssertEqual(saved.teacherWeight, 0.4)
        XCTAssertTrue(saved.teacher?.hasPrefix(teacherURL.path + ": vgg48, PublicTest 0.6849 (flip TTA 0.7005)") ?? false, "\(saved.teacher ?? "nil")")
        let r = try Trainer(config: TrainConfig(), train: tr, val: va, directory: dir, name: "s", resume: true)
        XCTAssertEqual(r.targets(rows: rows, classes: 7), targets)
        // a teacher whose labels are in another order cannot teach
        let other = tempDir()
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: teacherURL)) as! [String: Any]
        json["labels"] = Array((json["labels"] as! [String]).reversed())
        try JSONSerialization.data(withJSONObject: json).write(to: other.appendingPathComponent("fernet.json"))
        try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("Models/fernet.weights"), to: other.appendingPathComponent("fernet.weights"))
        c.teacherFile = other.appendingPathComponent("fernet.json").path
        XCTAssertThrowsError(try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "s", resume: false)) { error in
            XCTAssertTrue("\(error)".contains("not FER2013's"), "\(error)")
        }
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

    /// A run started from a model's weights (`fer train --init-from`) begins with exactly those
    /// weights and a fresh schedule, and its model card's command begins with the commands that
    /// made that model and its recipe names that model; a model of another architecture is
    /// refused by name.
    func testStartingFromAModelKeepsItsWeightsAndItsRecipe() throws {
        let all = try SharedData.load()
        let train = all.subset([.training]), val = all.subset([.publicTest])
        let tr = take(train, 256), va = take(val, 128)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 1; c.batchSize = 32; c.learningRate = 3e-3; c.seed = 5
        let dirA = tempDir()
        let a = try Trainer(config: c, train: tr, val: va, directory: dirA, name: "a", resume: false)
        a.command = "fer train first"
        let modelA = try a.run()
        let saved = try FacialExpressionModel(contentsOf: modelA)

        c.learningRate = 1e-3; c.seed = 6
        let dirB = tempDir()
        let b = try Trainer(config: c, train: tr, val: va, directory: dirB, name: "b", resume: false, initialModel: modelA)
        XCTAssertEqual(b.network.exportTensors().map(\.values), saved.network.exportTensors().map(\.values))
        XCTAssertEqual(b.state.epochsDone, 0)
        b.command = "fer train second"
        let modelB = try b.run()
        let card = try XCTUnwrap(FacialExpressionModel(contentsOf: modelB).description.card)
        XCTAssertEqual(card.command, "fer train first && fer train second")
        // its recipe names the model it started from, with that model's recipe and score
        let from = try XCTUnwrap(FacialExpressionModel(contentsOf: modelB).description.training?.startedFrom)
        XCTAssertTrue(from.hasPrefix(modelA.path + ": tiny, adamw peak learning rate 0.003"), from)
        XCTAssertTrue(from.hasSuffix("; best epoch 1, PublicTest " + String(format: "%.4f", saved.description.card!.accuracy)), from)
        XCTAssertNotEqual(b.network.exportTensors().map(\.values), saved.network.exportTensors().map(\.values), "it trained")

        c.architecture = "seed"
        XCTAssertThrowsError(try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "c", resume: false,
                                         initialModel: modelA)) { error in
            XCTAssertTrue("\(error)".contains("is not a seed network"), "\(error)")
        }
    }
}

final class WeightAveragingTests: XCTestCase {
    /// Recomputed batch-norm statistics are the plain average over the batches given (as
    /// PyTorch's `update_bn`): the mean of every value, and the mean of the batches' unbiased
    /// variances; the layer's momentum is left as it was.
    /// A model soup holds the mean of the networks' weights; another architecture is refused.
    func testAveragingWeightsOfNetworks() throws {
        let a = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 1)
        let b = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 2)
        let c = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 3)
        let (ta, tb, tc) = (a.exportTensors(), b.exportTensors(), c.exportTensors())
        XCTAssertNotEqual(ta[0].values, tb[0].values)
        try a.averageWeights(with: [b, c])
        for (i, t) in a.exportTensors().enumerated() {
            let want = (0..<t.values.count).map { (ta[i].values[$0] + tb[i].values[$0] + tc[i].values[$0]) / 3 }
            assertClose(t.values, want, atol: 1e-6, "mean of \(t.name)")
        }
        XCTAssertEqual(b.exportTensors().map(\.values), tb.map(\.values), "the others are unchanged")
        let other = try Network(specs: [.conv(4), .relu, .flatten, .dense(7)], input: (1, 48, 48), seed: 1)
        XCTAssertThrowsError(try a.averageWeights(with: [other]))
    }

    func testRecomputedBatchNormStatisticsAverageTheBatches() throws {
        let net = try Network(specs: [.bn, .flatten, .dense(3)], input: (1, 4, 4), seed: 3)
        var rng = SeededGenerator(seed: 9)
        var batches: [Tensor] = [], all: [Double] = [], variances: [Double] = []
        for k in 0..<3 {
            let v = (0..<(5 * 16)).map { _ in Float.random(in: -1...1, using: &rng) * Float(k + 1) + Float(k) }
            batches.append(Tensor(shape: [1, 5, 4, 4], data: v))
            let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
            variances.append(v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count - 1))
            all += v.map(Double.init)
        }
        net.recomputeBatchNormStatistics(batches)
        let bn = try XCTUnwrap(net.layers.first as? BatchNorm)
        XCTAssertEqual(Double(bn.runningMean.value[0]), all.reduce(0, +) / Double(all.count), accuracy: 1e-5)
        XCTAssertEqual(Double(bn.runningVar.value[0]), variances.reduce(0, +) / 3, accuracy: 1e-4)
        XCTAssertEqual(bn.momentum, 0.1)
    }

    /// With `swaStart`, the averaged network holds the mean of the weights at the end of each
    /// epoch from that one on, its own batch-norm statistics; the average survives a resume, and
    /// the epoch records carry the last weights' accuracy beside the average's.
    func testWeightAverageIsTheMeanOfTheEpochsAndSurvivesAResume() throws {
        let all = try SharedData.load()
        let tr = take(all.subset([.training]), 256), va = take(all.subset([.publicTest]), 128)
        var c = TrainConfig(); c.architecture = "tiny"; c.epochs = 3; c.batchSize = 32; c.learningRate = 3e-3
        c.schedule = "constant"; c.seed = 8; c.swaStart = 2
        let t = try Trainer(config: c, train: tr, val: va, directory: tempDir(), name: "s", resume: false)
        var ends: [[String: [Float]]] = []
        t.onEpoch = { _, _ in ends.append(Dictionary(uniqueKeysWithValues: t.network.exportTensors().map { ($0.name, $0.values) })) }
        try t.run()
        XCTAssertEqual(t.state.averagedEpochs, 2)
        XCTAssertNil(t.state.history[0].lastWeightsValAccuracy)
        XCTAssertNotNil(t.state.history[2].lastWeightsValAccuracy)
        let avg = try t.averagedNetwork()
        var compared = 0
        for x in avg.exportTensors() {
            if x.name.hasSuffix("running_mean") || x.name.hasSuffix("running_var") {
                XCTAssertNotEqual(x.values, ends[2][x.name], "statistics recomputed, not the last epoch's")
                continue
            }
            for (i, v) in x.values.enumerated() {
                XCTAssertEqual(v, (ends[1][x.name]![i] + ends[2][x.name]![i]) / 2, accuracy: 1e-6)
            }
            XCTAssertNotEqual(ends[1][x.name], ends[2][x.name])
            compared += 1
        }
        XCTAssertEqual(compared, t.network.parameters.count, "every weight and bias")

        let dir = tempDir()
        try Trainer(config: c, train: tr, val: va, directory: dir, name: "r", resume: false).run(until: 2)
        let r = try Trainer(config: c, train: tr, val: va, directory: dir, name: "r", resume: true)
        try r.run()
        XCTAssertEqual(try r.averagedNetwork().exportTensors().map(\.values), avg.exportTensors().map(\.values))
        XCTAssertEqual(r.state.history.map(\.valAccuracy), t.state.history.map(\.valAccuracy))
    }
}
