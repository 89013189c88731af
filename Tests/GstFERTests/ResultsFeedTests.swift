import FaceAnalysis
import CGStreamer
import CGstCheck
import FERNet
import Foundation
import GstFER
import EmotionSEI
import SchemaCheck
import XCTest

/// The `results` property: JSON Lines per frame and a summary at end of stream.
final class ResultsFeedTests: XCTestCase {
    override func setUp() { XCTAssertTrue(Gst.ready) }

    func testJSONLinesPerFrameAndASummaryAtEOS() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-results-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let frame = convert(try faceScene(faces: 4, size: 144), width: 640, height: 480, to: "I420")
        var metas: [[ROI]] = []
        do {
            let h = FerHarness(["draw": false, "results": path], caps: frame.caps)
            for t in 0..<10 {
                let out = try XCTUnwrap(h.process(frame, pts: UInt64(t) * 33_333_333))
                metas.append(rois(of: out))
                gst_buffer_unref(out)
            }
            XCTAssertNotEqual(gst_harness_push_event(h.h, gst_event_new_eos()), 0)
            for m in h.messages() { gst_message_unref(m) }
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 11, "10 frames and a summary")
        // each line holds to its published schema (docs/schemas), and so does the SEI payload of the same faces
        let schemas = SchemaCheck(folder: packageRoot.appendingPathComponent("docs/schemas"))
        for (i, line) in lines.enumerated() {
            let name = i < 10 ? "results-frame.schema.json" : "results-summary.schema.json"
            XCTAssertEqual(try schemas.problems(json: String(line), schema: name), [], "line \(i + 1) against \(name)")
        }
        let faces = metas[9].map {
            EmotionFace(id: Int($0.id), x: $0.x, y: $0.y, width: $0.w, height: $0.h, emotion: $0.label ?? "", labelID: Int($0.labelID),
                        confidence: $0.confidence, probabilities: $0.probabilities, landmarks: $0.landmarks)
        }
        for payload in [EmotionPayload.encode(faces, timecode: "10:00:00:12"), EmotionPayload.encode(faces, probabilities: false)] {
            XCTAssertEqual(try schemas.problems(json: String(decoding: payload, as: UTF8.self), schema: "sei-payload.schema.json"), [])
        }
        for (i, line) in lines.prefix(10).enumerated() {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(o["frame"] as? Int, i)
            XCTAssertEqual(try XCTUnwrap(o["pts"] as? Double), Double(i) / 30, accuracy: 1e-6)
            XCTAssertNotNil(o["wall_time"] as? String)
            let faces = try XCTUnwrap(o["faces"] as? [[String: Any]])
            XCTAssertEqual(faces.count, metas[i].count, "frame \(i): the faces the metas carry")
            XCTAssertGreaterThanOrEqual(faces.count, 3)
            for f in faces {
                let id = try XCTUnwrap(f["id"] as? Int)
                let meta = try XCTUnwrap(metas[i].first { Int($0.id) == id }, "id \(id) in the metas")
                XCTAssertEqual(f["emotion"] as? String, meta.label)
                XCTAssertEqual(f["x"] as? Int, meta.x)
                XCTAssertEqual((f["probabilities"] as? [Double])?.count, 7)
            }
        }
        let last = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[10].utf8)) as? [String: Any])
        let summary = try XCTUnwrap(last["summary"] as? [String: Any])
        XCTAssertEqual(summary["frames"] as? Int, 10)
        let overall = try XCTUnwrap(summary["overall"] as? [String: Double])
        XCTAssertEqual(overall.values.reduce(0, +), 1, accuracy: 1e-9)
        let tracks = try XCTUnwrap(summary["tracks"] as? [[String: Any]])
        XCTAssertEqual(Set(tracks.compactMap { $0["id"] as? Int }), Set(metas[0].map { Int($0.id) }))
        for t in tracks { XCTAssertEqual(t["frames"] as? Int, 10) }
    }

    func testUnwritableResultsFileFailsTheStateChange() throws {
        let pipeline = gst_parse_launch("videotestsrc num-buffers=2 ! ferfilter name=f ! fakesink", nil)!
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
        let f = gst_bin_get_by_name(bin, "f")!
        setProperty(f, "model", shippedModel)
        setProperty(f, "results", "/nonexistent/dir/results.jsonl")
        gst_object_unref(UnsafeMutableRawPointer(f))
        _ = gst_element_set_state(pipeline, GST_STATE_PAUSED)
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        let text = try XCTUnwrap(nextErrorText(bus))
        XCTAssertTrue(text.contains("/nonexistent/dir/results.jsonl") && text.contains("cannot write"), text)
    }
}
