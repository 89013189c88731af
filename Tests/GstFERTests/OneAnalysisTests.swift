import FaceAnalysis
import CGStreamer
import CGstCheck
import FaceDetect
import FERNet
import FERTraining
import Foundation
import GstFER
import WebViewer
import XCTest

/// The element, `fer serve`'s analyze API and the CLI run one analysis (FaceAnalysis) with one set
/// of defaults, so the same picture gives the same faces everywhere.
final class OneAnalysisTests: XCTestCase {
    /// The same picture through ferfilter (first frame, every default) and through the analyze
    /// API (a PNG upload): the same faces, boxes, labels and probabilities.
    func testElementAndAnalyzeAPIAgree() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()
        let (w, h) = (800, 600)
        let grey = FaceScene.grid(width: w, height: h, rows: Array(30..<42), size: 120).render(d)
        let png = try ImageCodec.encodePNG(Image(width: w, height: h, channels: 1, pixels: grey))

        let harness = FerHarness(["draw": false], caps: "video/x-raw,format=GRAY8,width=\(w),height=\(h),framerate=30/1")
        let out = try XCTUnwrap(harness.process(convert(grey, width: w, height: h, to: "GRAY8")))
        defer { gst_buffer_unref(out) }
        let element = rois(of: out).sorted { ($0.y, $0.x) < ($1.y, $1.x) }

        let api = try ImageAnalyzer(model: FacialExpressionModel(contentsOf: URL(fileURLWithPath: shippedModel)),
                                    detector: defaultDetector()).analyze(Array(png))
        let faces = api.faces.sorted { ($0.box.y, $0.box.x) < ($1.box.y, $1.box.x) }

        print("element: \(element.count) faces, analyze API: \(faces.count) faces of 12 placed")
        XCTAssertGreaterThanOrEqual(element.count, 8, "most of the 12 faces are found")
        XCTAssertEqual(faces.count, element.count, "the same number of faces")
        for (e, a) in zip(element, faces) {
            XCTAssertEqual([e.x, e.y, e.w, e.h], [a.box.x, a.box.y, a.box.width, a.box.height], "the same box")
            XCTAssertEqual(e.label, a.emotion, "the same label at \(e.x),\(e.y)")
            XCTAssertEqual(e.confidence, a.confidence, accuracy: 1e-6, "the same confidence at \(e.x),\(e.y)")
            let labels = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: shippedModel)).labels
            XCTAssertEqual(e.probabilities.count, labels.count)
            for (k, p) in e.probabilities.enumerated() { XCTAssertEqual(p, a.probabilities[labels[k]] ?? -1, accuracy: 1e-6) }
        }
    }

    /// A colour picture: ferfilter on RGB frames and the analyze API on the same pixels as a PNG
    /// turn it grey the same way (`Image.luma`), so they find the same faces with the same labels.
    func testColourPictureGivesTheSameFacesEverywhere() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()
        let (w, h) = (640, 480)
        let grey = FaceScene.grid(width: w, height: h, rows: Array(0..<6), size: 120).render(d)
        // a warm tint, so that the grey is computed, not copied
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for (i, v) in grey.enumerated() {
            rgb[3 * i] = UInt8(min(255, Int(v) + 25)); rgb[3 * i + 1] = v; rgb[3 * i + 2] = UInt8(Int(v) * 3 / 4)
        }
        let png = ImageCodec.encodePNG(Image(width: w, height: h, channels: 3, pixels: rgb))
        let harness = FerHarness(["draw": false], caps: "video/x-raw,format=RGB,width=\(w),height=\(h),framerate=30/1")
        let out = try XCTUnwrap(harness.process(RawFrame(bytes: rgb, caps: "video/x-raw,format=RGB,width=\(w),height=\(h),framerate=30/1")))
        defer { gst_buffer_unref(out) }
        let element = rois(of: out).sorted { ($0.y, $0.x) < ($1.y, $1.x) }
        let api = try ImageAnalyzer(model: FacialExpressionModel(contentsOf: URL(fileURLWithPath: shippedModel)),
                                    detector: defaultDetector()).analyze(Array(png))
        let faces = api.faces.sorted { ($0.box.y, $0.box.x) < ($1.box.y, $1.box.x) }
        print("colour: element \(element.count) faces, analyze API \(faces.count) of 6 placed")
        XCTAssertGreaterThanOrEqual(element.count, 4)
        XCTAssertEqual(faces.map { [$0.box.x, $0.box.y, $0.box.width, $0.box.height] }, element.map { [$0.x, $0.y, $0.w, $0.h] })
        XCTAssertEqual(faces.map(\.emotion), element.map { $0.label ?? "" })
        for (e, a) in zip(element, faces) { XCTAssertEqual(e.confidence, a.confidence, accuracy: 1e-6) }
    }

    /// YuNet sees colour in every 8-bit colour format ferfilter takes. Four wild-dev photos (film
    /// frames, odd sizes) whose face YuNet misses in grey: the element finds it in RGB, BGRx, I420,
    /// NV12 and YUY2 (the same box within a few pixels: chroma is subsampled), and not in GRAY8;
    /// the analyze API on the JPEG finds the RGB frame's box. The element looks upright only
    /// (search-tilt=0: turned looks find two of them in grey too), so colour alone decides.
    func testYuNetSeesColourInEveryColourFormat() throws {
        XCTAssertTrue(Gst.ready)
        let dir = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/wild-dev/images")
        guard FileManager.default.fileExists(atPath: dir.path) else {
            throw XCTSkip("wild-dev not found beside the checkout (\(dir.path)): this test reads four of its photos")
        }
        let model = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: shippedModel))
        for name in ["Dileep_70.jpg", "SharmilaTagore_49.jpg", "Jayamadhuri_17.jpg", "HrithikRoshan_174.jpg"] {
            let path = dir.appendingPathComponent(name).path
            let img = try ImageCodec.read(path, colour: true)
            XCTAssertEqual(img.channels, 3, name)
            let (w, h) = (img.width, img.height), stride = (3 * w + 3) & ~3
            var rgb = [UInt8](repeating: 0, count: stride * h)
            for y in 0..<h { for x in 0..<(3 * w) { rgb[y * stride + x] = img.pixels[y * 3 * w + x] } }
            var boxes: [String: [ROI]] = [:]
            for format in ["RGB", "BGRx", "I420", "NV12", "YUY2", "GRAY8"] {
                let hn = gst_harness_new_parse("videoconvert ! capsfilter caps=video/x-raw,format=\(format) ! ferfilter skip-late=false draw=false search-tilt=0 model=\(shippedModel)")!
                defer { gst_harness_teardown(hn) }
                gst_harness_set_src_caps_str(hn, "video/x-raw,format=RGB,width=\(w),height=\(h),framerate=30/1")
                XCTAssertEqual(gst_harness_push(hn, makeBuffer(rgb)), GST_FLOW_OK)
                let out = try XCTUnwrap(gst_harness_pull(hn))
                defer { gst_buffer_unref(out) }
                boxes[format] = rois(of: out)
            }
            print("\(name) \(w)x\(h): " + boxes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.map { "\($0.x),\($0.y) \($0.w)x\($0.h)" })" }.joined(separator: ", "))
            XCTAssertEqual(boxes["GRAY8"]?.count, 0, "\(name): YuNet misses this face in grey (why it was chosen)")
            let ref = try XCTUnwrap(boxes["RGB"]?.first, "\(name): found in RGB")
            XCTAssertEqual(boxes["RGB"]?.count, 1)
            for format in ["BGRx", "I420", "NV12", "YUY2"] {
                XCTAssertEqual(boxes[format]?.count, 1, "\(name) \(format): one face")
                guard let b = boxes[format]?.first else { continue }
                for (u, v) in zip([b.x, b.y, b.w, b.h], [ref.x, ref.y, ref.w, ref.h]) {
                    XCTAssertLessThanOrEqual(abs(u - v), 6, "\(name) \(format): \(b) against RGB's \(ref)")
                }
            }
            var upright = AnalysisSettings()
            upright.searchTilt = 0
            let api = try ImageAnalyzer(model: model, detector: defaultDetector(), settings: upright)
                .analyze([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            XCTAssertEqual(api.faces.map { [$0.box.x, $0.box.y, $0.box.width, $0.box.height] }, [[ref.x, ref.y, ref.w, ref.h]], "\(name): the analyze API")
        }
    }

    /// With the default detector every face carries its five landmarks, inside its box, eyes above
    /// the mouth: in the ROI meta, in the results line (the same numbers); draw-landmarks marks them.
    func testLandmarksTravelWithTheFaces() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()
        let (w, h) = (640, 480)
        let caps = "video/x-raw,format=GRAY8,width=\(w),height=\(h),framerate=30/1"
        let grey = FaceScene.grid(width: w, height: h, rows: Array(0..<6), size: 120).render(d)
        let results = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-landmarks-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: results) }
        func run(_ props: [String: Any]) throws -> ([ROI], [UInt8]) {
            let harness = FerHarness(props, caps: caps)
            let out = try XCTUnwrap(harness.process(RawFrame(bytes: grey, caps: caps)))
            defer { gst_buffer_unref(out) }
            return (rois(of: out), bytes(of: out))
        }
        let (faces, plain) = try run(["results": results])
        XCTAssertGreaterThanOrEqual(faces.count, 5, "the scene's faces are found")
        for f in faces {
            XCTAssertEqual(f.landmarks.count, 10, "face \(f.id): five points")
            guard f.landmarks.count == 10 else { continue }
            for i in stride(from: 0, to: 10, by: 2) {
                XCTAssertTrue((Double(f.x)...Double(f.x + f.w)).contains(f.landmarks[i]) && (Double(f.y)...Double(f.y + f.h)).contains(f.landmarks[i + 1]),
                              "face \(f.id): point \(i / 2) \(f.landmarks[i]),\(f.landmarks[i + 1]) inside \(f.x),\(f.y) \(f.w)x\(f.h)")
            }
            XCTAssertLessThan(max(f.landmarks[1], f.landmarks[3]), min(f.landmarks[7], f.landmarks[9]), "eyes above the mouth corners")
            XCTAssertLessThan(f.landmarks[0], f.landmarks[2], "the person's right eye on the picture's left")
        }
        let line = try XCTUnwrap(String(contentsOfFile: results, encoding: .utf8).split(separator: "\n").first)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let lines = try XCTUnwrap(object["faces"] as? [[String: Any]])
        XCTAssertEqual(lines.count, faces.count)
        for (l, f) in zip(lines.sorted { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) }, faces.sorted { $0.id < $1.id }) {
            XCTAssertEqual(l["landmarks"] as? [Double], f.landmarks, "the results line and the meta agree")
        }
        let (_, marked) = try run(["draw-landmarks": true])
        let changed = zip(marked, plain).filter { $0 != $1 }.count
        XCTAssertGreaterThan(changed, faces.count * 5 * 9, "draw-landmarks marks every point")
        XCTAssertLessThan(changed, w * h / 20, "only the points")
    }

    /// `threads` is per element: two elements with different thread counts run side by side in one
    /// process and give the faces each gives alone, and neither changes the process-wide count.
    func testThreadsArePerElement() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()
        let frames = (0..<6).map { t in
            convert(FaceScene.grid(width: 640, height: 480, rows: Array(12..<18), size: 130).moved(frame: t * 3).render(d, phase: t),
                    width: 640, height: 480, to: "I420")
        }
        func run(_ h: FerHarness) -> [[ROI]] {
            frames.enumerated().map { t, f in
                guard let out = h.process(f, pts: UInt64(t) * 33_333_333) else { return [] }
                defer { gst_buffer_unref(out) }
                return rois(of: out)
            }
        }
        let before = Parallelism.threads
        let aloneOne = run(FerHarness(["threads": 1], caps: frames[0].caps))
        let aloneTwo = run(FerHarness(["threads": 2], caps: frames[0].caps))
        XCTAssertEqual(Parallelism.threads, before, "an element's threads property leaves the process's count alone")
        XCTAssertGreaterThanOrEqual(aloneOne.map(\.count).reduce(0, +), 24, "the six faces are found")
        let one = FerHarness(["threads": 1], caps: frames[0].caps), two = FerHarness(["threads": 2], caps: frames[0].caps)
        final class Out: @unchecked Sendable { var one: [[ROI]] = [], two: [[ROI]] = [] }
        let out = Out()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            if i == 0 { out.one = run(one) } else { out.two = run(two) }
        }
        for (name, got, alone) in [("threads=1", out.one, aloneOne), ("threads=2", out.two, aloneTwo)] {
            XCTAssertEqual(got.count, alone.count)
            for (t, (g, e)) in zip(got, alone).enumerated() {
                XCTAssertEqual(g.map { [$0.x, $0.y, $0.w, $0.h] }, e.map { [$0.x, $0.y, $0.w, $0.h] }, "\(name), frame \(t): boxes")
                XCTAssertEqual(g.map(\.label), e.map(\.label), "\(name), frame \(t): labels")
            }
        }
        XCTAssertEqual(Parallelism.threads, before)
    }

    /// The property table is what GObject sees: every entry installed under its id with its
    /// default, and a value set through GObject reads back.
    func testPropertyTableIsWhatGObjectSees() throws {
        XCTAssertTrue(Gst.ready)
        let e = try XCTUnwrap(gst_element_factory_make("ferfilter", nil))
        defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
        let klass = UnsafeMutablePointer<GObjectClass>(OpaquePointer(gobject(e).pointee.g_type_instance.g_class))!
        var n: guint = 0
        let specs = try XCTUnwrap(g_object_class_list_properties(klass, &n))
        defer { g_free(specs) }
        let ours = (0..<Int(n)).map { specs[$0]! }.filter { $0.pointee.owner_type == gobject(e).pointee.g_type_instance.g_class.pointee.g_type }
        let names = ours.map { String(cString: $0.pointee.name) }
        for expected in ["model", "cascade", "min-face-size", "scale-factor", "threads", "scan-spread", "flip-alternate", "stats"] {
            XCTAssertTrue(names.contains(expected), expected)
        }
        for (name, value) in [("min-face-size", 48 as Any), ("scale-factor", 1.3), ("flip-tta", false), ("results", "/tmp/x.jsonl")] {
            setProperty(e, name, value)
        }
        XCTAssertEqual(intProperty(e, "min-face-size"), 48)
        XCTAssertEqual(doubleProperty(e, "scale-factor"), 1.3)
        XCTAssertEqual(stringProperty(e, "results"), "/tmp/x.jsonl")
        setProperty(e, "cascade", "")
        XCTAssertEqual(stringProperty(e, "cascade"), AnalysisSettings.defaultCascade, "an empty cascade is the default one")
        XCTAssertEqual(intProperty(e, "scan-spread"), 0)
    }
}

private func property<T>(_ e: UnsafeMutablePointer<GstElement>, _ name: String, _ type: GType, _ read: (UnsafeMutablePointer<GValue>) -> T) -> T {
    let v = gstfer_value_new(type)!
    defer { gstfer_value_free(v) }
    g_object_get_property(gobject(e), name, v)
    return read(v)
}
private func intProperty(_ e: UnsafeMutablePointer<GstElement>, _ name: String) -> Int {
    property(e, name, gstfer_type_int()) { Int(g_value_get_int($0)) }
}
private func doubleProperty(_ e: UnsafeMutablePointer<GstElement>, _ name: String) -> Double {
    property(e, name, gstfer_type_double()) { g_value_get_double($0) }
}
private func stringProperty(_ e: UnsafeMutablePointer<GstElement>, _ name: String) -> String? {
    property(e, name, gstfer_type_string()) { g_value_get_string($0).map { String(cString: $0) } }
}

/// The detector the element uses with its defaults (YuNet, its file as the tests point the element at it).
func defaultDetector() throws -> any FaceDetector {
    try AnalysisSettings().makeDetector(cascade: AnalysisSettings.defaultCascade,
                                        yunet: packageRoot.appendingPathComponent("Models/face_detection_yunet_2023mar.onnx").path)
}
