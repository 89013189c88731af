import FaceAnalysis
import CGStreamer
import CGstCheck
import FaceDetect
import FERNet
import FERTraining
import Foundation
import GstFER
import XCTest

final class ElementTests: XCTestCase {
    static let formats = ["GRAY8", "I420", "YV12", "NV12", "NV21", "YUY2", "UYVY", "RGB", "BGR", "RGBx", "BGRx", "xRGB",
                          "xBGR", "RGBA", "BGRA", "ARGB", "ABGR", "I420_10LE", "P010_10LE", "v210"]

    override func setUp() { XCTAssertTrue(Gst.ready) }

    /// On GRAY8 the element reports each face the standalone detector finds, and each label and
    /// probability vector equals what FacialExpressionModel gives for the same crop (with the
    /// element's default flip TTA, the crop and its mirror image averaged).
    func testFacesAndLabelsMatchTheStandaloneModel() throws {
        let grey = try faceScene(faces: 6, size: 120)
        let cascade = try HaarCascade(contentsOf: AnalysisSettings.defaultCascade)
        let expected = grey.withUnsafeBufferPointer {
            cascade.detect(grey: $0.baseAddress!, width: 640, height: 480, stride: 640, parameters: elementDetectionParameters())
        }
        XCTAssertGreaterThanOrEqual(expected.count, 4, "the detector should find most of the 6 faces")
        let model = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: shippedModel))
        // the cascade's boxes are the crops (YuNet's faces are cropped by their landmarks: OneAnalysisTests)
        let h = FerHarness(["draw": false, "detector": "haar"], caps: "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1")
        let out = try XCTUnwrap(h.process(convert(grey, width: 640, height: 480, to: "GRAY8")))
        defer { gst_buffer_unref(out) }
        let found = rois(of: out)
        XCTAssertEqual(found.count, expected.count)
        for r in found {
            XCTAssertEqual(r.type, "face")
            XCTAssertTrue(expected.contains { $0.x == r.x && $0.y == r.y && $0.width == r.w && $0.height == r.h }, "box \(r)")
            let crop = FaceCrop.crop(grey: grey, width: 640, height: 480, box: (r.x, r.y, r.w, r.h), side: 48)
            let p = model.predict(face: crop, flipTTA: AnalysisSettings().flipTTA)
            let k = argmax(p[...])
            XCTAssertEqual(r.label, model.labels[k])
            XCTAssertEqual(Int(r.labelID), k)
            XCTAssertEqual(r.probabilities.count, 7)
            for j in 0..<7 { XCTAssertEqual(r.probabilities[j], Double(p[j]), accuracy: 1e-6) }
            XCTAssertEqual(r.confidence, Double(p[k]), accuracy: 1e-6)
        }
        XCTAssertEqual(Set(found.map(\.id)).count, found.count, "ids are distinct")
    }

    /// Every listed format: the same faces are found as on GRAY8 (boxes within a few pixels), the
    /// output has the input's size, and with draw=false the pixels are untouched. (videoconvert
    /// copies GRAY8's values into the 8-bit YUV formats' luma, which their default colorimetry
    /// calls limited range, another picture to GStreamer and to YuNet's colour input: those frames
    /// say full range here, so they hold GRAY8's picture.)
    func testEveryFormatFindsTheSameFaces() throws {
        let grey = try faceScene(faces: 4, size: 144)
        var reference: [ROI] = []
        for format in ElementTests.formats {
            var frame = convert(grey, width: 640, height: 480, to: format)
            if ["I420", "YV12", "NV12", "NV21", "YUY2", "UYVY"].contains(format) { frame.caps += ",colorimetry=1:4:0:0" }
            let h = FerHarness(["draw": false], caps: frame.caps)
            let out = try XCTUnwrap(h.process(frame), format)
            let found = rois(of: out)
            XCTAssertEqual(bytes(of: out), frame.bytes, "\(format): draw=false must leave pixels untouched")
            gst_buffer_unref(out)
            if format == "GRAY8" { reference = found; XCTAssertGreaterThanOrEqual(found.count, 3); continue }
            XCTAssertEqual(found.count, reference.count, "\(format) finds \(found.count) faces, GRAY8 \(reference.count)")
            for r in found {
                XCTAssertTrue(reference.contains { abs($0.x - r.x) <= 6 && abs($0.y - r.y) <= 6 && abs($0.w - r.w) <= 8 },
                              "\(format): box \(r.x),\(r.y) \(r.w) not found on GRAY8")
                XCTAssertEqual(r.probabilities.reduce(0, +), 1, accuracy: 1e-4)
            }
        }
    }

    /// draw=true changes the pixels, in the face boxes only, in every format.
    func testDrawingMarksTheFaces() throws {
        let grey = try faceScene(faces: 2, size: 150)
        for format in ["GRAY8", "I420", "NV12", "YUY2", "RGB", "BGRx", "I420_10LE", "P010_10LE", "v210"] {
            let frame = convert(grey, width: 640, height: 480, to: format)
            let h = FerHarness(["draw": true, "draw-probabilities": true], caps: frame.caps)
            let out = try XCTUnwrap(h.process(frame))
            let after = bytes(of: out)
            XCTAssertFalse(rois(of: out).isEmpty)
            gst_buffer_unref(out)
            let changed = zip(after, frame.bytes).filter { $0 != $1 }.count
            XCTAssertGreaterThan(changed, 1000, "\(format): the overlay should change pixels")
            XCTAssertLessThan(changed, after.count / 3, "\(format): only around the faces")
        }
    }

    /// The 10-bit formats (what 10-bit decoders and SDI capture give) are drawn as the 8-bit ones:
    /// converted back to grey, a frame drawn in I420_10LE, P010_10LE or v210 matches the same frame
    /// drawn in I420 (so every sample is in its place and scaled right), with the same boxes.
    func testTenBitFormatsAreDrawnLikeEightBit() throws {
        let grey = try faceScene(faces: 2, size: 150)
        func drawnGrey(_ format: String) throws -> (grey: [UInt8], boxes: [[Int]]) {
            let frame = convert(grey, width: 640, height: 480, to: format)
            // the cascade: YuNet's boxes follow its landmarks to a fraction of a pixel, which 10-bit
            // rounding can move by one
            let h = FerHarness(["draw": true, "detector": "haar"], caps: frame.caps)
            let out = try XCTUnwrap(h.process(frame), format)
            defer { gst_buffer_unref(out) }
            return (toGrey(RawFrame(bytes: bytes(of: out), caps: frame.caps), width: 640, height: 480), rois(of: out).map { [$0.x, $0.y, $0.w, $0.h] })
        }
        let reference = try drawnGrey("I420")
        let marked = zip(reference.grey, grey).filter { abs(Int($0) - Int($1)) > 24 }.count
        XCTAssertGreaterThan(marked, 1000, "I420: the overlay is drawn")
        for format in ["I420_10LE", "P010_10LE", "v210"] {
            let got = try drawnGrey(format)
            XCTAssertEqual(got.boxes, reference.boxes, format)
            let differ = zip(got.grey, reference.grey).filter { abs(Int($0) - Int($1)) > 6 }.count
            XCTAssertLessThan(differ, 200, "\(format): \(differ) pixels differ from the I420 drawing by more than 6 levels")
        }
    }

    /// Odd and tiny sizes in several formats pass through without harm.
    func testOddSizes() throws {
        for (w, h) in [(1, 1), (2, 2), (17, 13), (385, 289)] {
            var grey = [UInt8](repeating: 128, count: w * h)
            if w == 385 { grey = try faceScene(width: 385, height: 289, faces: 1, size: 150) }
            for format in ["GRAY8", "I420", "NV21", "YUY2", "RGB", "ABGR", "P010_10LE", "v210"] {
                let frame = convert(grey, width: w, height: h, to: format)
                let harness = FerHarness([:], caps: frame.caps)
                let out = try XCTUnwrap(harness.process(frame), "\(format) \(w)x\(h)")
                XCTAssertEqual(bytes(of: out).count, frame.bytes.count)
                if w == 385 { XCTAssertEqual(rois(of: out).count, 1, "\(format) \(w)x\(h): one face") }
                gst_buffer_unref(out)
            }
        }
    }

    /// The caps may change mid-stream (size and format).
    func testCapsChangeMidStream() throws {
        let a = try faceScene(width: 640, height: 480, faces: 2, size: 150)
        let b = try faceScene(width: 320, height: 240, faces: 1, size: 120)
        let h = FerHarness([:], caps: "video/x-raw,format=I420,width=640,height=480,framerate=30/1")
        for (g, w, hh, f) in [(a, 640, 480, "I420"), (b, 320, 240, "RGB"), (a, 640, 480, "NV12")] {
            let out = try XCTUnwrap(h.process(convert(g, width: w, height: hh, to: f)))
            XCTAssertFalse(rois(of: out).isEmpty, "\(f) \(w)x\(hh)")
            gst_buffer_unref(out)
        }
    }

    /// Bus messages: shaped like facedetect's, every frame, on change, or none.
    func testBusMessages() throws {
        let grey = try faceScene(faces: 4, size: 144)
        let frame = convert(grey, width: 640, height: 480, to: "I420")
        for (mode, expected) in [("every-frame", 3), ("on-change", 1), ("none", 0)] {
            let h = FerHarness(["message-mode": mode], caps: frame.caps)
            var faces = 0
            for t in 0..<3 {
                if let b = h.process(frame, pts: UInt64(t) * 33_333_333) { faces = rois(of: b).count; gst_buffer_unref(b) }
            }
            XCTAssertGreaterThanOrEqual(faces, 3)
            let msgs = h.messages()
            XCTAssertEqual(msgs.count, expected, mode)
            for m in msgs {
                let s = gst_message_get_structure(m)!
                var ts: guint64 = 0
                XCTAssertNotEqual(gst_structure_get_uint64(s, "timestamp", &ts), 0)
                XCTAssertTrue(gst_structure_has_field(s, "running-time") != 0 && gst_structure_has_field(s, "stream-time") != 0
                              && gst_structure_has_field(s, "duration") != 0)
                XCTAssertEqual(Int(gstfer_structure_list_size(s, "faces")), faces, "the message lists the faces the metas carry")
                for i in 0..<Int(gstfer_structure_list_size(s, "faces")) {
                    guard let f = gstfer_structure_list_get(s, "faces", guint(i)) else { XCTFail("face \(i)"); continue }
                    XCTAssertEqual(String(cString: gst_structure_get_name(f)), "face")
                    let label = String(cString: gst_structure_get_string(f, "emotion"))
                    XCTAssertTrue(FERDataset.labels.contains(label))
                    var probs = [gdouble](repeating: 0, count: 8); var n: guint = 0
                    XCTAssertNotEqual(gstfer_structure_get_double_array(f, "probabilities", &probs, 8, &n), 0)
                    XCTAssertEqual(n, 7)
                    var x: guint = 0, w: guint = 0
                    XCTAssertNotEqual(gst_structure_get_uint(f, "x", &x), 0)
                    XCTAssertNotEqual(gst_structure_get_uint(f, "width", &w), 0)
                    XCTAssertGreaterThan(w, 100)
                }
                gst_message_unref(m)
            }
        }
    }

    /// The read-only `stats` property: what the element did, counted frame by frame. With
    /// detect-interval=2 every other frame is analysed and the ones between follow the tracks.
    func testStatsCountWhatTheElementDid() throws {
        let frame = convert(try faceScene(faces: 4, size: 144), width: 640, height: 480, to: "I420")
        let h = FerHarness(["detect-interval": 2, "draw": false], caps: frame.caps)
        func stats() throws -> [String: Any] { try ferfilterStats(h.element) }
        XCTAssertEqual(try stats()["frames"] as? Int, 0)
        var faces: [Int] = []
        for t in 0..<10 {
            let out = try XCTUnwrap(h.process(frame, pts: UInt64(t) * 33_333_333))
            faces.append(rois(of: out).count)
            gst_buffer_unref(out)
        }
        let s = try stats()
        print("ferfilter stats after 10 frames: \(s)")
        XCTAssertEqual(s["frames"] as? Int, 10)
        XCTAssertEqual(s["analysed"] as? Int, 5)
        XCTAssertEqual(s["between"] as? Int, 5)
        XCTAssertEqual([s["skipped-late"], s["skipped-busy"], s["skipped-rate"]].compactMap { $0 as? Int }, [0, 0, 0])
        XCTAssertEqual(s["faces"] as? Int, faces.last)
        XCTAssertGreaterThanOrEqual(faces.last ?? 0, 3)
        XCTAssertEqual(s["tracks"] as? Int, Set(faces).max(), "one track per face, none lost")
        let mean = try XCTUnwrap(s["analysis-ms-mean"] as? Double), maxA = try XCTUnwrap(s["analysis-ms-max"] as? Double)
        XCTAssertGreaterThan(mean, 0); XCTAssertGreaterThanOrEqual(maxA, mean)
        let frameMean = try XCTUnwrap(s["frame-ms-mean"] as? Double)
        XCTAssertGreaterThan(frameMean, 0); XCTAssertGreaterThanOrEqual(try XCTUnwrap(s["frame-ms-max"] as? Double), frameMean)
        XCTAssertLessThan(frameMean, mean, "frames between analyses cost almost nothing")
        // read-only: gst-inspect says so
        let spec = try XCTUnwrap(g_object_class_find_property(UnsafeMutablePointer<GObjectClass>(OpaquePointer(gobject(h.element).pointee.g_type_instance.g_class)), "stats"))
        XCTAssertEqual(spec.pointee.flags.rawValue & G_PARAM_WRITABLE.rawValue, 0)
    }

    /// A missing or corrupt model, face detector or cascade fails the state change with an error naming the file.
    func testBadFilesFailTheStateChange() throws {
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-bad-\(UUID().uuidString).json")
        try "{ not json".write(to: bad, atomically: true, encoding: .utf8)
        for (prop, value, words) in [("model", "/nonexistent/fer.json", "not found"), ("model", bad.path, "not a valid"),
                                     ("cascade", bad.path, "cascade"), ("detector-model", bad.path, "face detector"),
                                     ("detector-model", "/nonexistent/yunet.onnx", "does not exist")] {
            let pipeline = gst_parse_launch("videotestsrc num-buffers=2 ! ferfilter name=f ! fakesink", nil)!
            let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
            let f = gst_bin_get_by_name(bin, "f")!
            if prop == "model" { setProperty(f, "model", value) } else { setProperty(f, "model", shippedModel); setProperty(f, prop, value) }
            if prop == "cascade" { setProperty(f, "detector", "haar") }
            gst_object_unref(UnsafeMutableRawPointer(f))
            let ret = gst_element_set_state(pipeline, GST_STATE_PAUSED)
            let bus = gst_element_get_bus(pipeline)!
            let msg = gst_bus_timed_pop_filtered(bus, 5_000_000_000, GST_MESSAGE_ERROR)
            XCTAssertNotNil(msg, "\(prop)=\(value): an error message")
            if let msg {
                var err: UnsafeMutablePointer<GError>? = nil
                gst_message_parse_error(msg, &err, nil)
                let text = String(cString: err!.pointee.message)
                XCTAssertTrue(text.contains(value) && text.contains(words), text)
                g_error_free(err); gst_message_unref(msg)
            }
            XCTAssertTrue(ret == GST_STATE_CHANGE_FAILURE || ret == GST_STATE_CHANGE_ASYNC)
            gst_element_set_state(pipeline, GST_STATE_NULL)
            gst_object_unref(UnsafeMutableRawPointer(bus)); gst_object_unref(UnsafeMutableRawPointer(pipeline))
        }
    }
}

final class ConcurrencyTests: XCTestCase {
    /// Properties changed from another thread while frames flow (including reloading the model)
    /// never break the stream, and the last settings take effect.
    func testPropertyChangesWhileFramesFlow() throws {
        XCTAssertTrue(Gst.ready)
        let grey = try faceScene(faces: 2, size: 150)
        let frame = convert(grey, width: 640, height: 480, to: "I420")
        let h = FerHarness([:], caps: frame.caps)
        let element = h.element
        final class Shared: @unchecked Sendable {
            let lock = NSLock(); var stop = false; var changes = 0
            var element: UnsafeMutablePointer<GstElement>
            init(_ e: UnsafeMutablePointer<GstElement>) { element = e }
        }
        let shared = Shared(element)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var i = 0
            while true {
                shared.lock.lock(); let stop = shared.stop; shared.lock.unlock()
                if stop { break }
                let e = shared.element
                setProperty(e, "draw", i % 2 == 0)
                setProperty(e, "min-face-size", 30 + i % 40)
                setProperty(e, "scale-factor", 1.1 + Double(i % 5) * 0.05)
                setProperty(e, "max-faces", 1 + i % 4)
                setProperty(e, "message-mode", ["every-frame", "on-change", "none"][i % 3])
                if i % 50 == 0 { setProperty(e, "model", shippedModel) }   // reload between frames
                i += 1
                shared.lock.lock(); shared.changes = i; shared.lock.unlock()
            }
            finished.signal()
        }
        let frames = 40
        for t in 0..<frames {
            let out = try XCTUnwrap(h.process(frame, pts: UInt64(t) * 33_333_333))
            XCTAssertLessThanOrEqual(rois(of: out).count, 4)
            gst_buffer_unref(out)
        }
        shared.lock.lock(); shared.stop = true; shared.lock.unlock()
        finished.wait()
        setProperty(element, "max-faces", 1)
        let out = try XCTUnwrap(h.process(frame))
        XCTAssertEqual(rois(of: out).count, 1, "the last max-faces applies")
        gst_buffer_unref(out)
        for m in h.messages() { gst_message_unref(m) }
        XCTAssertGreaterThan(shared.changes, 10, "properties changed while \(frames) frames flowed")
    }

    /// Elements in one process share one copy of a model file (`FacialExpressionModel.shared`)
    /// and run it at once: two elements analysing frames on two threads together get, frame by
    /// frame, the faces and probabilities an element gets alone. (Under `make tsan`, where two
    /// threads in one forward pass would show.)
    func testElementsSharingAModelRunAtOnce() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()   // skips, saying why, without the data
        let frames = (0..<12).map { t -> RawFrame in
            let scene = FaceScene.grid(width: 640, height: 480, rows: Array(12..<18), size: 130).moved(frame: t * 3)
            return convert(scene.render(d, phase: t), width: 640, height: 480, to: "I420")
        }
        func run(_ h: FerHarness) -> [[ROI]] {
            frames.enumerated().map { t, f in
                guard let out = h.process(f, pts: UInt64(t) * 33_333_333) else { return [] }
                defer { gst_buffer_unref(out) }
                return rois(of: out)
            }
        }
        let alone = run(FerHarness([:], caps: frames[0].caps))
        XCTAssertGreaterThanOrEqual(alone.map(\.count).reduce(0, +), 50, "the six faces are found")
        let a = FerHarness([:], caps: frames[0].caps), b = FerHarness([:], caps: frames[0].caps)
        final class Out: @unchecked Sendable { var a: [[ROI]] = [], b: [[ROI]] = [] }
        let out = Out()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            if i == 0 { out.a = run(a) } else { out.b = run(b) }
        }
        for (name, got) in [("first", out.a), ("second", out.b)] {
            XCTAssertEqual(got.count, alone.count)
            for (t, (g, e)) in zip(got, alone).enumerated() {
                XCTAssertEqual(g.map { [$0.x, $0.y, $0.w, $0.h] }, e.map { [$0.x, $0.y, $0.w, $0.h] }, "\(name) element, frame \(t): boxes")
                XCTAssertEqual(g.map(\.label), e.map(\.label), "\(name) element, frame \(t): labels")
                for (x, y) in zip(g, e) { XCTAssertEqual(x.probabilities, y.probabilities, "\(name) element, frame \(t)") }
            }
        }
    }

    /// A bad model set while PLAYING posts a warning naming the file and the stream goes on with
    /// the model loaded before.
    func testBadModelWhilePlayingKeepsTheOldOne() throws {
        XCTAssertTrue(Gst.ready)
        let frame = convert(try faceScene(faces: 2, size: 150), width: 640, height: 480, to: "NV12")
        let h = FerHarness([:], caps: frame.caps)
        var out = try XCTUnwrap(h.process(frame))
        let before = rois(of: out)
        gst_buffer_unref(out)
        setProperty(h.element, "model", "/nonexistent/other.json")
        out = try XCTUnwrap(h.process(frame), "the stream goes on")
        XCTAssertEqual(rois(of: out).map(\.label), before.map(\.label))
        gst_buffer_unref(out)
        let warning = try XCTUnwrap(gst_bus_pop_filtered(h.bus, GST_MESSAGE_WARNING))
        var err: UnsafeMutablePointer<GError>? = nil
        gst_message_parse_warning(warning, &err, nil)
        let text = String(cString: err!.pointee.message)
        XCTAssertTrue(text.contains("/nonexistent/other.json") && text.contains("keeping"), text)
        g_error_free(err); gst_message_unref(warning)
        for m in h.messages() { gst_message_unref(m) }
    }
}
