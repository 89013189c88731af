import ArgumentParser
import FERNet
import Foundation

struct Card: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's card (architecture, recipe, PublicTest figures) as Markdown.")

    @Argument(help: "Model JSON.") var model = Defaults.model

    func run() throws {
        let m = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: model))
        let d = m.description
        print("# Model card: \(d.name)\n")
        print("- Labels: \(d.labels.joined(separator: ", "))")
        print("- Input: \(d.input.width)x\(d.input.height) grey, normalised (p/255 - \(fmt(Double(d.normalization.mean)))) / \(fmt(Double(d.normalization.std)))")
        print("- Architecture: \(d.training?.architecture ?? "custom"), \(d.parameters ?? m.network.parameterCount) parameters, "
              + "\(String(format: "%.0f", Double(d.macs ?? m.network.macsPerSample) / 1e6)) M multiply-adds per face")
        print("- Weights: \(d.weights.file)" + (d.weights.storage.map { " (\($0))" } ?? "") + ", \(d.weights.bytes) bytes, CRC-32 \(d.weights.crc32)")
        if let t = d.training {
            print("\n## Training\n")
            print("- Data: \(t.data)")
            print("- \(t.optimizer), peak learning rate \(t.learningRate), weight decay \(t.weightDecay), \(t.schedule), "
                  + "label smoothing \(t.labelSmoothing), batch \(t.batchSize), \(t.epochs) epochs, seed \(t.seed)"
                  + (t.averagedFromEpoch.map { "; weights averaged over the ends of epoch \($0) on (SWA), batch-norm statistics recomputed" } ?? ""))
            if let s = t.startedFrom { print("- Started from the weights of \(s)") }
            if let w = t.ferPlusWeight {
                print("- Targets: \(fmt(Double(1 - w), 2)) · FER2013 label + \(fmt(Double(w), 2)) · FER+ vote distribution (fer2013new.csv) over the seven emotions")
            }
            if let w = t.teacherWeight, let teacher = t.teacher {
                print("- Targets: \(fmt(Double(1 - w), 2)) · FER2013 label + \(fmt(Double(w), 2)) · the probabilities (flip TTA) of the teacher \(teacher)")
            }
            let a = t.augmentation
            print("- Augmentation per batch: shift ±\(Int(a.maxShift * 100))%, rotation ±\(Int(a.maxRotation))°, scale \(a.scale.lowerBound)-\(a.scale.upperBound), "
                  + "flip \(a.flip), brightness ±\(a.brightness), contrast ±\(a.contrast), erasing p=\(a.eraseProbability)")
        }
        if let c = d.card {
            print("\n## Evaluation\n")
            print("- \(c.evaluatedOn): accuracy **\(fmt(c.accuracy))**" + (c.accuracyFlipTTA.map { ", with flip TTA \(fmt($0))" } ?? ""))
            print("- Best epoch \(c.bestEpoch) of \(c.epochsTrained) trained; \(c.date)" + (c.trainingSeconds.map { "; \(hms($0)) of training" } ?? ""))
            if let n = c.notes { print("- \(n)") }
            print("\n| label | precision | recall | F1 | support |\n|---|---|---|---|---|")
            for r in c.perClass { print("| \(r.label) | \(fmt(r.precision, 3)) | \(fmt(r.recall, 3)) | \(fmt(r.f1, 3)) | \(r.support) |") }
            print("\nMade by:\n\n```sh\n\(c.command)\n```")
        }
        print("\nPrivateTest, FER2013's final test split, is withheld from this project: the figures above are PublicTest's, the split the model was chosen on.")
    }
}
