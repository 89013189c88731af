import FERNet
import Foundation

/// Everything `fer train` can set.
public struct TrainConfig: Codable, Sendable {
    public var architecture = Architecture.defaultName
    public var epochs = 40
    public var batchSize = 64
    public var optimizer = "adamw"          // adamw | adam | sgd
    public var learningRate: Float = 2e-3
    public var weightDecay: Float = 5e-4
    public var schedule = "cosine"          // cosine | plateau | constant
    public var warmupEpochs: Float = 1
    public var labelSmoothing: Float = 0.1
    public var augmentation = Augmentation()
    public var seed: UInt64 = 1
    /// Stochastic weight averaging (Izmailov et al. 2018): from this epoch on, the network that is
    /// evaluated, chosen and saved is the running average of the weights at the end of each epoch,
    /// with batch-norm statistics recomputed on Training faces. Meant for a constant or high
    /// learning rate after a finished run (`--init-from`). nil: off.
    public var swaStart: Int? = nil
    /// FER+ votes (`fer2013new.csv`) blended into the targets: each Training face learns
    /// (1-w)·its FER2013 label + w·its FER+ vote distribution over the seven emotions. nil: off.
    public var ferPlusFile: String? = nil
    /// w above.
    public var ferPlusWeight: Float? = nil
    /// Knowledge distillation: each Training face learns (1-w)·its FER2013 label + w·this model's
    /// probabilities for it (the mean of the face as seen and mirrored, as flip TTA takes it),
    /// computed once when the run starts or resumes. nil: off.
    public var teacherFile: String? = nil
    /// w above.
    public var teacherWeight: Float? = nil
    public init() {}
}

/// One epoch's figures.
public struct EpochRecord: Codable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double
    public var valAccuracy: Double
    public var learningRate: Float
    public var seconds: Double
    /// With weight averaging: PublicTest accuracy of the epoch's own last weights (`valAccuracy`
    /// is then the average's).
    public var lastWeightsValAccuracy: Double? = nil
}

/// What a training run has done so far; written beside the checkpoint so `--resume` continues it.
public struct TrainState: Codable, Sendable {
    public var config: TrainConfig
    public var epochsDone = 0
    public var optimizerStep = 0
    public var history: [EpochRecord] = []
    public var bestAccuracy = 0.0
    public var bestEpoch = 0
    public var rng: SeededGenerator
    public var plateau: PlateauSchedule?
    public var normalization: Normalization
    public var elapsed = 0.0
    /// Every command that ran this training, the first one and each resume; a run started from
    /// another model's weights (`initialModel`) begins with the commands that made that model.
    public var commands: [String]? = nil
    /// The model file whose weights this run started from, if any.
    public var initialModel: String? = nil
    /// That model in one line (path, recipe, score), for the saved model's recipe.
    public var startedFrom: String? = nil
    /// With a teacher: which model, in one line (for the recipe).
    public var teacher: String? = nil
    /// How many epochs' weights the weight average holds (its tensors are in the checkpoint).
    public var averagedEpochs: Int? = nil
    /// How many Training faces the run trains on (a resume must see the same ones).
    public var trainingFaces: Int? = nil
}

/// Per-batch progress for a progress bar.
public struct TrainProgress: Sendable {
    public var epoch: Int, epochs: Int, batch: Int, batches: Int
    public var loss: Double, accuracy: Double, elapsed: Double, imagesPerSecond: Double
}

/// Result of running a network over a dataset.
public struct Evaluation: Sendable {
    public var loss: Double
    public var confusion: Confusion
    public var probabilities: [Float]   // count·classes
    public var accuracy: Double { confusion.accuracy }
}

/// Evaluates a network on faces (no augmentation), in batches, optionally with flip TTA.
public func evaluate(_ net: Network, on data: FERDataset, normalization: Normalization, labels: [String],
                     batchSize: Int = 256, flipTTA: Bool = false) -> Evaluation {
    let k = labels.count, px = FERDataset.pixels, side = FERDataset.side
    var conf = Confusion(labels: labels)
    var probsAll = [Float](repeating: 0, count: data.count * k)
    var lossSum = 0.0
    var start = 0
    while start < data.count {
        let n = min(batchSize, data.count - start)
        var passes: [[Float]] = []
        for flip in (flipTTA ? [false, true] : [false]) {
            var x = [Float](repeating: 0, count: n * px)
            for i in 0..<n {
                let base = (start + i) * px
                for y in 0..<side { for xx in 0..<side {
                    let sx = flip ? side - 1 - xx : xx
                    x[i * px + y * side + xx] = normalization.input(pixel: data.images[base + y * side + sx])
                } }
            }
            let logits = net.forward(Tensor(shape: [1, n, side, side], data: x), training: false).data
            passes.append(SoftmaxCrossEntropy.softmax(logits, classes: k))
        }
        for i in 0..<n {
            var row = [Float](repeating: 0, count: k)
            for p in passes { for j in 0..<k { row[j] += p[i * k + j] / Float(passes.count) } }
            let t = Int(data.labels[start + i])
            lossSum -= log(Double(max(row[t], 1e-12)))
            conf.add(truth: t, predicted: argmax(row[...]))
            for j in 0..<k { probsAll[(start + i) * k + j] = row[j] }
        }
        start += n
    }
    return Evaluation(loss: lossSum / Double(max(data.count, 1)), confusion: conf, probabilities: probsAll)
}

/// Trains a network on FER2013 Training rows, validating on PublicTest each epoch, keeping the
/// best model by PublicTest accuracy and a resumable checkpoint.
public final class Trainer {
    public let directory: URL
    public let name: String
    public let train: FERDataset
    public let val: FERDataset
    public private(set) var state: TrainState
    public let network: Network
    /// With `ferPlusWeight`: the FER+ vote distribution of each Training face (train.count·7);
    /// with `teacherWeight`: the teacher's probabilities for each.
    public let votes: [Float]?
    let optimizer: Optimizer
    /// With `swaStart`: the running average of the weights (by tensor name, statistics excluded).
    var averageWeights: [String: [Float]] = [:]
    /// The command running now; recorded in the model card after those of earlier runs.
    public var command = "" {
        didSet { state.commands = (state.commands ?? []) + [command] }
    }
    public var dataDescription = ""
    public var onProgress: ((TrainProgress) -> Void)?
    public var onEpoch: ((EpochRecord, TrainState) -> Void)?

    var checkpointWeights: URL { directory.appendingPathComponent("checkpoint.weights") }
    var checkpointState: URL { directory.appendingPathComponent("checkpoint.json") }

    /// Starts a new run, or with `resume` continues the checkpoint in `directory`. A resumed run
    /// keeps its recorded recipe except the epoch total, which `resumeEpochs` may change (the
    /// cosine schedule then spans the new total from the next step on). A new run may start from
    /// the weights of `initialModel` (same architecture) with a fresh optimizer and schedule: a
    /// fine-tune, or another cosine cycle after a finished one. `votes`, when the caller has read
    /// `config.ferPlusFile` already, saves reading it again. A new run refuses a directory that
    /// holds another run's checkpoint (hours of training a rerun of the same command would
    /// replace), unless `overwrite` says to start again there.
    public init(config: TrainConfig, train: FERDataset, val: FERDataset, directory: URL, name: String, resume: Bool,
                resumeEpochs: Int? = nil, initialModel: URL? = nil, votes preloaded: FERPlusVotes? = nil,
                overwrite: Bool = false) throws {
        self.directory = directory; self.name = name; self.train = train; self.val = val
        if !resume && !overwrite { try Trainer.refuseNewRun(in: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var cfg = config
        if resume {
            try Trainer.requireRun(in: directory)
            let data = try Data(contentsOf: directory.appendingPathComponent("checkpoint.json"))
            let saved = try JSONDecoder().decode(TrainState.self, from: data)
            cfg = saved.config
            if let e = resumeEpochs {
                guard e > saved.epochsDone else {
                    throw ShapeError("the checkpoint has already trained \(saved.epochsDone) epochs; ask for more than that")
                }
                cfg.epochs = e
            }
            if let n = saved.trainingFaces, n != train.count {
                throw ShapeError("the checkpoint in \(directory.path) trains on \(n) Training faces, this data has \(train.count) "
                                 + "(resume with the same data and --limit)")
            }
            state = saved
            state.config = cfg
        } else {
            state = TrainState(config: cfg, rng: SeededGenerator(seed: cfg.seed), normalization: Trainer.normalization(of: train))
        }
        state.trainingFaces = train.count
        if let file = cfg.ferPlusFile, let w = cfg.ferPlusWeight, w > 0 {
            let v = try preloaded ?? FERPlusVotes.load(file)
            guard v.count(.training) >= train.count else {
                throw ShapeError("\(file) has votes for \(v.count(.training)) Training rows; training uses \(train.count)")
            }
            votes = v.distributions(.training, limit: train.count)
        } else if let file = cfg.teacherFile, let w = cfg.teacherWeight, w > 0 {
            let teacher = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: file))
            votes = try Trainer.teacherTargets(teacher, faces: train)
            if !resume {
                let d = teacher.description
                state.teacher = teacher.url.path + (d.training.map { ": \($0.architecture)" } ?? "") + (d.card.map { c in
                    ", PublicTest " + String(format: "%.4f", c.accuracy) + (c.accuracyFlipTTA.map { String(format: " (flip TTA %.4f)", $0) } ?? "")
                } ?? "")
            }
        } else {
            votes = nil
        }
        var initial: FacialExpressionModel?
        if let initialModel, !resume {
            let m = try FacialExpressionModel(contentsOf: initialModel)
            guard let specs = Architecture.all[cfg.architecture], m.description.architecture == specs else {
                throw ShapeError("\(initialModel.path) is not a \(cfg.architecture) network; pass its architecture with --arch")
            }
            guard m.description.labels == FERDataset.labels else {
                throw ShapeError("\(initialModel.path) has labels \(m.description.labels), not FER2013's \(FERDataset.labels)")
            }
            initial = m
            state.normalization = m.description.normalization
            state.initialModel = initialModel.path
            state.startedFrom = initialModel.path + (m.description.training.map { t in
                ": \(t.architecture), \(t.optimizer) peak learning rate \(t.learningRate), \(t.schedule), \(t.epochs) epochs, seed \(t.seed)"
            } ?? "") + (m.description.card.map { c in
                "; best epoch \(c.bestEpoch), PublicTest " + String(format: "%.4f", c.accuracy)
            } ?? "")
            if let made = m.description.card?.command, !made.isEmpty { state.commands = [made] }
        }
        guard let specs = Architecture.all[cfg.architecture] else {
            throw ShapeError("unknown architecture \(cfg.architecture); known: \(Architecture.all.keys.sorted().joined(separator: ", "))")
        }
        network = try Network(specs: specs, input: (1, FERDataset.side, FERDataset.side), seed: cfg.seed)
        switch cfg.optimizer {
        case "adamw": optimizer = Adam(weightDecay: cfg.weightDecay, decoupled: true)
        case "adam": optimizer = Adam(weightDecay: cfg.weightDecay, decoupled: false)
        case "sgd": optimizer = SGD(momentum: 0.9, nesterov: true, weightDecay: cfg.weightDecay)
        default: throw ShapeError("unknown optimizer \(cfg.optimizer); use adamw, adam or sgd")
        }
        if cfg.schedule == "plateau" && state.plateau == nil { state.plateau = PlateauSchedule(lr: cfg.learningRate) }
        if let initial, let initialModel {
            try network.importTensors(initial.network.exportTensors(), file: initialModel.path)
        }
        if resume {
            let tensors = try WeightsFile.decode(Data(contentsOf: checkpointWeights), file: checkpointWeights.path)
            try network.importTensors(tensors.filter { !$0.name.hasPrefix("opt.") && !$0.name.hasPrefix("swa.") },
                                      file: checkpointWeights.path)
            var opt: [String: [Float]] = [:]
            for t in tensors where t.name.hasPrefix("opt.") { opt[String(t.name.dropFirst(4))] = t.values }
            for t in tensors where t.name.hasPrefix("swa.") { averageWeights[String(t.name.dropFirst(4))] = t.values }
            guard averageWeights.isEmpty == ((state.averagedEpochs ?? 0) == 0) else {
                throw ShapeError("\(checkpointWeights.path): the weight average does not match checkpoint.json")
            }
            try optimizer.restore(opt, step: state.optimizerStep)
        }
    }

    /// Pixel mean and standard deviation of a dataset on the 0-1 scale.
    public static func normalization(of d: FERDataset) -> Normalization {
        var s = 0.0, s2 = 0.0
        for v in d.images { let f = Double(v) / 255; s += f; s2 += f * f }
        let n = Double(max(d.images.count, 1)), m = s / n
        return Normalization(mean: Float(m), std: Float(max((s2 / n - m * m).squareRoot(), 1e-3)))
    }

    var batchesPerEpoch: Int { (train.count + state.config.batchSize - 1) / state.config.batchSize }

    func learningRate(step: Int) -> Float {
        let c = state.config
        switch c.schedule {
        case "cosine":
            return CosineSchedule(base: c.learningRate, minimum: c.learningRate * 0.01,
                                  warmupSteps: Int(c.warmupEpochs * Float(batchesPerEpoch)),
                                  totalSteps: c.epochs * batchesPerEpoch).lr(at: step)
        case "plateau": return state.plateau?.lr ?? c.learningRate
        default: return c.learningRate
        }
    }

    /// One optimisation step on a batch of dataset rows; returns (loss, correct).
    public func trainStep(rows: [Int], rng: inout SeededGenerator) -> (loss: Float, correct: Int) {
        let c = state.config, side = FERDataset.side, px = FERDataset.pixels
        let n = rows.count, norm = state.normalization
        var x = [Float](repeating: 0, count: n * px)
        let seeds = (0..<n).map { _ in rng.next() }
        let aug = c.augmentation
        x.withUnsafeMutableBufferPointer { xp in
            let xb = xp.baseAddress!
            parallelFor(n) { range in
                var img = [Float](repeating: 0, count: px)
                for i in range {
                    let base = rows[i] * px
                    for j in 0..<px { img[j] = Float(self.train.images[base + j]) / 255 }
                    var r = SeededGenerator(seed: seeds[i])
                    aug.apply(&img, size: side, rng: &r)
                    for j in 0..<px { xb[i * px + j] = norm.input(img[j]) }
                }
            }
        }
        let labels = rows.map { Int(train.labels[$0]) }
        let k = network.outputSize
        let (loss, logits) = Trainer.optimisationStep(network: network, optimizer: optimizer, input: Tensor(shape: [1, n, side, side], data: x),
                                                      targets: targets(rows: rows, classes: k), labelSmoothing: c.labelSmoothing,
                                                      lr: learningRate(step: optimizer.step))
        var correct = 0
        for i in 0..<n where argmax(logits.data[(i * k)..<((i + 1) * k)]) == labels[i] { correct += 1 }
        return (loss, correct)
    }

    /// One optimisation step, what every batch of a run gets: forward in training mode, softmax
    /// cross-entropy against `targets` (count·classes, with label smoothing), backward, and the
    /// optimiser's update at `lr`. The PyTorch reference test runs this very function.
    public static func optimisationStep(network: Network, optimizer: Optimizer, input: Tensor, targets: [Float],
                                        labelSmoothing: Float, lr: Float) -> (loss: Float, logits: Tensor) {
        network.zeroGrad()
        let logits = network.forward(input, training: true)
        let k = network.outputSize
        let (loss, grad) = SoftmaxCrossEntropy.lossAndGradient(logits: logits.data, targets: targets, classes: k, smoothing: labelSmoothing)
        network.backward(Tensor(shape: logits.shape, data: grad), inputGradient: false)
        optimizer.update(network.parameters, lr: lr)
        return (loss, logits)
    }

    /// The target distributions of dataset rows: one-hot labels, blended with their FER+ votes
    /// or their teacher's probabilities when the run uses them (rows no annotator gave one of the
    /// seven emotions keep their label).
    func targets(rows: [Int], classes k: Int) -> [Float] {
        var t = [Float](repeating: 0, count: rows.count * k)
        let w = state.config.ferPlusWeight ?? state.config.teacherWeight ?? 0
        for (i, r) in rows.enumerated() {
            let label = Int(train.labels[r])
            if let votes, k == 7, votes[(r * 7)..<(r * 7 + 7)].contains(where: { $0 > 0 }) {
                for j in 0..<k { t[i * k + j] = w * votes[r * 7 + j] }
                t[i * k + label] += 1 - w
            } else {
                t[i * k + label] = 1
            }
        }
        return t
    }

    /// A teacher's probabilities for each face of `faces` (faces.count·7): the mean of each face as
    /// seen and mirrored, in batches of 256. The teacher must have FER2013's labels and 48x48 input.
    public static func teacherTargets(_ m: FacialExpressionModel, faces: FERDataset) throws -> [Float] {
        let url = m.url
        guard m.description.labels == FERDataset.labels else {
            throw ShapeError("\(url.path) has labels \(m.description.labels), not FER2013's \(FERDataset.labels): it cannot teach this run")
        }
        guard m.inputSize.width == FERDataset.side, m.inputSize.height == FERDataset.side else {
            throw ShapeError("\(url.path) takes \(m.inputSize.width)x\(m.inputSize.height) faces, not FER2013's 48x48")
        }
        var out: [Float] = []
        out.reserveCapacity(faces.count * 7)
        for start in stride(from: 0, to: faces.count, by: 256) {
            let batch = (start..<min(faces.count, start + 256)).map { faces.image($0) }
            for p in m.predict(faces: batch, flipTTA: true) { out += p }
        }
        return out
    }

    /// What the checkpoint in `directory` holds ("vgg48, 6 of 40 epochs done, best PublicTest
    /// 0.5879 at epoch 6"), or nil when there is none. A checkpoint that cannot be read is still
    /// somebody's run: it is described as such rather than ignored.
    public static func existingRun(in directory: URL) -> String? {
        let file = directory.appendingPathComponent("checkpoint.json")
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        guard let data = try? Data(contentsOf: file), let s = try? JSONDecoder().decode(TrainState.self, from: data) else {
            return "\(file.lastPathComponent) (unreadable)"
        }
        return "\(s.config.architecture), \(s.epochsDone) of \(s.config.epochs) epochs done"
            + (s.bestEpoch > 0 ? ", best PublicTest " + String(format: "%.4f", s.bestAccuracy) + " at epoch \(s.bestEpoch)" : "")
    }

    /// Throws, saying so, when `directory` holds no checkpoint to resume.
    public static func requireRun(in directory: URL) throws {
        guard existingRun(in: directory) == nil else { return }
        throw ShapeError("\(directory.path) holds no checkpoint to resume; start the run without --resume")
    }

    /// Throws, saying what it holds, when `directory` holds a run's checkpoint: where a new run
    /// would replace it.
    public static func refuseNewRun(in directory: URL) throws {
        guard let earlier = existingRun(in: directory) else { return }
        throw ShapeError("\(directory.path) holds the checkpoint of a run: \(earlier); continue it with --resume, "
                         + "or start again with --overwrite (which replaces it and the model saved there)")
    }

    /// Runs the remaining epochs (or stops after epoch `until`, as an interrupted run would).
    /// Returns the URL of the best model's JSON.
    @discardableResult
    public func run(until: Int? = nil) throws -> URL {
        let c = state.config
        let labels = FERDataset.labels
        while state.epochsDone < min(c.epochs, until ?? c.epochs) {
            let epoch = state.epochsDone + 1
            let t0 = Date()
            network.reseedDropout(c.seed &+ UInt64(epoch) &* 1_000_003)   // same masks whether resumed or not
            var rng = state.rng   // a local copy: trainStep reads `state` while it draws from the generator
            var order = Array(0..<train.count)
            order.shuffle(using: &rng)
            var lossSum = 0.0, correct = 0, seen = 0
            let nb = batchesPerEpoch
            for b in 0..<nb {
                let rows = Array(order[(b * c.batchSize)..<min(train.count, (b + 1) * c.batchSize)])
                let (loss, corr) = trainStep(rows: rows, rng: &rng)
                lossSum += Double(loss) * Double(rows.count); correct += corr; seen += rows.count
                let el = Date().timeIntervalSince(t0)
                onProgress?(TrainProgress(epoch: epoch, epochs: c.epochs, batch: b + 1, batches: nb,
                                          loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                                          elapsed: el, imagesPerSecond: Double(seen) / max(el, 1e-9)))
            }
            state.rng = rng
            let lrNow = learningRate(step: max(optimizer.step - 1, 0))
            var chosen = network
            var lastWeights: Evaluation? = nil
            if let s = c.swaStart, epoch >= s {
                lastWeights = evaluate(network, on: val, normalization: state.normalization, labels: labels)
                addToAverage()
                chosen = try averagedNetwork()
            }
            let ev = evaluate(chosen, on: val, normalization: state.normalization, labels: labels)
            let secs = Date().timeIntervalSince(t0)
            let rec = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
                                  valLoss: ev.loss, valAccuracy: ev.accuracy, learningRate: lrNow, seconds: secs,
                                  lastWeightsValAccuracy: lastWeights?.accuracy)
            state.history.append(rec)
            state.epochsDone = epoch
            state.optimizerStep = optimizer.step
            state.elapsed += secs
            if c.schedule == "plateau" { _ = state.plateau?.observe(Float(ev.accuracy)) }
            if ev.accuracy > state.bestAccuracy || state.bestEpoch == 0 {
                state.bestAccuracy = ev.accuracy; state.bestEpoch = epoch
                try saveModel(evaluation: ev, network: chosen)
            } else {
                try recordRunLength()
            }
            try saveCheckpoint()
            try Charts.trainingCurves(state.history, title: "\(name): \(c.architecture)")
                .write(to: directory.appendingPathComponent("curves.svg"), atomically: true, encoding: .utf8)
            onEpoch?(rec, state)
        }
        return directory.appendingPathComponent("\(name).json")
    }

    func recipe() -> TrainingRecipe {
        let c = state.config
        return TrainingRecipe(architecture: c.architecture, epochs: c.epochs, batchSize: c.batchSize, optimizer: c.optimizer,
                              learningRate: c.learningRate, weightDecay: c.weightDecay,
                              schedule: c.schedule == "cosine" ? "cosine, \(c.warmupEpochs) warm-up epochs" : c.schedule,
                              labelSmoothing: c.labelSmoothing, augmentation: c.augmentation, seed: c.seed, data: dataDescription,
                              averagedFromEpoch: c.swaStart, ferPlusWeight: votes == nil ? nil : c.ferPlusWeight,
                              teacher: votes == nil ? nil : state.teacher, teacherWeight: votes == nil ? nil : c.teacherWeight,
                              startedFrom: state.startedFrom)
    }

    /// The first `faces` faces of `data` (no augmentation), normalised, in whole batches of
    /// `batchSize` (so each counts once in an average of batch statistics; all of them in one
    /// batch if there are fewer).
    public static func calibrationBatches(_ data: FERDataset, faces: Int, batchSize: Int, normalization norm: Normalization) -> [Tensor] {
        let px = FERDataset.pixels, side = FERDataset.side
        let faces = min(data.count, faces), bs = max(batchSize, 2)
        func batch(_ start: Int, _ n: Int) -> Tensor {
            var x = [Float](repeating: 0, count: n * px)
            for j in 0..<(n * px) { x[j] = norm.input(pixel: data.images[start * px + j]) }
            return Tensor(shape: [1, n, side, side], data: x)
        }
        var batches = stride(from: 0, to: faces - bs + 1, by: bs).map { batch($0, bs) }
        if batches.isEmpty && faces > 0 { batches = [batch(0, faces)] }
        return batches
    }

    /// Batch-norm statistics of an averaged network come from this many Training faces.
    public static let averageCalibrationFaces = 4096

    static func isStatistic(_ name: String) -> Bool { name.hasSuffix("running_mean") || name.hasSuffix("running_var") }

    /// Adds the network's current weights to the running average (statistics excluded).
    func addToAverage() {
        let n = Float(state.averagedEpochs ?? 0)
        for t in network.exportTensors() where !Trainer.isStatistic(t.name) {
            if n == 0 { averageWeights[t.name] = t.values; continue }
            var m = averageWeights[t.name]!
            for i in m.indices { m[i] += (t.values[i] - m[i]) / (n + 1) }
            averageWeights[t.name] = m
        }
        state.averagedEpochs = Int(n) + 1
    }

    /// A network holding the averaged weights, its batch-norm statistics recomputed on the first
    /// `averageCalibrationFaces` Training faces (no augmentation) in batches of the run's size.
    public func averagedNetwork() throws -> Network {
        let c = state.config
        let net = try Network(specs: network.specs, input: network.inputShape, seed: c.seed)
        try net.importTensors(network.exportTensors().map { t in (t.name, t.shape, averageWeights[t.name] ?? t.values) },
                              file: "the weight average")
        let batches = Trainer.calibrationBatches(train, faces: Trainer.averageCalibrationFaces, batchSize: c.batchSize,
                                                 normalization: state.normalization)
        net.reseedDropout(c.seed)
        net.recomputeBatchNormStatistics(batches)
        return net
    }

    /// Saves the best model as shipped (float16 weights) and records in its card the accuracy of
    /// that very file, re-evaluated after saving.
    func saveModel(evaluation ev: Evaluation, network: Network) throws {
        let df = ISO8601DateFormatter()
        let card = ModelCard(evaluatedOn: "FER2013 PublicTest (\(val.count) faces)", accuracy: ev.accuracy, accuracyFlipTTA: nil,
                             perClass: ev.confusion.perClass, date: df.string(from: Date()),
                             command: (state.commands ?? [command]).joined(separator: " && "),
                             epochsTrained: state.epochsDone, bestEpoch: state.bestEpoch, trainingSeconds: state.elapsed,
                             notes: "figures measured on the saved file")
        let url = try FacialExpressionModel.save(network: network, name: name, directory: directory, labels: FERDataset.labels,
                                                 normalization: state.normalization, training: recipe(), card: card, storage: .float16)
        _ = try Trainer.recordFigures(of: url, card: card, on: val)
    }

    /// After an epoch that was not the best, the saved (best) model's card still tells how far the
    /// run went: epochs trained, training time and the commands so far (its figures are unchanged).
    func recordRunLength() throws {
        let url = directory.appendingPathComponent("\(name).json")
        guard var d = try? ModelDescription.load(url), var card = d.card else { return }
        card.epochsTrained = state.epochsDone
        card.trainingSeconds = state.elapsed
        card.command = (state.commands ?? [command]).joined(separator: " && ")
        d.card = card
        try d.write(url)
    }

    /// Evaluates a saved model file (as saved: float16 weights) on `val`, plain and with flip TTA,
    /// writes those figures into `card` (if any) and the card into the file's JSON; returns both evaluations.
    @discardableResult
    public static func recordFigures(of url: URL, card: ModelCard?, on val: FERDataset) throws -> (plain: Evaluation, flipTTA: Evaluation) {
        let saved = try FacialExpressionModel(contentsOf: url)
        let norm = saved.description.normalization, labels = saved.description.labels
        let plain = evaluate(saved.network, on: val, normalization: norm, labels: labels)
        let tta = evaluate(saved.network, on: val, normalization: norm, labels: labels, flipTTA: true)
        guard var card else { return (plain, tta) }
        card.accuracy = plain.accuracy; card.perClass = plain.confusion.perClass; card.accuracyFlipTTA = tta.accuracy
        var d = saved.description
        d.card = card
        try d.write(url)
        return (plain, tta)
    }

    func saveCheckpoint() throws {
        var tensors = network.exportTensors()
        for (k, v) in optimizer.state().sorted(by: { $0.key < $1.key }) { tensors.append(("opt.\(k)", [v.count], v)) }
        for (k, v) in averageWeights.sorted(by: { $0.key < $1.key }) { tensors.append(("swa.\(k)", [v.count], v)) }
        try WeightsFile.encode(tensors).write(to: checkpointWeights, options: .atomic)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(state).write(to: checkpointState, options: .atomic)
    }
}
