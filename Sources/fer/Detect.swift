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
    @Option(help: "Haar cascade XML.") var cascade = defaultCascade
    @Option(help: "Scale step between pyramid levels (ferfilter's scale-factor).") var scaleFactor = AnalysisSettings().scaleFactor
    @Option(help: "Neighbours a detection needs (ferfilter's min-neighbors).") var minNeighbors = AnalysisSettings().minNeighbors
    @Option(help: "Smallest face in pixels; 0: automatic, as ferfilter's min-face-size.") var minSize = AnalysisSettings().minFaceSize
    @Option(help: "Model JSON to classify each face.") var model: String?

    func run() throws {
        let c = try HaarCascade(contentsOf: cascade)
        let m = try model.map { try FacialExpressionModel(contentsOf: URL(fileURLWithPath: $0)) }
        var s = AnalysisSettings()
        s.scaleFactor = scaleFactor; s.minNeighbors = minNeighbors; s.minFaceSize = minSize
        let detector = s.haar(c)
        for path in images {
            let img = try ImageCodec.read(path)
            let g = img.grey
            let t0 = Date()
            let lines: [String] = g.withUnsafeBufferPointer { buf in
                let luma = LumaPlane(pixels: buf.baseAddress!, width: img.width, height: img.height, stride: img.width)
                if let m {
                    return FrameAnalysis.picture(luma, settings: s, model: m, detector: detector).map { f in
                        let r = f.reported(labels: m.labels)
                        return "  x \(r.x) y \(r.y) w \(r.width) h \(r.height) \(r.emotion) \(fmt(r.confidence, 2))"
                    }
                }
                return FrameAnalysis.detect(luma, settings: s, detector: detector).map { b in
                    "  x \(b.x) y \(b.y) w \(b.width) h \(b.height) (\(b.neighbors) neighbours)"
                }
            }
            print("\(path): \(lines.count) faces in \(fmt(Date().timeIntervalSince(t0) * 1000, 1)) ms")
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
