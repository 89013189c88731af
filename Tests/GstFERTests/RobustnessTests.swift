import FaceAnalysis
import CGStreamer
import CGstCheck
import FERNet
import FERTraining
import Foundation
import XCTest

/// Odd frames: every format at tiny, odd and 4K sizes, padded strides from a video meta, no faces
/// and a hundred faces.
final class RobustnessTests: XCTestCase {
    static let formats = ["GRAY8", "I420", "YV12", "NV12", "NV21", "YUY2", "UYVY", "RGB", "BGR", "RGBx", "BGRx",
                          "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR", "I420_10LE", "P010_10LE", "v210"]

    func testEveryFormatAtEverySize() throws {
        let sizes = [(1, 1), (2, 2), (17, 13), (385, 289), (4096, 2160)]
        for (w, h) in sizes {
            var grey = [UInt8](repeating: 128, count: w * h)
            var expectFaces = 0
            if w == 385 { grey = try faceScene(width: 385, height: 289, faces: 1, size: 150); expectFaces = 1 }
            if w == 4096 { grey = try faceScene(width: 4096, height: 2160, faces: 2, size: 600, first: 3); expectFaces = 2 }
            for format in RobustnessTests.formats {
                let frame = convert(grey, width: w, height: h, to: format)
                let harness = FerHarness(["draw-probabilities": true], caps: frame.caps)
                let out = try XCTUnwrap(harness.process(frame), "\(format) \(w)x\(h)")
                XCTAssertEqual(bytes(of: out).count, frame.bytes.count, "\(format) \(w)x\(h)")
                let found = rois(of: out)
                XCTAssertEqual(found.count, expectFaces, "\(format) \(w)x\(h): \(found.map { ($0.x, $0.y, $0.w) })")
                for r in found {
                    XCTAssertTrue(r.x >= 0 && r.y >= 0 && r.x + r.w <= w && r.y + r.h <= h, "\(format) \(w)x\(h): box inside the frame")
                }
                gst_buffer_unref(out)
            }
        }
    }

    /// A frame whose planes have padded strides and offsets, described by a GstVideoMeta: the
    /// element finds the same faces as in a tightly packed frame and never writes into the padding.
    func testPaddedStridesFromAVideoMeta() throws {
        let w = 640, h = 480
        let grey = try faceScene(width: w, height: h, faces: 3, size: 150)
        let tight = convert(grey, width: w, height: h, to: "I420")
        let ref = FerHarness([:], caps: tight.caps)
        let refOut = try XCTUnwrap(ref.process(tight))
        let expected = rois(of: refOut).map { [$0.x, $0.y, $0.w, $0.h] }
        gst_buffer_unref(refOut)
        XCTAssertGreaterThanOrEqual(expected.count, 2)

        // the same frame laid out with 64 bytes of padding per luma row, 40 per chroma row, gaps between planes
        let strides: [gint] = [gint(w + 64), gint(w / 2 + 40), gint(w / 2 + 40), 0]
        let offsets: [gsize] = [128, gsize(128 + (w + 64) * h + 256), gsize(128 + (w + 64) * h + 256 + (w / 2 + 40) * (h / 2) + 256), 0]
        let total = Int(offsets[2]) + Int(strides[2]) * h / 2 + 64
        let sentinel: UInt8 = 0x5A
        var padded = [UInt8](repeating: sentinel, count: total)
        let planeSizes = [(w, h), (w / 2, h / 2), (w / 2, h / 2)]
        var src = 0
        for p in 0..<3 {
            let (pw, ph) = planeSizes[p]
            for y in 0..<ph { for x in 0..<pw { padded[Int(offsets[p]) + y * Int(strides[p]) + x] = tight.bytes[src + y * pw + x] } }
            src += pw * ph
        }
        let buffer = makeBuffer(padded)
        var off = offsets, st = strides
        XCTAssertNotNil(gst_buffer_add_video_meta_full(buffer, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_I420, guint(w), guint(h), 3, &off, &st))
        let harness = FerHarness(["draw-probabilities": true], caps: tight.caps)
        XCTAssertEqual(gst_harness_push(harness.h, buffer), GST_FLOW_OK)
        let out = try XCTUnwrap(gst_harness_pull(harness.h))
        defer { gst_buffer_unref(out) }
        XCTAssertEqual(rois(of: out).map { [$0.x, $0.y, $0.w, $0.h] }, expected)
        let after = bytes(of: out)
        var inside = [Bool](repeating: false, count: total)
        var changed = 0
        for p in 0..<3 {
            let (pw, ph) = planeSizes[p]
            for y in 0..<ph { for x in 0..<pw { inside[Int(offsets[p]) + y * Int(strides[p]) + x] = true } }
        }
        for i in 0..<total {
            if !inside[i] { XCTAssertEqual(after[i], sentinel, "padding byte \(i) was written"); if after[i] != sentinel { break } }
            else if after[i] != padded[i] { changed += 1 }
        }
        XCTAssertGreaterThan(changed, 1000, "the boxes and labels were drawn into the picture")
    }

    func testNoFacesAndAHundredFaces() throws {
        let blank = convert([UInt8](repeating: 90, count: 640 * 480), width: 640, height: 480, to: "I420")
        let h0 = FerHarness([:], caps: blank.caps)
        let out0 = try XCTUnwrap(h0.process(blank))
        XCTAssertEqual(rois(of: out0).count, 0)
        gst_buffer_unref(out0)
        let m0 = h0.messages()
        XCTAssertEqual(m0.count, 1)
        var n: guint = 99
        _ = gst_structure_get_uint(gst_message_get_structure(m0[0]), "count", &n)
        XCTAssertEqual(n, 0)
        m0.forEach { gst_message_unref($0) }

        let d = try fer2013()
        let scene = FaceScene.grid(width: 1920, height: 1080, rows: Array(100..<200), size: 92)
        let crowd = convert(scene.render(d), width: 1920, height: 1080, to: "I420")
        let h100 = FerHarness(["max-faces": 0, "draw-probabilities": true], caps: crowd.caps)
        let out = try XCTUnwrap(h100.process(crowd))
        let found = rois(of: out)
        gst_buffer_unref(out)
        var matched = Set<Int>()
        for r in found {
            if let k = scene.placements.firstIndex(where: { abs($0.x + 46 - (r.x + r.w / 2)) < 30 && abs($0.y + 46 - (r.y + r.h / 2)) < 30 }) { matched.insert(k) }
        }
        print("100 faces: \(found.count) reported, \(matched.count) at a placed face")
        XCTAssertGreaterThanOrEqual(matched.count, 70, "most of the 100 faces are found")
        XCTAssertEqual(Set(found.map(\.id)).count, found.count, "one track id per face")
        let m = h100.messages()
        var count: guint = 0
        _ = gst_structure_get_uint(gst_message_get_structure(m.last!), "count", &count)
        XCTAssertEqual(Int(count), found.count, "the message lists every face")
        m.forEach { gst_message_unref($0) }
    }

    /// PLAYING -> NULL -> PLAYING in a loop on live and non-live sources while another thread
    /// changes properties and reloads the model: every state change succeeds, no error is posted,
    /// and the last run still processes frames. (Run under ThreadSanitizer with `make tsan`.)
    func testStateChangesInALoopWhilePropertiesChange() throws {
        XCTAssertTrue(Gst.ready)
        for live in [true, false] {
            let line = "videotestsrc is-live=\(live) pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 "
                + "! ferfilter name=f ! fakesink name=sink sync=\(live)"
            var err: UnsafeMutablePointer<GError>? = nil
            let pipeline = try XCTUnwrap(gst_parse_launch(line, &err), err.map { String(cString: $0.pointee.message) } ?? "")
            let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
            let element = try XCTUnwrap(gst_bin_get_by_name(bin, "f"))
            setProperty(element, "model", shippedModel)
            final class Flag: @unchecked Sendable { let lock = NSLock(); var stop = false; var changes = 0 }
            let flag = Flag()
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) let e = element
            Thread.detachNewThread {
                var i = 0
                while true {
                    flag.lock.lock(); let stop = flag.stop; flag.lock.unlock()
                    if stop { break }
                    setProperty(e, "detect-interval", 1 + i % 3)
                    setProperty(e, "smoothing", Double(i % 4) * 0.2)
                    setProperty(e, "threads", i % 3)
                    if i % 20 == 0 { setProperty(e, "model", shippedModel) }
                    i += 1
                    flag.lock.lock(); flag.changes = i; flag.lock.unlock()
                    usleep(2000)
                }
                done.signal()
            }
            let bus = gst_element_get_bus(pipeline)!
            for round in 0..<12 {
                XCTAssertNotEqual(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE, "live \(live) round \(round)")
                var state = GST_STATE_NULL, pending = GST_STATE_NULL
                XCTAssertEqual(gst_element_get_state(pipeline, &state, &pending, 5_000_000_000), GST_STATE_CHANGE_SUCCESS)
                usleep(useconds_t(30_000 + (round % 4) * 40_000))
                XCTAssertNotEqual(gst_element_set_state(pipeline, round % 3 == 0 ? GST_STATE_READY : GST_STATE_NULL), GST_STATE_CHANGE_FAILURE)
            }
            // a last run: frames flow
            gst_element_set_state(pipeline, GST_STATE_PLAYING)
            usleep(500_000)
            var position: gint64 = 0
            XCTAssertNotEqual(gst_element_query_position(pipeline, GST_FORMAT_TIME, &position), 0)
            XCTAssertGreaterThan(position, 0, "live \(live): the last run plays")
            flag.lock.lock(); flag.stop = true; flag.lock.unlock()
            done.wait()
            gst_element_set_state(pipeline, GST_STATE_NULL)
            while let m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) {
                XCTFail("live \(live): error on the bus: \(String(cString: gst_structure_to_string(gst_message_get_structure(m))))")
                gst_message_unref(m)
            }
            XCTAssertGreaterThan(flag.changes, 20)
            gst_object_unref(UnsafeMutableRawPointer(bus))
            gst_object_unref(UnsafeMutableRawPointer(element))
            gst_object_unref(UnsafeMutableRawPointer(pipeline))
        }
    }
}
