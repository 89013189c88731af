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

    /// A colour picture handed as packed RGB (any byte order, any stride) is what the network sees
    /// as OpenCV's BGR input: at scale 1, `detect` with colour gives OpenCV's faces.
    func testColourFramesGiveOpenCVsFaces() throws {
        var d = try detector()
        let f = try YuNetFixture("colour")
        d.scoreThreshold = f.meta.opencv.score_threshold; d.nmsThreshold = f.meta.opencv.nms_threshold
        let (w, h) = (f.image.width, f.image.height)
        let grey = f.image.grey
        for (bytes, order) in [(3, (r: 0, g: 1, b: 2)), (4, (r: 2, g: 1, b: 0))] {
            let stride = bytes * w + 5
            var packed = [UInt8](repeating: 0, count: stride * h)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                packed[y * stride + x * bytes + [order.r, order.g, order.b][c]] = f.image.pixels[(y * w + x) * 3 + c]
            } } }
            let faces = packed.withUnsafeBufferPointer { p in grey.withUnsafeBufferPointer { g in
                d.detectFrame(grey: g.baseAddress!, colour: .rgb(p.baseAddress!, stride: stride, pixelBytes: bytes, r: order.r, g: order.g, b: order.b),
                              width: w, height: h, stride: w, request: DetectionRequest(minSize: 0), scale: 1)
            } }
            let ref = f.meta.opencv.faces_x_y_w_h_landmarks10_score
            XCTAssertEqual(faces.count, ref.count, "\(bytes) bytes a pixel")
            for (a, r) in zip(faces, ref) {
                // detect keeps boxes inside the frame
                let x0 = max(0, r[0]), y0 = max(0, r[1]), x1 = min(Double(w), r[0] + r[2]), y1 = min(Double(h), r[1] + r[3])
                XCTAssertEqual(Double(a.x), x0, accuracy: 1); XCTAssertEqual(Double(a.y), y0, accuracy: 1)
                XCTAssertEqual(Double(a.width), x1 - x0, accuracy: 1.5); XCTAssertEqual(Double(a.height), y1 - y0, accuracy: 1.5)
                for (k, p) in a.landmarks.enumerated() {
                    XCTAssertEqual(p.x, r[4 + 2 * k], accuracy: 0.01); XCTAssertEqual(p.y, r[5 + 2 * k], accuracy: 0.01)
                }
                XCTAssertEqual(a.score, r[14], accuracy: 1e-3)
            }
        }
    }

    /// The chroma of YUV frames (I420's planes, NV12's interleaved plane) gives the network the
    /// colours packed RGB gives, to within what 4:2:0 subsampling loses, as it is and scaled down.
    func testChromaGivesRGBsColours() throws {
        let f = try YuNetFixture("colour")
        let (w, h) = (f.image.width & ~1, f.image.height & ~1)   // whole chroma samples
        let px = f.image.pixels, iw = f.image.width
        func rgb(_ x: Int, _ y: Int) -> (Double, Double, Double) {
            let p = (y * iw + x) * 3; return (Double(px[p]), Double(px[p + 1]), Double(px[p + 2]))
        }
        // BT.601 limited range, chroma the mean of each 2x2 block
        var luma = [UInt8](repeating: 0, count: w * h)
        var u = [UInt8](repeating: 0, count: w * h / 4), v = u, nv = [UInt8](repeating: 0, count: w * h / 2)
        for y in 0..<h { for x in 0..<w {
            let (r, g, b) = rgb(x, y)
            luma[y * w + x] = UInt8((16 + 0.257 * r + 0.504 * g + 0.098 * b).rounded())
        } }
        for cy in 0..<(h / 2) { for cx in 0..<(w / 2) {
            var su = 0.0, sv = 0.0
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (r, g, b) = rgb(2 * cx + dx, 2 * cy + dy)
                su += 128 - 0.148 * r - 0.291 * g + 0.439 * b; sv += 128 + 0.439 * r - 0.368 * g - 0.071 * b
            }
            let i = cy * (w / 2) + cx
            u[i] = UInt8((su / 4).rounded()); v[i] = UInt8((sv / 4).rounded())
            nv[2 * i] = u[i]; nv[2 * i + 1] = v[i]
        } }
        for (ow, oh) in [(w, h), (w / 2, h / 2)] {
            func planes(_ colour: ColourSource) -> [Float] {
                var out = [Float](repeating: 0, count: 3 * ow * oh)
                luma.withUnsafeBufferPointer { YuNetDetector.resampleColour($0.baseAddress!, colour, width: w, height: h, stride: w,
                                                                            into: &out, w: ow, h: oh, rowLength: ow, planeLength: ow * oh) }
                return out
            }
            let packed = px.withUnsafeBufferPointer { planes(.rgb($0.baseAddress!, stride: 3 * iw, pixelBytes: 3, r: 0, g: 1, b: 2)) }
            let i420 = u.withUnsafeBufferPointer { up in v.withUnsafeBufferPointer { vp in
                planes(.chroma(u: up.baseAddress!, v: vp.baseAddress!, stride: w / 2, step: 1, shiftX: 1, shiftY: 1))
            } }
            let nv12 = nv.withUnsafeBufferPointer { planes(.chroma(u: $0.baseAddress!, v: $0.baseAddress! + 1, stride: w, step: 2, shiftX: 1, shiftY: 1)) }
            XCTAssertEqual(i420, nv12, "I420 and NV12 hold the same samples")
            let mean = zip(packed, i420).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(packed.count)
            print("\(ow)x\(oh): chroma against packed RGB, mean difference \(mean) levels")
            XCTAssertLessThan(mean, 4, "\(ow)x\(oh)")
            XCTAssertGreaterThan(packed.max()!, 100, "a real picture")
        }
    }

    /// The colorimetries: limited range stretches luma 16-235 to 0-255, full range keeps it; grey
    /// (neutral chroma) stays grey; BT.601 and BT.709 give their published coefficients.
    func testYUVMatricesFollowTheColorimetry() {
        let limited = YUVMatrix.bt601, full = YUVMatrix(bt709: false, fullRange: true), hd = YUVMatrix(bt709: true, fullRange: false)
        for (y, expected) in [(16.0, 0.0), (235, 255), (126, 128)] as [(Float, Float)] {
            let (r, g, b) = YuNetDetector.rgb(y: y, u: 128, v: 128, limited)
            XCTAssertEqual(r, expected, accuracy: 0.5); XCTAssertEqual(g, r); XCTAssertEqual(b, r)
        }
        XCTAssertEqual(YuNetDetector.rgb(y: 77, u: 128, v: 128, full).0, 77)
        XCTAssertEqual(full.rv, 1.402, accuracy: 1e-3); XCTAssertEqual(full.gu, 0.344, accuracy: 1e-3)
        XCTAssertEqual(full.gv, 0.714, accuracy: 1e-3); XCTAssertEqual(full.bu, 1.772, accuracy: 1e-3)
        XCTAssertEqual(limited.rv, 1.596, accuracy: 1e-3); XCTAssertEqual(limited.bu, 2.017, accuracy: 1e-3)
        XCTAssertEqual(hd.rv, 1.793, accuracy: 1e-3); XCTAssertEqual(hd.gu, 0.213, accuracy: 1e-3)
        XCTAssertEqual(hd.gv, 0.533, accuracy: 1e-3); XCTAssertEqual(hd.bu, 2.112, accuracy: 1e-3)
    }

    /// Pictures smaller than `minimumInputSize` are enlarged to it; larger ones scaled down to
    /// `inputSize`, never past it.
    /// A head tilted 40 degrees is found once with the picture looked at three ways (`angles`),
    /// and its landmarks are where the upright face's landmarks go when the picture is turned: the
    /// eyes' line tilted 40 degrees (the network alone, upright, puts it at about 25).
    func testTiltedHeadsAreFoundTurned() throws {
        let d = try detector()
        let f = try YuNetFixture("grey")
        // the photo in the middle of a larger grey canvas, so nothing is lost when it turns
        let (w, h) = (f.image.width * 2, f.image.height * 2)
        var canvas = [UInt8](repeating: 128, count: w * h)
        let (ox, oy) = (f.image.width / 2, f.image.height / 2)
        for y in 0..<f.image.height { for x in 0..<f.image.width { canvas[(y + oy) * w + x + ox] = f.image.pixels[y * f.image.width + x] } }
        func find(_ img: [UInt8], _ angles: [Double]) -> [DetectedBox] {
            img.withUnsafeBufferPointer { d.detect(grey: $0.baseAddress!, width: w, height: h, stride: w, request: DetectionRequest(minSize: 30, angles: angles)) }
        }
        let upright = find(canvas, [0])
        XCTAssertEqual(upright.count, 1)
        guard let face = upright.first else { return }
        for tilt in [40.0, -40.0] {
            // turned clockwise on screen (y down) by `tilt` about the canvas centre
            let a = tilt * .pi / 180, (c, s) = (cos(a), sin(a)), (cx, cy) = (Double(w) / 2, Double(h) / 2)
            var turned = [UInt8](repeating: 128, count: w * h)
            canvas.withUnsafeBufferPointer { src in
                for y in 0..<h { for x in 0..<w {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    let sx = cx + c * dx + s * dy, sy = cy - s * dx + c * dy
                    if sx >= 0, sy >= 0, sx < Double(w - 1), sy < Double(h - 1) {
                        turned[y * w + x] = FaceCrop.sample(src.baseAddress!, width: w, height: h, stride: w, x: sx, y: sy)
                    }
                } }
            }
            let expected = face.landmarks.map { p -> Landmark in
                let dx = p.x - cx, dy = p.y - cy
                return Landmark(x: cx + c * dx - s * dy, y: cy + s * dx + c * dy)
            }
            let found = find(turned, [0, -25, 25])
            XCTAssertEqual(found.count, 1, "tilted \(tilt): found with the picture turned")
            guard let t = found.first, t.landmarks.count == 5 else { continue }
            let eyes = atan2(t.landmarks[1].y - t.landmarks[0].y, t.landmarks[1].x - t.landmarks[0].x) * 180 / .pi
            XCTAssertEqual(eyes, tilt, accuracy: 6, "the eyes' line")
            for (p, q) in zip(t.landmarks, expected) {
                XCTAssertLessThan(((p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)).squareRoot(), 0.08 * Double(face.width), "\(p) vs \(q)")
            }
        }
    }

    func testSmallPicturesAreEnlarged() throws {
        let d = try detector()
        XCTAssertEqual(d.pictureScale(width: 160, height: 100), 2, accuracy: 1e-9)
        XCTAssertEqual(d.pictureScale(width: 400, height: 300), 1, accuracy: 1e-9)
        XCTAssertEqual(d.pictureScale(width: 1280, height: 720), 0.5, accuracy: 1e-9)
        var small = d; small.inputSize = 200
        XCTAssertEqual(small.pictureScale(width: 100, height: 50), 2, accuracy: 1e-9, "never past inputSize")
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
