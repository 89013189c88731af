@testable import FaceDetect
import FERNet
import Foundation
import XCTest

let yunetPath = packageRoot.appendingPathComponent("Models/face_detection_yunet_2023mar.onnx").path
let wildDev = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/wild-dev")

/// One of tools/yunet_fixtures.py's reference runs: a wild-dev photo, onnxruntime's outputs for
/// it, and OpenCV's FaceDetectorYN's faces.
struct YuNetFixture {
    struct Meta: Decodable {
        struct Output: Decodable { let name: String; let shape: [Int] }
        struct OpenCV: Decodable { let score_threshold: Double; let nms_threshold: Double; let faces_x_y_w_h_landmarks10_score: [[Double]] }
        let photo: String, mode: String, width: Int, height: Int, pixels_fnv1a64: String
        let padded_width: Int, padded_height: Int
        let outputs: [Output]
        let opencv: OpenCV
    }
    let meta: Meta
    let outputs: [[Float]]
    let image: Image

    init(_ name: String) throws {
        let dir = packageRoot.appendingPathComponent("Tests/FaceDetectTests/Fixtures")
        meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: dir.appendingPathComponent("yunet_\(name).json")))
        let blob = [UInt8](try Data(contentsOf: dir.appendingPathComponent("yunet_\(name).bin")))
        var at = 0
        outputs = meta.outputs.map { o in
            let n = o.shape.reduce(1, *)
            defer { at += 4 * n }
            return (0..<n).map { i in
                let p = at + 4 * i
                return Float(bitPattern: UInt32(blob[p]) | UInt32(blob[p + 1]) << 8 | UInt32(blob[p + 2]) << 16 | UInt32(blob[p + 3]) << 24)
            }
        }
        XCTAssertEqual(at, blob.count, "the fixture's outputs fill its .bin")
        let path = wildDev.appendingPathComponent("images/\(meta.photo)").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("wild-dev not found beside the checkout (\(path)): the fixtures' photos come from there")
        }
        image = try ImageCodec.read(path, colour: true)
        var h: UInt64 = 0xcbf29ce484222325
        for b in image.pixels { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        XCTAssertEqual(String(format: "%016llx", h), meta.pixels_fnv1a64, "\(meta.photo) decodes to other pixels than the fixture's (another JPEG decoder?)")
    }

    /// The photo as the network's input: BGR (or one grey channel), padded right and bottom with 0.
    func input(channels: Int) -> ONNXNetwork.Value {
        let pw = meta.padded_width, ph = meta.padded_height
        var x = [Float](repeating: 0, count: channels * pw * ph)
        for y in 0..<image.height {
            for xx in 0..<image.width {
                let p = (y * image.width + xx) * image.channels
                for c in 0..<channels {
                    // BGR: channel 0 blue
                    let v = image.channels == 1 ? image.pixels[p] : image.pixels[p + (channels == 1 ? 0 : 2 - c)]
                    x[(c * ph + y) * pw + xx] = Float(v)
                }
            }
        }
        return ONNXNetwork.Value(shape: [1, channels, ph, pw], data: x)
    }
}

final class YuNetTests: XCTestCase {
    func detector() throws -> YuNetDetector { try YuNetDetector(path: yunetPath) }

    /// The published file read by our ONNX reader and run on FERNet's kernels gives onnxruntime's
    /// numbers, every output within 1e-4, on a colour and a grey photo.
    func testOutputsMatchOnnxruntime() throws {
        let d = try detector()
        for name in ["colour", "grey"] {
            let f = try YuNetFixture(name)
            var inputs = [("BGR", f.input(channels: 3))]
            if f.meta.mode == "L" { inputs.append(("grey (one channel)", f.input(channels: 1))) }
            for (kind, input) in inputs {
                let outs = try d.outputs(input)
                XCTAssertEqual(outs.count, 12)
                var worst: Float = 0, worstName = ""
                for (o, (ref, meta)) in zip(outs, zip(f.outputs, f.meta.outputs)) {
                    XCTAssertEqual(o.shape, meta.shape, "\(meta.name)")
                    guard o.data.count == ref.count else { continue }
                    for (a, b) in zip(o.data, ref) where abs(a - b) > worst { worst = abs(a - b); worstName = meta.name }
                }
                print("YuNet on \(f.meta.photo) \(kind) \(f.meta.padded_width)x\(f.meta.padded_height): largest difference from onnxruntime \(worst) (\(worstName))")
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(name) \(kind): \(worstName)")
            }
        }
    }

    /// Decoding and NMS give OpenCV's FaceDetectorYN faces: boxes, landmarks, scores.
    func testDecodingGivesOpenCVsFaces() throws {
        var d = try detector()
        for name in ["colour", "grey"] {
            let f = try YuNetFixture(name)
            d.scoreThreshold = f.meta.opencv.score_threshold; d.nmsThreshold = f.meta.opencv.nms_threshold
            let faces = d.decode(try d.outputs(f.input(channels: 3)), paddedWidth: f.meta.padded_width, paddedHeight: f.meta.padded_height)
            let ref = f.meta.opencv.faces_x_y_w_h_landmarks10_score
            XCTAssertEqual(faces.count, ref.count, name)
            XCTAssertGreaterThan(ref.count, 0, "the fixture holds a face")
            for (a, r) in zip(faces, ref) {
                let ours = [a.x, a.y, a.width, a.height] + a.landmarks.flatMap { [$0.x, $0.y] }
                for (u, v) in zip(ours, r.prefix(14)) { XCTAssertEqual(u, v, accuracy: 0.01, "\(name): \(ours) vs OpenCV \(r)") }
                XCTAssertEqual(a.score, r[14], accuracy: 1e-3)
            }
        }
    }

    /// `detect` on the grey photo as a frame (any size, any stride) finds its one face, with five
    /// landmarks inside the box, eyes above the mouth.
    func testDetectFindsTheFaceWithLandmarks() throws {
        let d = try detector()
        let f = try YuNetFixture("grey")
        let stride = f.image.width + 13
        var frame = [UInt8](repeating: 0, count: stride * f.image.height)
        for y in 0..<f.image.height { for x in 0..<f.image.width { frame[y * stride + x] = f.image.pixels[y * f.image.width + x] } }
        let faces = frame.withUnsafeBufferPointer {
            d.detect(grey: $0.baseAddress!, width: f.image.width, height: f.image.height, stride: stride, request: DetectionRequest(minSize: 30))
        }
        XCTAssertEqual(faces.count, 1)
        guard let face = faces.first else { return }
        XCTAssertEqual(face.landmarks.count, 5)
        for p in face.landmarks {
            XCTAssertTrue(p.x >= Double(face.x) && p.x <= Double(face.x + face.width) && p.y >= Double(face.y) && p.y <= Double(face.y + face.height), "\(p) in \(face)")
        }
        XCTAssertLessThan(face.landmarks[0].y, face.landmarks[3].y)
        XCTAssertLessThan(face.landmarks[0].x, face.landmarks[1].x, "the person's right eye is on the picture's left")
        XCTAssertGreaterThan(face.score, 0.6)
    }

    /// A damaged file is refused with an error naming it, never a crash.
    func testDamagedFilesAreRefusedClearly() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: yunetPath)))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yunet-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (what, data) in [("truncated", Array(bytes.prefix(bytes.count / 2))), ("empty", []),
                             ("not ONNX", Array("<?xml version=\"1.0\"?><opencv_storage/>".utf8))] {
            let p = dir.appendingPathComponent("\(what).onnx").path
            FileManager.default.createFile(atPath: p, contents: Data(data))
            XCTAssertThrowsError(try YuNetDetector(path: p), what) { e in
                XCTAssertTrue("\(e)".contains(p), "\(what): \(e)")
            }
        }
        XCTAssertThrowsError(try YuNetDetector(path: dir.appendingPathComponent("missing.onnx").path))
    }
}
