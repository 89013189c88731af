import ArgumentParser
import FERNet
import FERTraining
import Foundation

struct RecomputeStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recompute-stats",
        abstract: "Recompute a model's batch-norm statistics on plain Training faces and write it as a new model.",
        discussion: """
        The running statistics a training run keeps come from augmented batches, averaged with \
        momentum; this replaces them with the plain average over the first --faces Training faces \
        as the model sees faces in use (no augmentation), as stochastic weight averaging does. \
        Weights are unchanged, unless --average-with names other models of the same architecture: \
        then the weights are the mean of all of them (a "model soup", as stochastic weight averaging \
        averages the epochs of one run) before the statistics are recomputed. Writes \
        <output>/<name>.json + .weights, evaluated on PublicTest, this command added to its card. \
        PrivateTest rows are never read.
        """)

    @Argument(help: "Model JSON (its weights beside it).") var model: String
    @Argument(help: "FER2013: Kaggle CSV (.csv or .csv.gz) or an image-folder copy.") var data = Defaults.data
    @Option(help: ArgumentHelp("Average the weights with this model's (same architecture and normalisation; repeat for more).", valueName: "model.json"))
    var averageWith: [String] = []
    @Option(help: "Training faces to average over (the first N).") var faces = Trainer.averageCalibrationFaces
    @Option(help: "Batch size of the passes (statistics are per-batch averages, as in training).") var batchSize = 64
    @Option(name: .shortAndLong, help: "Output directory (not the model's own).") var output: String
    @Option(help: "Model name (file stem; default the model's).") var name: String?
    @Option(help: "How to store the weights: float16, or int8 (convolution and dense weights as int8 with a scale per output channel: about half float16's size).")
    var weights: WeightStorage = .float16
    @OptionGroup var threads: ThreadOption

    func run() throws {
        threads.apply()
        guard faces > 0, batchSize > 1 else { throw ValidationError("--faces must be positive and --batch-size at least 2") }
        let source = URL(fileURLWithPath: model)
        let out = URL(fileURLWithPath: output)
        guard source.deletingLastPathComponent().standardizedFileURL.path != out.standardizedFileURL.path else {
            throw ValidationError("--output must not be the model's own directory: the model would be overwritten")
        }
        let m = try FacialExpressionModel(contentsOf: source)
        guard m.labels == FERDataset.labels else { throw ValidationError("\(model) has labels \(m.labels), not FER2013's") }
        let all = try loadData(data)
        let train = all.subset([.training]), val = all.subset([.publicTest])
        guard train.count > 0, val.count > 0 else { throw ValidationError("the data needs Training and PublicTest rows") }
        let d = m.description, norm = d.normalization
        let before = evaluate(m.network, on: val, normalization: norm, labels: m.labels)
        var madeBy = (d.card?.command.components(separatedBy: " && ") ?? []).filter { !$0.isEmpty }
        if !averageWith.isEmpty {
            var others: [Network] = []
            for path in averageWith {
                let other = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: path))
                guard other.description.architecture == d.architecture, other.labels == m.labels,
                      other.description.normalization == norm else {
                    throw ValidationError("\(path) is not the same architecture, labels and normalisation as \(model)")
                }
                others.append(other.network)
                let e = evaluate(other.network, on: val, normalization: norm, labels: m.labels)
                stderr("\(path): PublicTest \(fmt(e.accuracy))")
                // the commands that made it, after those already listed (runs started from this model repeat them)
                for c in other.description.card?.command.components(separatedBy: " && ") ?? [] where !madeBy.contains(c) { madeBy.append(c) }
            }
            try m.network.averageWeights(with: others)
        }
        let batches = Trainer.calibrationBatches(train, faces: faces, batchSize: batchSize, normalization: norm)
        m.network.reseedDropout(1)
        m.network.recomputeBatchNormStatistics(batches)
        let used = batches.reduce(0) { $0 + $1.shape[1] }
        let command = "fer " + CommandLine.arguments.dropFirst().joined(separator: " ")
        let note = (averageWith.isEmpty ? "" : "weights averaged with \(averageWith.joined(separator: ", ")); ")
            + "batch-norm statistics recomputed on \(used) Training faces (fer recompute-stats; PublicTest \(fmt(before.accuracy)) before)"
            + (weights == .int8 ? "; saved with int8 weights (a scale per output channel), the figures those of the int8 file" : "")
        var card = d.card
        if var c = card {
            c.command = (madeBy + [command]).joined(separator: " && ")
            c.date = ISO8601DateFormatter().string(from: Date())
            c.notes = [c.notes, note].compactMap { $0 }.joined(separator: "; ")
            card = c
        }
        let url = try FacialExpressionModel.save(network: m.network, name: name ?? d.name, directory: out, labels: m.labels,
                                                 normalization: norm, training: d.training, card: card, storage: weights)
        // the figures of the file as saved
        let (after, tta) = try Trainer.recordFigures(of: url, card: card, on: val)
        print("PublicTest accuracy: \(fmt(before.accuracy)) before, \(fmt(after.accuracy)) after (flip TTA \(fmt(tta.accuracy))), "
              + "statistics from \(used) Training faces")
        print("wrote \(url.path)")
    }
}

extension WeightStorage: ExpressibleByArgument {}
