import ArgumentParser
import FaceDetect
import FERNet
import Foundation

/// The cascade GstFER uses unless told otherwise (Debian's opencv-data).
let defaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find faces in images with the Haar cascade and print their boxes (and emotions with --model).")

    @Argument(help: "Images (JPEG, PNG, PGM).") var images: [String]
    @Option(help: "Haar cascade XML.") var cascade = defaultCascade
    @Option(help: "Scale step between pyramid levels.") var scaleFactor = 1.1
    @Option(help: "Neighbours a detection needs.") var minNeighbors = 3
    @Option(help: "Smallest face in pixels.") var minSize = 30
    @Option(help: "Model JSON to classify each face.") var model: String?

    func run() throws {
        let c = try HaarCascade(contentsOf: cascade)
        let m = try model.map { try FacialExpressionModel(contentsOf: URL(fileURLWithPath: $0)) }
        var p = DetectionParameters()
        p.scaleFactor = scaleFactor; p.minNeighbors = minNeighbors; p.minSize = minSize
        for path in images {
            let img = try ImageCodec.read(path)
            let g = img.grey
            let t0 = Date()
            let boxes = g.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: img.width, height: img.height, stride: img.width, parameters: p) }
            print("\(path): \(boxes.count) faces in \(fmt(Date().timeIntervalSince(t0) * 1000, 1)) ms")
            for b in boxes {
                var line = "  x \(b.x) y \(b.y) w \(b.width) h \(b.height) (\(b.neighbors) neighbours)"
                if let m {
                    let crop = FaceCrop.crop(grey: g, width: img.width, height: img.height, box: (b.x, b.y, b.width, b.height), side: m.inputSize.width)
                    let pr = m.predict(face: crop); let k = argmax(pr[...])
                    line += " \(m.labels[k]) \(fmt(Double(pr[k]), 2))"
                }
                print(line)
            }
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
