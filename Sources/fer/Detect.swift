import ArgumentParser
import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation

/// The cascade GstFER uses unless told otherwise (Debian's opencv-data).
let defaultCascade = AnalysisSettings.defaultCascade

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find faces in images and print their boxes (and emotions with --model), as ferfilter finds them.",
        discussion: "The analysis is FaceAnalysis's, with ferfilter's defaults: the same faces, boxes and labels as the element "
            + "reports on the first frame of a stream of the picture.")

    @Argument(help: "Images (JPEG, PNG, PGM).") var images: [String]
    @Option(help: "Face detector: yunet or haar (ferfilter's detector).") var detector = AnalysisSettings().detector.name
    @Option(help: "YuNet model (ONNX).") var yunet = Defaults.yunet
    @Option(help: "YuNet: the longer side of the picture the network sees (ferfilter's detection-size; 0: the frame's).")
    var detectionSize = AnalysisSettings().detectionSize
    @Option(help: "Faces scoring below this are dropped (YuNet; ferfilter's detection-threshold).") var detectionThreshold = AnalysisSettings().detectionThreshold
    @Option(help: "YuNet: also look with the picture turned by +- this many degrees (ferfilter's search-tilt; 0: upright only).")
    var searchTilt = AnalysisSettings().searchTilt
    @Option(help: "Haar cascade XML.") var cascade = defaultCascade
    @Option(help: "Scale step between pyramid levels (ferfilter's scale-factor).") var scaleFactor = AnalysisSettings().scaleFactor
    @Option(help: "Neighbours a detection needs (ferfilter's min-neighbors).") var minNeighbors = AnalysisSettings().minNeighbors
    @Option(help: "Smallest face in pixels; 0: automatic, as ferfilter's min-face-size.") var minSize = AnalysisSettings().minFaceSize
    @Option(help: "Model JSON to classify each face.") var model: String?
    @Option(help: "Scale each image to this width first (height in proportion), as a frame of that size.") var width: Int?
    @Option(help: "Run the detection this many times more and print the median time (a benchmark).") var repeats = 0
    @Option(help: "Threads (0: one per core), as ferfilter's threads.") var threads = 0
    @Flag(help: "With --repeats and YuNet: where the network's time goes, step by step.") var profile = false

    func run() throws {
        let m = try model.map { try FacialExpressionModel(contentsOf: URL(fileURLWithPath: $0)) }
        var s = AnalysisSettings()
        s.scaleFactor = scaleFactor; s.minNeighbors = minNeighbors; s.minFaceSize = minSize
        guard let kind = DetectorKind(name: detector) else { throw ValidationError("--detector must be yunet or haar") }
        s.detector = kind; s.detectionThreshold = detectionThreshold; s.threads = threads; s.detectionSize = detectionSize
        s.searchTilt = searchTilt
        let detector = try s.makeDetector(cascade: cascade, yunet: yunet)
        for path in images {
            var img = try ImageCodec.read(path, colour: true)   // YuNet sees colour; --width: grey only
            if let width, width > 0, width != img.width {
                let h = max(1, Int((Double(img.height) * Double(width) / Double(img.width)).rounded()))
                img = Image(width: width, height: h, channels: 1, pixels: Image.resizeGrey(img.grey, width: img.width, height: img.height, to: width, h))
            }
            let grey = img.grey
            let t0 = Date()
            let lines: [String] = LumaPlane.over(img, grey: grey) { luma in
                if let m {
                    return FrameAnalysis.picture(luma, settings: s, model: m, detector: detector).map { f in
                        let r = f.reported(labels: m.labels)
                        return "  x \(r.x) y \(r.y) w \(r.width) h \(r.height) \(r.emotion) \(fmt(r.confidence, 2))"
                    }
                }
                return FrameAnalysis.detect(luma, settings: s, detector: detector).map { b in
                    "  x \(b.x) y \(b.y) w \(b.width) h \(b.height) " + (b.landmarks.isEmpty ? "(\(b.neighbors) neighbours)"
                        : "score \(fmt(b.score, 3)) landmarks " + b.landmarks.map { "\(fmt($0.x, 1)),\(fmt($0.y, 1))" }.joined(separator: " "))
                }
            }
            var took = Date().timeIntervalSince(t0)
            if repeats > 0 {
                let times = (0..<repeats).map { _ in
                    LumaPlane.over(img, grey: grey) { luma in
                        let t = Date()
                        _ = Parallelism.withThreads(threads) { FrameAnalysis.detect(luma, settings: s, detector: detector) }
                        return Date().timeIntervalSince(t)
                    }
                }.sorted()
                took = times[times.count / 2]
            }
            if profile, let y = detector as? YuNetDetector {
                ONNXNetwork.profiling = true; ONNXNetwork.profile = [:]
                let t = Date()
                for _ in 0..<max(repeats, 1) {
                    LumaPlane.over(img, grey: grey) { luma in
                        _ = Parallelism.withThreads(threads) { FrameAnalysis.detect(luma, settings: s, detector: y) }
                    }
                }
                let n = Double(max(repeats, 1)), total = Date().timeIntervalSince(t) * 1000 / n
                ONNXNetwork.profiling = false
                var network = 0.0
                for (name, op) in y.greyNetwork.describeSteps() {
                    let ms = (ONNXNetwork.profile[name] ?? 0) / n
                    network += ms
                    print(String(format: "  %-8@ %-32@ %6.3f ms", name as NSString, op as NSString, ms))
                }
                print(String(format: "  network %.2f ms of %.2f ms a detection (the rest: scaling, padding, decoding)", network, total))
            }
            print("\(path) (\(img.width)x\(img.height)): \(lines.count) faces in \(fmt(took * 1000, 1)) ms\(repeats > 0 ? " (median of \(repeats))" : "")")
            for line in lines { print(line) }
        }
    }
}

struct Scene: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render real FER2013 PublicTest faces on a background: one PNG frame, or a raw GRAY8 clip.",
        discussion: """
        With --frames N > 1 the output is raw GRAY8 video (width*height bytes per frame) in which the faces drift slowly; play or encode it with e.g. `filesrc location=clip.gray ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 ! videoconvert ! ...`.
        """)
    @Option(help: "Frames to render (1: a PNG image; more: a raw GRAY8 clip).") var frames = 1

    @Argument(help: "FER2013 CSV or image folder.") var data = Defaults.data
    @Option(help: "Output image (.png or .pgm).") var output = "out/scene.png"
    @Option(help: "Frame width.") var width = 640
    @Option(help: "Frame height.") var height = 480
    @Option(help: "Number of faces.") var faces = 4
    @Option(help: "Face size in pixels.") var size = 144
    @Option(help: "First PublicTest row to use.") var first = 0

    func run() throws {
        let d = try loadData(data).subset([.publicTest])
        let s = FaceScene.grid(width: width, height: height, rows: Array(first..<(first + faces)), size: size)
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: output).deletingLastPathComponent(), withIntermediateDirectories: true)
        if frames <= 1 {
            let px = s.render(d)
            try ImageCodec.encodePNG(Image(width: width, height: height, channels: 1, pixels: px)).write(to: URL(fileURLWithPath: output))
        } else {
            FileManager.default.createFile(atPath: output, contents: nil)
            let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            defer { try? fh.close() }
            for t in 0..<frames {
                try fh.write(contentsOf: s.moved(frame: t).render(d, phase: t))
            }
            print("\(frames) frames of \(width)x\(height) GRAY8 in \(output)")
        }
        for p in s.placements { print("face row \(p.row) (\(FERDataset.labels[Int(d.labels[p.row])])) at x \(p.x) y \(p.y) size \(p.size)") }
    }
}
