import ArgumentParser
import FERNet
import FERTraining
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on every row not marked Training (or the splits you name).")

    @Argument(help: "FER2013: Kaggle CSV (.csv or .csv.gz) or an image-folder copy (train/<emotion>/*.jpg, test/...).") var data = Defaults.data
    @Option(help: "Model JSON (its weights beside it).") var model = Defaults.model
    @Option(help: "Comma-separated splits to evaluate (default: all but Training).") var usage: String?
    @Flag(help: "Average each face with its mirror image (test-time augmentation).") var flipTTA = false
    @Option(help: "Confusion-matrix image to write (SVG).") var confusion = "out/confusion.svg"
    @OptionGroup var threads: ThreadOption

    func run() throws {
        threads.apply()
        let m = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: model))
        let all = try loadData(data)
        let splits: Set<Usage>
        if let usage {
            splits = Set(try usage.split(separator: ",").map { s in
                guard let u = Usage(rawValue: String(s)) else { throw ValidationError("unknown split \(s)") }
                return u
            })
        } else { splits = [.publicTest, .privateTest] }
        let d = all.subset(splits)
        guard d.count > 0 else { throw ValidationError("no rows in \(splits.map(\.rawValue).sorted().joined(separator: ", "))") }
        let t0 = Date()
        let ev = evaluate(m.network, on: d, normalization: m.description.normalization, labels: m.labels, flipTTA: flipTTA)
        let secs = Date().timeIntervalSince(t0)
        print("model: \(model)")
        // the splits the file actually has rows of, not those asked for
        let read = Usage.allCases.filter { splits.contains($0) }.compactMap { u -> String? in
            let n = all.subset([u]).count
            return n > 0 ? "\(u.rawValue) \(n)" : nil
        }
        print("rows: \(d.count) (\(read.joined(separator: " + ")))\(flipTTA ? ", flip TTA" : "")")
        print("accuracy: \(fmt(ev.accuracy))")
        print("loss: \(fmt(ev.loss))")
        printReport(ev.confusion)
        let url = URL(fileURLWithPath: confusion)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Charts.confusion(ev.confusion, title: "\(m.description.name) on \(read.map { $0.split(separator: " ")[0] }.joined(separator: "+"))")
            .write(to: url, atomically: true, encoding: .utf8)
        print("confusion matrix: \(url.path)")
        stderr("\(d.count) faces in \(fmt(secs, 2)) s (\(Int(Double(d.count) / secs)) faces/s)")
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the 7 emotion probabilities for a face image (PNG or PGM; scaled to 48x48 grey).")

    @Argument(help: "Image files of faces.") var images: [String]
    @Option(help: "Model JSON.") var model = Defaults.model
    @Flag(help: "Average with the mirror image.") var flipTTA = false

    func run() throws {
        let m = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: model))
        for path in images {
            let img = try ImageCodec.read(path)
            let face = Image.resizeGrey(img.grey, width: img.width, height: img.height, to: m.inputSize.width, m.inputSize.height)
            let p = m.predict(face: face, flipTTA: flipTTA)
            let best = argmax(p[...])
            print("\(path): \(m.labels[best]) \(fmt(Double(p[best]), 3))")
            for (l, v) in zip(m.labels, p) { print("  \(l.padding(toLength: 9, withPad: " ", startingAt: 0)) \(fmt(Double(v)))") }
        }
    }
}
