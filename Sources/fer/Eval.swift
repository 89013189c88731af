import ArgumentParser
import FaceAnalysis
import FERNet
import FERTraining
import Foundation

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on every row not marked Training (or the splits you name), or on labelled photos as ferfilter reads them.",
        discussion: """
        DATA a folder with labels.csv (file,emotion) and the photos beside it or in images/ (wild-dev's layout): each \
        photo is analysed as ferfilter analyses a still picture (FaceAnalysis with the element's defaults: detection, \
        alignment by the landmarks, flip TTA), the largest face's emotion is compared with the label, and a photo with \
        no face found counts as wrong. --padded centres each photo on a grey canvas twice its size.
        """)

    @Argument(help: "FER2013: Kaggle CSV (.csv or .csv.gz) or an image-folder copy (train/<emotion>/*.jpg, test/...); or a folder of labelled photos (labels.csv).") var data = Defaults.data
    @Option(help: "With labelled photos: the face detector, yunet or haar (ferfilter's detector).") var detector = AnalysisSettings().detector.name
    @Option(help: "With labelled photos: YuNet model (ONNX).") var yunet = Defaults.yunet
    @Option(help: "With labelled photos: Haar cascade XML (with --detector haar).") var cascade = AnalysisSettings.defaultCascade
    @Flag(help: "With labelled photos: centre each on a grey canvas twice its size.") var padded = false
    @Option(help: "Model JSON (its weights beside it).") var model = Defaults.model
    @Option(help: "Comma-separated splits to evaluate (default: all but Training).") var usage: String?
    @Flag(help: "Average each face with its mirror image (test-time augmentation).") var flipTTA = false
    @Option(help: "Confusion-matrix image to write (SVG).") var confusion = "out/confusion.svg"
    @OptionGroup var threads: ThreadOption

    func run() throws {
        threads.apply()
        let m = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: model))
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue,
           FileManager.default.fileExists(atPath: (data as NSString).appendingPathComponent("labels.csv")) {
            return try photos(model: m)
        }
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

extension Eval {
    /// Labelled photos (labels.csv: file,emotion), each analysed as ferfilter analyses a still.
    func photos(model m: FacialExpressionModel) throws {
        let dir = URL(fileURLWithPath: data)
        let text = try String(contentsOf: dir.appendingPathComponent("labels.csv"), encoding: .utf8)
        var rows: [(file: String, label: Int)] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if n == 0 && f.first?.lowercased() == "file" { continue }
            guard f.count >= 2, !f[0].isEmpty else { throw ValidationError("labels.csv line \(n + 1): expected file,emotion, got \(line)") }
            guard let label = m.labels.firstIndex(of: f[1].lowercased()) else {
                throw ValidationError("labels.csv line \(n + 1): \(f[1]) is not one of the model's labels (\(m.labels.joined(separator: ", ")))")
            }
            rows.append((f[0], label))
        }
        guard !rows.isEmpty else { throw ValidationError("labels.csv in \(data) lists no photos") }
        var s = AnalysisSettings()
        guard let kind = DetectorKind(name: detector) else { throw ValidationError("--detector must be yunet or haar") }
        s.detector = kind
        let faceDetector = try s.makeDetector(cascade: cascade, yunet: yunet)
        let labels = m.labels
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: labels.count + 1), count: labels.count)   // last column: no face
        var found = [Int](repeating: 0, count: labels.count), right = [Int](repeating: 0, count: labels.count)
        var photos = [Int](repeating: 0, count: labels.count)
        let t0 = Date()
        for r in rows {
            let direct = dir.appendingPathComponent(r.file), inImages = dir.appendingPathComponent("images").appendingPathComponent(r.file)
            let path = FileManager.default.fileExists(atPath: direct.path) ? direct.path : inImages.path
            var img = try ImageCodec.read(path, colour: true)
            if padded { img = Eval.pad(img) }
            let faces = LumaPlane.over(img) { FrameAnalysis.picture($0, settings: s, model: m, detector: faceDetector) }
            photos[r.label] += 1
            guard let face = faces.max(by: { $0.width * $0.height < $1.width * $1.height }) else {
                confusion[r.label][labels.count] += 1
                continue
            }
            let said = face.labelIndex
            found[r.label] += 1
            confusion[r.label][said] += 1
            if said == r.label { right[r.label] += 1 }
        }
        let secs = Date().timeIntervalSince(t0)
        print("photos: \(rows.count) in \(data)\(padded ? ", padded" : ""); model \(model); detector \(kind.name)")
        print("per class (photos/found/right): " + labels.indices.filter { photos[$0] > 0 }
            .map { "\(labels[$0]) \(photos[$0])/\(found[$0])/\(right[$0])" }.joined(separator: ", "))
        print("confusion (rows: label; columns: read as, then no face):")
        print("".padding(toLength: 9, withPad: " ", startingAt: 0) + (labels.map { String($0.prefix(7)) } + ["none"]).map { $0.leftPad(8) }.joined())
        for c in labels.indices where photos[c] > 0 {
            print(labels[c].padding(toLength: 9, withPad: " ", startingAt: 0) + confusion[c].map { String($0).leftPad(8) }.joined())
        }
        print("faces found \(found.reduce(0, +))/\(rows.count), emotions right \(right.reduce(0, +))/\(rows.count)")
        stderr("\(rows.count) photos in \(fmt(secs, 1)) s")
    }

    /// `img` centred on a mid-grey canvas twice its size.
    static func pad(_ img: Image) -> Image {
        let w = img.width * 2, h = img.height * 2, ch = img.channels
        var px = [UInt8](repeating: 128, count: w * h * ch)
        let x0 = img.width / 2, y0 = img.height / 2
        for y in 0..<img.height {
            let src = y * img.width * ch, dst = ((y0 + y) * w + x0) * ch
            px.replaceSubrange(dst..<(dst + img.width * ch), with: img.pixels[src..<(src + img.width * ch)])
        }
        return Image(width: w, height: h, channels: ch, pixels: px)
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
