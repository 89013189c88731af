import ArgumentParser
import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation

struct CropCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crop-check",
        abstract: "How much the detect-and-crop path costs: accuracy on PublicTest faces placed in frames, per crop scale.",
        discussion: """
        Renders PublicTest faces into 800x600 frames (12 per frame), detects them as ferfilter does (FaceAnalysis, its defaults), \
        crops each detection at several scales as ferfilter does, and compares the model's accuracy \
        on those crops with its accuracy on the original 48x48 faces. Used to choose ferfilter's crop-scale.
        """)

    @Argument(help: "FER2013 CSV or image folder.") var data = Defaults.data
    @Option(help: "Model JSON.") var model = Defaults.model
    @Option(help: "Cascade XML.") var cascade = defaultCascade
    @Option(help: "Face detector: yunet or haar (ferfilter's detector).") var detector = AnalysisSettings().detector.name
    @Option(help: "YuNet model (ONNX).") var yunet = Defaults.yunet
    @Option(help: "YuNet: the longer side of the picture the network sees (ferfilter's detection-size; 0: the frame's).")
    var detectionSize = AnalysisSettings().detectionSize
    @Option(help: "YuNet: the lowest score that counts as a face (ferfilter's detection-threshold).")
    var detectionThreshold = AnalysisSettings().detectionThreshold
    @Option(help: "YuNet: also look with the frame turned by +- this many degrees (ferfilter's search-tilt; 0: upright only).")
    var searchTilt = AnalysisSettings().searchTilt
    @Option(help: "Faces to place (from the first PublicTest rows).") var faces = 600
    @Option(help: "Face size in the frame, pixels.") var size = 110
    @Option(help: "Comma-separated crop scales.") var scales = "0.8,0.9,1.0,1.1,1.2"
    @Option(help: "Frame width.") var frameWidth = 800
    @Option(help: "Frame height.") var frameHeight = 600
    @Option(help: "Turn each face by a random angle within +-this many degrees (seeded), as a tilted head.") var rotate = 0.0

    func run() throws {
        let m = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: model))
        var settings = AnalysisSettings()
        guard let kind = DetectorKind(name: detector) else { throw ValidationError("--detector must be yunet or haar") }
        settings.detector = kind; settings.detectionSize = detectionSize; settings.detectionThreshold = detectionThreshold
        settings.searchTilt = searchTilt
        let detector = try settings.makeDetector(cascade: cascade, yunet: yunet)
        let d = try loadData(data).subset([.publicTest])
        let scaleList = scales.split(separator: ",").compactMap { Double($0) }
        var correct = [Int](repeating: 0, count: scaleList.count), direct = 0, found = 0, placed = 0, byBox = 0, foundCentred = 0
        let (W, H) = (frameWidth, frameHeight)
        var rng = SeededGenerator(seed: 2026)
        for first in stride(from: 0, to: min(faces, d.count) - 11, by: 12) {
            let scene = FaceScene.grid(width: W, height: H, rows: Array(first..<(first + 12)), size: size)
            var img = scene.render(d)
            if rotate > 0 {
                let flat = img
                for p in scene.placements {
                    CropCheck.turn(flat, into: &img, width: W, height: H, centre: (Double(p.x) + Double(p.size) / 2, Double(p.y) + Double(p.size) / 2),
                                   radius: Double(p.size) * 0.75, degrees: Double.random(in: -rotate...rotate, using: &rng))
                }
            }
            let boxes = img.withUnsafeBufferPointer {
                FrameAnalysis.detect(LumaPlane(pixels: $0.baseAddress!, width: W, height: H, stride: W), settings: settings, detector: detector)
            }
            for p in scene.placements {
                placed += 1
                let truth = Int(d.labels[p.row])
                if argmax(m.predict(face: d.image(p.row))[...]) == truth { direct += 1 }
                func overlap(_ b: DetectedBox) -> Double {
                    let ix = max(0, min(b.x + b.width, p.x + p.size) - max(b.x, p.x)), iy = max(0, min(b.y + b.height, p.y + p.size) - max(b.y, p.y))
                    return Double(ix * iy) / Double(b.width * b.height + p.size * p.size - ix * iy)
                }
                // found with another framing: a box centred on the face (its centre within the middle half
                // of the placed square), from half to twice its size: FER2013's 48x48 sometimes holds a
                // small face, or the detector frames the whole head
                func centred(_ b: DetectedBox) -> Bool {
                    let dx = Double(b.x) + Double(b.width) / 2 - Double(p.x) - Double(p.size) / 2
                    let dy = Double(b.y) + Double(b.height) / 2 - Double(p.y) - Double(p.size) / 2
                    let side = Double(max(b.width, b.height)) / Double(p.size)
                    return abs(dx) < Double(p.size) / 4 && abs(dy) < Double(p.size) / 4 && side >= 0.5 && side <= 2
                }
                let best = boxes.max(by: { overlap($0) < overlap($1) })
                if boxes.contains(where: centred) || best.map({ overlap($0) > 0.4 }) == true { foundCentred += 1 }
                guard let b = best, overlap(b) > 0.4 else { continue }
                found += 1
                for (k, s) in scaleList.enumerated() {
                    let crop = img.withUnsafeBufferPointer {
                        FrameAnalysis.crop(LumaPlane(pixels: $0.baseAddress!, width: W, height: H, stride: W), b, side: 48, scale: s)
                    }
                    if argmax(m.predict(face: crop)[...]) == truth { correct[k] += 1 }
                }
                // the same face cut out by its box alone (no turn by the landmarks)
                let boxCrop = FaceCrop.crop(grey: img, width: W, height: H, box: (b.x, b.y, b.width, b.height), side: 48)
                if argmax(m.predict(face: boxCrop)[...]) == truth { byBox += 1 }
            }
        }
        print("placed \(placed) PublicTest faces (\(size)px\(rotate > 0 ? ", turned within +-\(rotate) degrees" : "") in \(W)x\(H) frames), "
              + "detected \(found) (\(fmt(100 * Double(found) / Double(placed), 1))%)")
        print("found by that or by a box centred on the face, half to twice its size (another framing): \(foundCentred) (\(fmt(100 * Double(foundCentred) / Double(placed), 1))%)")
        print("crops by the box alone, not aligned: accuracy on detected faces \(fmt(Double(byBox) / Double(max(found, 1))))")
        print("model on the original 48x48 faces: accuracy \(fmt(Double(direct) / Double(placed)))")
        for (k, s) in scaleList.enumerated() {
            print("crop-scale \(s): accuracy on detected faces \(fmt(Double(correct[k]) / Double(max(found, 1))))")
        }
    }

    /// Turns the disk of `radius` about `centre` by `degrees` (bilinear, from `flat`).
    static func turn(_ flat: [UInt8], into img: inout [UInt8], width: Int, height: Int, centre: (Double, Double), radius: Double, degrees: Double) {
        let a = degrees * .pi / 180, c = cos(a), s = sin(a)
        let x0 = max(0, Int(centre.0 - radius)), x1 = min(width - 1, Int(centre.0 + radius))
        let y0 = max(0, Int(centre.1 - radius)), y1 = min(height - 1, Int(centre.1 + radius))
        guard x0 < x1, y0 < y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 {
                let dx = Double(x) - centre.0, dy = Double(y) - centre.1
                guard dx * dx + dy * dy <= radius * radius else { continue }
                img[y * width + x] = flat.withUnsafeBufferPointer {
                    FaceCrop.sample($0.baseAddress!, width: width, height: height, stride: width,
                                    x: centre.0 + c * dx + s * dy, y: centre.1 - s * dx + c * dy)
                }
            }
        }
    }
}
