import CGStreamer
import FaceAnalysis
import FERTraining
import Foundation
import MQTTBrokerHarness
import SchemaCheck
import XCTest

/// ferfilter's and ferseiextract's `publish` property against a real broker (Debian's mosquitto
/// on a free loopback port), read by the reference subscriber (mosquitto_sub): what arrives is
/// what the results file has; the stream never waits for the broker.
final class PublishTests: XCTestCase {
    override func setUp() { XCTAssertTrue(Gst.ready) }

    func broker(users: [String: String] = [:]) throws -> TestBroker {
        do { return try TestBroker(users: users) } catch TestBroker.Failure.missing(let what) {
            throw XCTSkip("\(what) is not installed (make setup installs mosquitto, mosquitto-clients and openssl)")
        }
    }

    /// A 640x480 GRAY8 clip of `frames` frames at 30 fps: four PublicTest faces drifting, and
    /// halfway each face replaced by another (same place, so same track: its emotion changes).
    static func clip(frames: Int) throws -> URL {
        let d = try fer2013()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-publish-clip-\(getpid())-\(frames).gray")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frames * 640 * 480)
        for t in 0..<frames {
            let rows = t < frames / 2 ? [0, 1, 2, 3] : [10, 11, 12, 13]   // PublicTest rows; 10-13 show other emotions than 0-3
            bytes += FaceScene.grid(width: 640, height: 480, rows: rows, size: 144).moved(frame: t % 60).render(d)
        }
        try Data(bytes).write(to: url)
        return url
    }

    /// The clip as a pipeline's source: raw GRAY8 at 30 fps.
    func source(frames: Int) throws -> String {
        "filesrc location=\(try PublishTests.clip(frames: frames).path) ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 "
    }

    func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-publish-\(getpid())-\(name)").path
    }

    struct Run {
        var changes: [(id: Int, emotion: String, previous: String)] = []
        var warnings: [String] = [], error: String?
        var seconds = 0.0
        var stats: [String: Any] = [:]
    }

    /// Runs `description` to its end (or its error), with `during` called on the side while it
    /// plays; reads the `stats` of the element named `fer` before it stops.
    func run(_ description: String, during: ((Double) -> Void)? = nil) throws -> Run {
        var err: UnsafeMutablePointer<GError>? = nil
        let pipeline = try XCTUnwrap(gst_parse_launch(description, &err), err.map { String(cString: $0.pointee.message) } ?? description)
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        var r = Run()
        let t0 = Date()
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            r.error = nextErrorText(bus) ?? "state change failed"
            return r
        }
        let fer = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "fer")
        defer { if let fer { gst_object_unref(UnsafeMutableRawPointer(fer)) } }
        var side: Thread?
        if let during {
            side = Thread { during(Date().timeIntervalSince(t0)) }
            side?.start()
        }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_WARNING.rawValue
                                   | GST_MESSAGE_ELEMENT.rawValue)
        loop: while let m = gst_bus_timed_pop_filtered(bus, 120 * 1_000_000_000, types) {
            defer { gst_message_unref(m) }
            switch m.pointee.type {
            case GST_MESSAGE_EOS: break loop
            case GST_MESSAGE_ERROR, GST_MESSAGE_WARNING:
                var e: UnsafeMutablePointer<GError>? = nil, debug: UnsafeMutablePointer<gchar>? = nil
                if m.pointee.type == GST_MESSAGE_ERROR { gst_message_parse_error(m, &e, &debug) } else { gst_message_parse_warning(m, &e, &debug) }
                let text = e.map { String(cString: $0.pointee.message) } ?? ""
                g_error_free(e); g_free(debug)
                if m.pointee.type == GST_MESSAGE_ERROR { r.error = text; break loop }
                r.warnings.append(text)
            default:
                guard let st = gst_message_get_structure(m), String(cString: gst_structure_get_name(st)) == "ferfilter-emotion-changed" else { continue }
                var id: gint = 0
                _ = gst_structure_get_int(st, "id", &id)
                r.changes.append((Int(id), String(cString: gst_structure_get_string(st, "emotion")), String(cString: gst_structure_get_string(st, "previous"))))
            }
        }
        r.seconds = Date().timeIntervalSince(t0)
        if let fer { r.stats = try publishStats(fer) }
        gst_element_set_state(pipeline, GST_STATE_NULL)   // stopping closes the publisher: its counts are final
        if let fer { r.stats = try publishStats(fer) }
        while side?.isFinished == false { usleep(10_000) }
        return r
    }

    func publishStats(_ e: UnsafeMutablePointer<GstElement>) throws -> [String: Any] {
        let v = gstfer_value_new(gst_structure_get_type())!
        defer { gstfer_value_free(v) }
        g_object_get_property(gobject(e), "stats", v)
        let st = try XCTUnwrap(UnsafePointer<GstStructure>(OpaquePointer(g_value_get_boxed(v))))
        var out: [String: Any] = [:]
        for f in ["frames", "published", "publish-dropped", "publish-queued", "publish-connections"] {
            var n: guint64 = 0
            if gst_structure_get_uint64(st, f, &n) != 0 { out[f] = Int(n) }
        }
        var b: gboolean = 0
        if gst_structure_get_boolean(st, "publish-connected", &b) != 0 { out["publish-connected"] = b != 0 }
        var d = 0.0
        if gst_structure_get_double(st, "analysis-ms-mean", &d) != 0 { out["analysis-ms-mean"] = d }
        return out
    }

    func json(_ s: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any], s)
    }

    /// The faces of a results line, without what differs between two writings of one frame.
    func faces(_ line: [String: Any]) -> String {
        let f = line["faces"] as? [[String: Any]] ?? []
        return String(decoding: try! JSONSerialization.data(withJSONObject: f, options: [.sortedKeys]), as: UTF8.self)
    }

    // MARK: tests

    /// Every frame's line arrives with the faces the results file has, each emotion change as the
    /// bus reports it, the summary as the file's, and the status online then offline.
    func testFerfilterPublishesWhatTheResultsFileHas() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "cams/one/#")
        let results = scratch("one.jsonl")
        let r = try run(try source(frames: 90) + "! ferfilter name=fer model=\"\(shippedModel)\" skip-late=false results=\(results) "
                        + "publish=mqtt://127.0.0.1:\(b.port)/cams/one ! fakesink")
        XCTAssertNil(r.error); XCTAssertEqual(r.warnings, [])
        XCTAssertTrue(sub.wait(timeout: 10) { $0.last == "cams/one/status offline" })
        let file = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n").map { try json(String($0)) }
        let frames = try sub.messages.filter { $0.topic == "cams/one/frames" }.map { try json($0.payload) }
        XCTAssertEqual(file.count, 91, "90 frames and the summary")
        XCTAssertEqual(frames.count, 90)
        for (a, p) in zip(file, frames) {
            XCTAssertEqual(p["frame"] as? Int, a["frame"] as? Int)
            XCTAssertEqual(p["pts"] as? Double, a["pts"] as? Double)
            XCTAssertEqual(faces(p), faces(a))
        }
        XCTAssertGreaterThan(frames.map { ($0["faces"] as? [Any])?.count ?? 0 }.reduce(0, +), 300, "the faces were found")
        let changes = try sub.messages.filter { $0.topic == "cams/one/changes" }.map { try json($0.payload) }
        XCTAssertFalse(r.changes.isEmpty, "the faces swapped halfway: emotions changed")
        XCTAssertEqual(changes.map { "\($0["id"]!) \($0["previous"]!)->\($0["emotion"]!)" }, r.changes.map { "\($0.id) \($0.previous)->\($0.emotion)" },
                       "each change, as ferfilter-emotion-changed reports it")
        let summary = try sub.messages.filter { $0.topic == "cams/one/summary" }.map { try json($0.payload) }
        XCTAssertEqual(summary.count, 1)
        XCTAssertEqual((summary.first?["summary"] as? [String: Any])?["frames"] as? Int, 90)
        XCTAssertEqual(NSDictionary(dictionary: summary.first ?? [:]), NSDictionary(dictionary: file.last ?? [:]), "the file's summary")
        XCTAssertEqual(sub.messages.filter { $0.topic == "cams/one/status" }.map(\.payload), ["online", "offline"])
        XCTAssertEqual(r.stats["published"] as? Int, 90 + changes.count + 1)
        XCTAssertEqual(r.stats["publish-dropped"] as? Int, 0)
        // every payload holds to its published schema
        let schemas = SchemaCheck(folder: packageRoot.appendingPathComponent("docs/schemas"))
        for m in sub.messages {
            let schema = ["cams/one/frames": "results-frame.schema.json", "cams/one/changes": "mqtt-change.schema.json",
                          "cams/one/summary": "results-summary.schema.json"][m.topic]
            if let schema { XCTAssertEqual(try schemas.problems(json: m.payload, schema: schema), [], m.topic) }
        }
        print("published: \(frames.count) frames, \(changes.count) changes, \(summary.count) summary; "
              + "stats published \(r.stats["published"] ?? "?"), dropped \(r.stats["publish-dropped"] ?? "?")")
    }

    /// The broker stops for a while mid-stream (a live-paced clip of 10 s): every frame passes on
    /// time, the element reconnects by itself, and what it counts dropped is exactly what the
    /// subscriber (a persistent session, so the broker keeps what comes while it is away) never got.
    func testBrokerStoppedMidStreamFramesGoOnAndDropsAreCounted() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "cams/two/#", session: "gstfer-test-two-\(getpid())")
        let results = scratch("two.jsonl")
        let r = try run(try source(frames: 300) + "! ferfilter name=fer model=\"\(shippedModel)\" results=\(results) "
                        + "publish=\"mqtt://127.0.0.1:\(b.port)/cams/two?queue=10\" ! fakesink sync=true") { _ in
            usleep(2_500_000); b.stop()
            usleep(1_500_000); try? b.start()
        }
        XCTAssertNil(r.error)
        XCTAssertTrue(r.warnings.contains { $0.contains("lost its connection") }, "\(r.warnings)")
        // a build that cannot keep the clip's pace (a sanitizer's: seconds a frame) shows no outage in frames
        let realTime = (r.stats["analysis-ms-mean"] as? Double ?? 0) < 20   // the analysis alone, not the publishing
        if realTime { XCTAssertLessThan(r.seconds, 10 + 1.5, "the stream never waited for the broker") }
        XCTAssertEqual(r.stats["frames"] as? Int, 300)
        XCTAssertEqual(r.stats["publish-connections"] as? Int, 2, "reconnected by itself")
        XCTAssertTrue(sub.wait(timeout: 15) { $0.last == "cams/two/status offline" })
        let lines = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 301, "every frame passed")
        // QoS 1 may deliver a message twice around a reconnection: count each one once
        var arrived = Set<String>()
        for m in sub.messages where m.topic != "cams/two/status" {
            let o = try json(m.payload)
            arrived.insert("\(m.topic) \(o["frame"] ?? "") \(o["id"] ?? "") \(o["pts"] ?? "")")
        }
        let published = try XCTUnwrap(r.stats["published"] as? Int), dropped = try XCTUnwrap(r.stats["publish-dropped"] as? Int)
        let total = 300 + r.changes.count + 1
        XCTAssertEqual(published + dropped, total, "each message sent or dropped")
        if realTime { XCTAssertGreaterThan(dropped, 20, "1.5 s and more without a broker, with a queue of 10") }
        XCTAssertEqual(total - arrived.count, dropped, "the drop count is exactly what did not arrive")
        print("broker stopped 1.5 s mid-stream: \(r.stats["frames"] ?? "?") frames in \(String(format: "%.2f", r.seconds)) s (a 10.0 s clip), "
              + "\(total) messages made, \(arrived.count) arrived, \(published) published, \(dropped) dropped, "
              + "\(r.stats["publish-connections"] ?? "?") connections")
    }

    func testFerseiextractPublishesTheFacesItReads() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "cams/three/#")
        let results = scratch("three.jsonl")
        let r = try run(try source(frames: 60) + "! ferfilter model=\"\(shippedModel)\" skip-late=false ! videoconvert ! x264enc tune=zerolatency key-int-max=30 "
                        + "! h264parse ! ferseiinsert ! h264parse ! ferseiextract name=fer results=\(results) "
                        + "publish=mqtt://127.0.0.1:\(b.port)/cams/three ! fakesink")
        XCTAssertNil(r.error)
        XCTAssertTrue(sub.wait(timeout: 10) { $0.last == "cams/three/status offline" })
        let file = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n").map { try json(String($0)) }
        let frames = try sub.messages.filter { $0.topic == "cams/three/frames" }.map { try json($0.payload) }
        XCTAssertEqual(frames.count, 60); XCTAssertEqual(file.count, 61)
        XCTAssertEqual(frames.map(faces), file.dropLast().map(faces))
        XCTAssertFalse(sub.messages.filter { $0.topic == "cams/three/changes" }.isEmpty, "the changes, from the faces read")
        XCTAssertEqual(sub.messages.filter { $0.topic == "cams/three/summary" }.count, 1)
        XCTAssertEqual(r.stats["published"] as? Int, sub.messages.filter { $0.topic != "cams/three/status" }.count)
        XCTAssertEqual(r.stats["frames"] as? Int, 60)
    }

    /// What fails the start (a bad URL, refused credentials) and what does not (no broker yet).
    func testBadURLsAndRefusalsFailTheStartNoBrokerIsAWarning() throws {
        let head = try source(frames: 60) + "! ferfilter name=fer model=\"\(shippedModel)\" skip-late=false "
        let bad = try run(head + "publish=\"mqtt://127.0.0.1:1883/cams/#\" ! fakesink")
        XCTAssertTrue(bad.error?.contains("mqtt://127.0.0.1:1883/cams/#") == true && bad.error?.contains("wildcard") == true, "\(bad.error ?? "no error")")

        let b = try broker(users: ["cam": "right"])
        let refused = try run(head + "publish=mqtt://cam:wrong@127.0.0.1:\(b.port)/cams/four ! fakesink")
        XCTAssertTrue(refused.error?.contains("refused ferfilter") == true, "\(refused.error ?? "no error")")
        XCTAssertFalse(refused.error?.contains("wrong") ?? true, "the password is not shown")
        let accepted = try run(head + "publish=mqtt://cam:right@127.0.0.1:\(b.port)/cams/four ! fakesink")
        XCTAssertNil(accepted.error)
        XCTAssertEqual(accepted.stats["published"] as? Int, (accepted.stats["frames"] as? Int).map { $0 + 1 + accepted.changes.count })

        let port = try freePort()
        let absent = try run(head + "publish=mqtt://127.0.0.1:\(port)/cams/five ! fakesink")
        XCTAssertNil(absent.error, "no broker is not an error")
        XCTAssertTrue(absent.warnings.contains { $0.contains("cannot reach the MQTT broker mqtt://127.0.0.1:\(port)/cams/five") }, "\(absent.warnings)")
        XCTAssertEqual(absent.stats["frames"] as? Int, 60, "every frame passed")
        XCTAssertEqual(absent.stats["published"] as? Int, 0)
        XCTAssertEqual(absent.stats["publish-dropped"] as? Int, 60 + 1 + absent.changes.count, "all counted dropped")
    }
}
