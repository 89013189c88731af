import FaceAnalysis
import CGStreamer
import CGstCheck
import EmotionSEI
import FERNet
import FERTraining
import SchemaCheck
import Foundation
@testable import GstFER
import XCTest

/// ferseiinsert and ferseiextract on real encoders, muxers and decoders: the faces ferfilter
/// reports on the sending side come out of the file or stream on the receiving side, frame for
/// frame, and decoders are not disturbed by the SEI; feroverlay draws them at the other end.
final class SEIElementTests: XCTestCase {
    override func setUp() { XCTAssertTrue(Gst.ready) }

    /// One frame's `ferfilter` message: its timestamp, faces and time code (if any).
    struct Reported { var pts: GstClockTime; var faces: [EmotionFace]; var timecode: String? = nil }

    /// A 640x480 GRAY8 clip of four drifting PublicTest faces, written once per test run.
    static let clip: Result<URL, Error> = Result {
        let d = try fer2013()
        let scene = FaceScene.grid(width: 640, height: 480, rows: [0, 1, 2, 3], size: 144)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-sei-clip-\(getpid()).gray")
        var bytes: [UInt8] = []
        for t in 0..<36 { bytes += scene.moved(frame: t * 3).render(d) }
        try Data(bytes).write(to: url)
        return url
    }

    func source() throws -> String {
        "filesrc location=\(try SEIElementTests.clip.get().path) ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 "
            + "! ferfilter name=sender model=\"\(shippedModel)\" skip-late=false"
    }

    func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-sei-\(getpid())-\(name)").path
    }

    /// Runs a pipeline to its end; returns the `ferfilter` messages of each element by name, the
    /// warnings posted, in order.
    @discardableResult
    func run(_ description: String) throws -> (messages: [String: [Reported]], warnings: [String]) {
        var err: UnsafeMutablePointer<GError>? = nil
        let pipeline = try XCTUnwrap(gst_parse_launch(description, &err), err.map { String(cString: $0.pointee.message) } ?? description)
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        XCTAssertNotEqual(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE, description)
        var messages: [String: [Reported]] = [:], warnings: [String] = []
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_WARNING.rawValue
                                   | GST_MESSAGE_ELEMENT.rawValue)
        while let m = gst_bus_timed_pop_filtered(bus, 300 * 1_000_000_000, types) {
            defer { gst_message_unref(m) }
            let name = gst_object_get_name(m.pointee.src)
            let from = name.map { String(cString: $0) } ?? "?"
            g_free(name)
            switch m.pointee.type {
            case GST_MESSAGE_EOS: return (messages, warnings)
            case GST_MESSAGE_ERROR, GST_MESSAGE_WARNING:
                var e: UnsafeMutablePointer<GError>? = nil, debug: UnsafeMutablePointer<gchar>? = nil
                if m.pointee.type == GST_MESSAGE_ERROR { gst_message_parse_error(m, &e, &debug) } else { gst_message_parse_warning(m, &e, &debug) }
                let text = "\(from): \(e.map { String(cString: $0.pointee.message) } ?? "") (\(debug.map { String(cString: $0) } ?? ""))"
                g_error_free(e); g_free(debug)
                if m.pointee.type == GST_MESSAGE_ERROR { XCTFail("pipeline error: \(text)"); return (messages, warnings) }
                warnings.append(text)
            default:
                guard let st = gst_message_get_structure(m), String(cString: gst_structure_get_name(st)) == "ferfilter" else { continue }
                var pts: GstClockTime = 0
                _ = gst_structure_get_uint64(st, "timestamp", &pts)
                let faces = (0..<gstfer_structure_list_size(st, "faces")).compactMap { i in
                    gstfer_structure_list_get(st, "faces", i).flatMap { FaceMeta.face($0) }
                }
                let timecode = gst_structure_get_string(st, "timecode").map { String(cString: $0) }
                messages[from, default: []].append(Reported(pts: pts, faces: faces, timecode: timecode))
            }
        }
        XCTFail("no end of stream: \(description)")
        return (messages, warnings)
    }

    /// The receiver's frames hold the sender's faces: same count of frames, and frame by frame
    /// (in timestamp order: muxers shift timestamps) the same ids, boxes (scaled by `scale`) and
    /// emotions, numbers to the payload's three decimals.
    func assertSameFaces(_ sent: [Reported], _ received: [Reported], scale: Double = 1, probabilities: Bool = true,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(received.count, sent.count, "frames", file: file, line: line)
        let a = sent.sorted { $0.pts < $1.pts }, b = received.sorted { $0.pts < $1.pts }
        var faces = 0
        for (s, r) in zip(a, b) {
            XCTAssertEqual(r.faces.map(\.id), s.faces.map(\.id), file: file, line: line)
            for (f, g) in zip(s.faces, r.faces) {
                faces += 1
                XCTAssertEqual(g.emotion, f.emotion, file: file, line: line)
                XCTAssertEqual(g.labelID, f.labelID, file: file, line: line)
                XCTAssertEqual(g.confidence, f.confidence, accuracy: 0.0005, file: file, line: line)
                for (p, q) in zip([f.x, f.y, f.width, f.height], [g.x, g.y, g.width, g.height]) {
                    XCTAssertEqual(Double(q), Double(p) * scale, accuracy: scale == 1 ? 0 : 1, file: file, line: line)
                }
                if probabilities {
                    XCTAssertEqual(g.probabilities.count, f.probabilities.count, file: file, line: line)
                    for (p, q) in zip(f.probabilities, g.probabilities) { XCTAssertEqual(q, p, accuracy: 0.0005, file: file, line: line) }
                } else {
                    XCTAssertEqual(g.probabilities, [], file: file, line: line)
                }
            }
        }
        // the clip has four faces; the cascade finds three on every frame here (its fourth is turned away)
        XCTAssertGreaterThanOrEqual(2 * faces, 5 * a.count, "two and a half faces or more a frame on average", file: file, line: line)
    }

    /// H.264 in MPEG-TS: the receiver, given only the file, reports what the sender's ferfilter did;
    /// and the pictures decoded from the stream with the SEI are those of the same stream without.
    func testFacesTravelInAnH264TransportStreamAndDecodersIgnoreThem() throws {
        let withSEI = scratch("with.ts"), without = scratch("without.ts")
        let rawWith = scratch("with.gray"), rawWithout = scratch("without.gray")
        defer { for p in [withSEI, without, rawWith, rawWithout] { try? FileManager.default.removeItem(atPath: p) } }
        let sent = try run(try source() + " ! videoconvert ! x264enc speed-preset=ultrafast tune=zerolatency ! tee name=t "
                           + "t. ! queue ! ferseiinsert ! mpegtsmux ! filesink location=\(withSEI) "
                           + "t. ! queue ! mpegtsmux ! filesink location=\(without)").messages["sender"] ?? []
        XCTAssertEqual(sent.count, 36)
        let jsonl = scratch("received.jsonl")
        defer { try? FileManager.default.removeItem(atPath: jsonl) }
        let received = try run("filesrc location=\(withSEI) ! tsdemux ! h264parse ! ferseiextract name=receiver results=\(jsonl) ! avdec_h264 "
                               + "! videoconvert ! video/x-raw,format=GRAY8 ! filesink location=\(rawWith)")
        assertSameFaces(sent, received.messages["receiver"] ?? [])
        XCTAssertEqual(received.warnings, [])
        // the same faces as JSON Lines, and the summary of the tracks at the end
        let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 37, "36 frames and a summary")
        let objects = try lines.map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let fromFile = objects.prefix(36).map { o in
            ((o["faces"] as? [[String: Any]]) ?? []).map { "\($0["id"] ?? ""):\($0["emotion"] ?? ""):\($0["x"] ?? "")" }
        }
        let fromSender = sent.sorted { $0.pts < $1.pts }.map { $0.faces.map { "\($0.id):\($0.emotion):\($0.x)" } }
        XCTAssertEqual(fromFile, fromSender)
        XCTAssertTrue(objects.allSatisfy { $0["timecode"] == nil }, "no time code where the frames had none")
        XCTAssertTrue(sent.allSatisfy { $0.timecode == nil })
        let summary = try XCTUnwrap(objects.last?["summary"] as? [String: Any])
        XCTAssertEqual(summary["frames"] as? Int, 36)
        XCTAssertEqual(summary["labels"] as? [String], FERDataset.labels)
        XCTAssertEqual(Set(((summary["tracks"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? Int }),
                       Set(sent.flatMap { $0.faces.map(\.id) }))
        // nothing comes out of a stream that carries none
        let none = try run("filesrc location=\(without) ! tsdemux ! h264parse ! ferseiextract name=receiver ! avdec_h264 "
                           + "! videoconvert ! video/x-raw,format=GRAY8 ! filesink location=\(rawWithout)")
        XCTAssertNil(none.messages["receiver"])
        let a = try Data(contentsOf: URL(fileURLWithPath: rawWith)), b = try Data(contentsOf: URL(fileURLWithPath: rawWithout))
        XCTAssertEqual(a.count, 36 * 640 * 480)
        XCTAssertTrue(a == b, "the same pictures decoded with and without the SEI")
        let sizes = [withSEI, without].map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        print("MPEG-TS of 36 frames: \(sizes[0]) bytes with the emotion SEI, \(sizes[1]) without")
    }

    /// SMPTE time codes, as an SDI capture card or timecodestamper puts them on frames: ferfilter
    /// reports each frame's in its message and results (a track's in and out points in the
    /// summary), ferseiinsert carries it beside the faces, and the receiver reports the sender's
    /// time code for each frame and puts it back on the frame. Drop-frame at 29.97 fps, across a minute where frames 00 and 01
    /// are skipped.
    func testTimecodesTravelWithTheFaces() throws {
        let ts = scratch("timecode.ts"), sentResults = scratch("timecode-sent.jsonl"), receivedResults = scratch("timecode-received.jsonl")
        defer { for p in [ts, sentResults, receivedResults] { try? FileManager.default.removeItem(atPath: p) } }
        // 36 drop-frame time codes from 10:00:59;20, worked out here: 10:00:59;29 is followed by 10:01:00;02
        var expected: [String] = []
        var (m, s, f) = (0, 59, 20)
        for _ in 0..<36 {
            expected.append(String(format: "10:%02d:%02d;%02d", m, s, f))
            f += 1
            if f == 30 { f = 0; s += 1 }
            if s == 60 { s = 0; m += 1 }
            if s == 0 && f == 0 && m % 10 != 0 { f = 2 }
        }
        XCTAssertEqual(expected[9...10], ["10:00:59;29", "10:01:00;02"])
        let sender = "filesrc location=\(try SEIElementTests.clip.get().path) ! rawvideoparse format=gray8 width=640 height=480 "
            + "framerate=30000/1001 ! timecodestamper drop-frame=true set-internal-timecode=10:00:59:20 "
            + "! ferfilter name=sender model=\"\(shippedModel)\" skip-late=false results=\(sentResults) "
            + "! videoconvert ! x264enc speed-preset=ultrafast tune=zerolatency ! ferseiinsert ! mpegtsmux ! filesink location=\(ts)"
        let sent = (try run(sender).messages["sender"] ?? []).sorted { $0.pts < $1.pts }
        XCTAssertEqual(sent.map(\.timecode), expected)
        // ...and puts them back on the frames as GstVideoTimeCodeMeta, which the decoder passes on: a
        // ferfilter after it reports them
        let received = try run("filesrc location=\(ts) ! tsdemux ! h264parse ! ferseiextract name=receiver results=\(receivedResults) "
                               + "! avdec_h264 ! videoconvert ! ferfilter name=after model=\"\(shippedModel)\" skip-late=false ! fakesink")
        let got = (received.messages["receiver"] ?? []).sorted { $0.pts < $1.pts }
        assertSameFaces(sent, got)
        XCTAssertEqual(got.map(\.timecode), expected, "the sender's time codes, frame for frame")
        XCTAssertEqual((received.messages["after"] ?? []).sorted { $0.pts < $1.pts }.map(\.timecode), expected, "on the decoded frames")
        let schemas = SchemaCheck(folder: packageRoot.appendingPathComponent("docs/schemas"))
        for path in [sentResults, receivedResults] {
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            // ferfilter's and ferseiextract's lines, time codes and all, hold to the published schemas
            for (i, line) in lines.enumerated() {
                let name = i < lines.count - 1 ? "results-frame.schema.json" : "results-summary.schema.json"
                XCTAssertEqual(try schemas.problems(json: String(line), schema: name), [], "\(path) line \(i + 1) against \(name)")
            }
            let objects = try lines.map {
                try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            XCTAssertEqual(objects.dropLast().map { $0["timecode"] as? String }, expected, path)
            // each track's in and out points: the time codes of the first and last frames it was in
            let tracks = try XCTUnwrap((objects.last?["summary"] as? [String: Any])?["tracks"] as? [[String: Any]], path)
            XCTAssertFalse(tracks.isEmpty)
            for t in tracks {
                let id = try XCTUnwrap(t["id"] as? Int)
                let frames = sent.indices.filter { sent[$0].faces.contains { $0.id == id } }
                XCTAssertEqual(t["first_timecode"] as? String, expected[frames.first!], "track \(id) in \(path)")
                XCTAssertEqual(t["last_timecode"] as? String, expected[frames.last!], "track \(id) in \(path)")
            }
        }
    }

    /// Length-prefixed NAL units on the receiving side (MP4's avc, Matroska's hvc1), H.264 and
    /// H.265, GStreamer's own parsers and libav's decoders in between, and the probabilities left
    /// out. h264parse reads the SEI as well-formed: it attaches it as a
    /// GstVideoSEIUserDataUnregisteredMeta (h265parse in GStreamer 1.22 attaches none).
    func testFacesTravelInMP4AndMatroskaWithH264AndH265() throws {
        for (encoder, parse, mux, demux, decoder, probabilities) in
            [("x264enc speed-preset=ultrafast", "h264parse", "mp4mux", "qtdemux", "avdec_h264", true),
             ("x265enc speed-preset=ultrafast", "h265parse", "matroskamux", "matroskademux", "avdec_h265", false)] {
            let file = scratch("clip.\(mux)")
            defer { try? FileManager.default.removeItem(atPath: file) }
            let sent = try run(try source() + " ! videoconvert ! \(encoder) ! ferseiinsert probabilities=\(probabilities) ! \(parse) "
                               + "! \(mux) ! filesink location=\(file)").messages["sender"] ?? []
            let received = try run("filesrc location=\(file) ! \(demux) ! \(parse) ! ferseiextract name=receiver ! \(decoder) ! fakesink")
            assertSameFaces(sent, received.messages["receiver"] ?? [], probabilities: probabilities)
            XCTAssertEqual(received.warnings, [])
            if parse == "h264parse" {
                XCTAssertEqual(try parsedSEICount(file: file, demux: demux, parse: parse), sent.count, "h264parse reads one SEI per frame")
            }
        }
    }

    /// How many buffers out of GStreamer's parser carry a GstVideoSEIUserDataUnregisteredMeta with
    /// GstFER's UUID.
    func parsedSEICount(file: String, demux: String, parse: String) throws -> Int {
        final class Counter: @unchecked Sendable { var n = 0 }
        let counter = Counter()
        var err: UnsafeMutablePointer<GError>? = nil
        let pipeline = try XCTUnwrap(gst_parse_launch("filesrc location=\(file) ! \(demux) ! \(parse) ! fakesink name=sink", &err))
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let sink = gst_bin_get_by_name(UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self), "sink")!
        let pad = gst_element_get_static_pad(sink, "sink")!
        let user = Unmanaged.passRetained(counter)
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, { _, info, data in
            let buffer = info!.pointee.data.assumingMemoryBound(to: GstBuffer.self)
            var state: gpointer? = nil
            while let m = gst_buffer_iterate_meta_filtered(buffer, &state, gst_video_sei_user_data_unregistered_meta_api_get_type()) {
                let sei = UnsafeMutableRawPointer(m).assumingMemoryBound(to: GstVideoSEIUserDataUnregisteredMeta.self)
                let uuid = withUnsafeBytes(of: sei.pointee.uuid) { Array($0) }
                if uuid == EmotionPayload.uuid { Unmanaged<Counter>.fromOpaque(data!).takeUnretainedValue().n += 1 }
            }
            return GST_PAD_PROBE_OK
        }, user.toOpaque(), { Unmanaged<Counter>.fromOpaque($0!).release() })
        gst_object_unref(UnsafeMutableRawPointer(pad)); gst_object_unref(UnsafeMutableRawPointer(sink))
        gst_element_set_state(pipeline, GST_STATE_PLAYING)
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        let end = gst_bus_timed_pop_filtered(bus, 120 * 1_000_000_000, GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue))
        XCTAssertEqual(end?.pointee.type, GST_MESSAGE_EOS)
        if let end { gst_message_unref(end) }
        return counter.n
    }

    /// A scaler between ferfilter and the encoder: the boxes that arrive are those of the scaled
    /// picture (the ROI metas are scaled with it; the emotions come from GstFerFacesMeta, as
    /// GStreamer 1.22 drops the ROI metas' params on the way).
    func testBoxesFollowAScalerBeforeTheEncoder() throws {
        let file = scratch("scaled.ts")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let sent = try run(try source() + " ! videoconvert ! videoscale ! video/x-raw,width=320,height=240 "
                           + "! x264enc speed-preset=ultrafast ! ferseiinsert ! mpegtsmux ! filesink location=\(file)").messages["sender"] ?? []
        let received = try run("filesrc location=\(file) ! tsdemux ! h264parse ! ferseiextract name=receiver ! fakesink")
        assertSameFaces(sent, received.messages["receiver"] ?? [], scale: 0.5)
    }

    /// On the receiving side the decoded pictures carry the faces as ROI metas, as ferfilter's
    /// output does, and a second ferseiinsert does not write them twice.
    func testDecodedFramesCarryTheFacesAndInsertionHappensOnce() throws {
        let file = scratch("twice.h264")
        defer { try? FileManager.default.removeItem(atPath: file) }
        try run(try source() + " ! videoconvert ! x264enc speed-preset=ultrafast ! video/x-h264,stream-format=byte-stream "
                + "! ferseiinsert ! ferseiinsert ! filesink location=\(file)")
        let h = gst_harness_new_parse("h264parse ! ferseiextract message-mode=none ! avdec_h264")!
        defer { gst_harness_teardown(h) }
        gst_harness_set_src_caps_str(h, "video/x-h264,stream-format=byte-stream")
        let stream = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        XCTAssertEqual(stream.withUnsafeBytes { raw in
            (try? AccessUnit.userData(uuid: EmotionPayload.uuid, in: raw, codec: .h264, framing: .byteStream).count) ?? -1
        }, 36, "one emotion SEI per frame in the elementary stream")
        // the whole elementary stream in one buffer: h264parse splits it into access units
        _ = gst_harness_push(h, makeBuffer(stream))
        _ = gst_harness_push_event(h, gst_event_new_eos())
        var frames = 0, withFaces = 0
        while let out = gst_harness_try_pull(h) {
            frames += 1
            let r = rois(of: out)
            if r.count >= 3 && r.allSatisfy({ $0.type == "face" && $0.label != nil && $0.probabilities.count == 7 }) { withFaces += 1 }
            gst_buffer_unref(out)
        }
        XCTAssertEqual(frames, 36)
        XCTAssertGreaterThan(withFaces, 30)
    }

    /// Bad input: emotion SEI that is not JSON, and buffers that are not access units, give one
    /// warning and pass on untouched; codec_data that cannot be read fails negotiation.
    func testBadStreamsWarnAndFlowOn() throws {
        let h = gst_harness_new("ferseiextract")!
        defer { gst_harness_teardown(h) }
        let bus = gst_bus_new()!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        gst_element_set_bus(h.pointee.element, bus)
        gst_harness_set_src_caps_str(h, "video/x-h264,stream-format=byte-stream,alignment=au")
        let junk = Array("{\"v\":1,\"faces\":[{\"id\":".utf8)
        let good = [UInt8](EmotionPayload.encode([EmotionFace(id: 1, x: 2, y: 3, width: 40, height: 40, emotion: "sad", labelID: 4,
                                                              confidence: 0.5, probabilities: [])]))
        func au(_ data: [UInt8]) -> [UInt8] {
            ([0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21] as [UInt8]).withUnsafeBytes {
                try! AccessUnit.inserting(uuid: EmotionPayload.uuid, data: data, into: $0, codec: .h264, framing: .byteStream)!
            }
        }
        for input in [au(junk), [0x65, 0x88, 0x84], au(junk), au(good)] {
            XCTAssertEqual(gst_harness_push(h, makeBuffer(input)), GST_FLOW_OK)
            let out = try XCTUnwrap(gst_harness_pull(h))
            XCTAssertEqual(bytes(of: out), input, "passed on unchanged")
            XCTAssertEqual(rois(of: out).map(\.label), input == au(good) ? ["sad"] : [])
            gst_buffer_unref(out)
        }
        var warnings: [String] = []
        while let m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING) {
            var e: UnsafeMutablePointer<GError>? = nil, d: UnsafeMutablePointer<gchar>? = nil
            gst_message_parse_warning(m, &e, &d)
            warnings.append(String(cString: e!.pointee.message) + " | " + String(cString: d!))
            g_error_free(e); g_free(d); gst_message_unref(m)
        }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings.first?.contains("malformed emotion SEI payload: not JSON") ?? false, "\(warnings)")

        // a results file that cannot be written fails the state change, naming it
        let pipeline = gst_parse_launch("videotestsrc num-buffers=2 ! x264enc ! ferseiextract results=/nonexistent/dir/sei.jsonl ! fakesink", nil)!
        defer { gst_element_set_state(pipeline, GST_STATE_NULL); gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        XCTAssertEqual(gst_element_set_state(pipeline, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE)
        let pbus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(pbus)) }
        let text = try XCTUnwrap(nextErrorText(pbus))
        XCTAssertTrue(text.contains("/nonexistent/dir/sei.jsonl") && text.contains("cannot write"), text)

        // frames that carry no faces from ferfilter get no SEI (nothing known is not "no faces")
        let plain = scratch("plain.h264")
        defer { try? FileManager.default.removeItem(atPath: plain) }
        try run("videotestsrc num-buffers=10 ! x264enc ! video/x-h264,stream-format=byte-stream ! ferseiinsert ! filesink location=\(plain)")
        XCTAssertEqual(try readFile(plain).withUnsafeBytes { try AccessUnit.userData(uuid: EmotionPayload.uuid, in: $0, codec: .h264, framing: .byteStream) }, [])

        let bad = gst_harness_new("ferseiinsert")!
        defer { gst_harness_teardown(bad) }
        gst_harness_set_src_caps_str(bad, "video/x-h264,stream-format=avc,alignment=au,codec_data=(buffer)0102")
        XCTAssertEqual(gst_harness_push(bad, makeBuffer([0, 0, 0, 2, 0x65, 0x88])), GST_FLOW_NOT_NEGOTIATED)
    }

    /// The sender's time code goes back on a frame only when it is a valid one at the stream's
    /// frame rate and the frame has none of its own; anything else is reported as sent, and
    /// nothing else happens to the frame.
    func testTimecodesPutBackOnlyWhenValid() throws {
        func restored(_ timecode: String, caps: String = "framerate=30000/1001", own: Bool = false) throws -> String? {
            let h = gst_harness_new("ferseiextract")!
            defer { gst_harness_teardown(h) }
            gst_harness_set_src_caps_str(h, "video/x-h264,stream-format=byte-stream,alignment=au," + caps)
            let payload = EmotionPayload.encode([EmotionFace(id: 1, x: 2, y: 3, width: 40, height: 40, emotion: "sad", labelID: 4,
                                                             confidence: 0.5, probabilities: [])], timecode: timecode)
            let au = ([0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21] as [UInt8]).withUnsafeBytes {
                try! AccessUnit.inserting(uuid: EmotionPayload.uuid, data: payload, into: $0, codec: .h264, framing: .byteStream)!
            }
            let buffer = makeBuffer(au)
            if own { _ = gst_buffer_add_video_time_code_meta_full(buffer, 25, 1, nil, GST_VIDEO_TIME_CODE_FLAGS_NONE, 1, 2, 3, 4, 0) }
            XCTAssertEqual(gst_harness_push(h, buffer), GST_FLOW_OK)
            let out = try XCTUnwrap(gst_harness_pull(h))
            defer { gst_buffer_unref(out) }
            XCTAssertEqual(bytes(of: out), au, "passed on unchanged")
            XCTAssertEqual(FaceMeta.timecode(from: out), timecode, "reported as the sender wrote it")
            return FrameTimes.timecode(of: out)
        }
        XCTAssertEqual(try restored("10:00:59;29"), "10:00:59;29")
        XCTAssertEqual(try restored("10:01:00;02"), "10:01:00;02")
        XCTAssertEqual(try restored("23:59:59:24", caps: "framerate=25/1"), "23:59:59:24")
        XCTAssertEqual(try restored("10:00:00:00", own: true), "01:02:03:04", "the frame's own time code stays")
        for bad in ["10:01:00;00", "10:00:00:30", "24:00:00:00", "10:60:00:00", "10:00:00;05", "10:00:00.05", "1:00:00:00", "99:99:99:99"] {
            XCTAssertNil(try restored(bad, caps: bad == "10:00:00;05" ? "framerate=25/1" : "framerate=30000/1001"), bad)
        }
        XCTAssertNil(try restored("10:00:00:00", caps: "parsed=true"), "no frame rate, no time code")
    }

    func readFile(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// feroverlay after ferfilter draw=false draws exactly what ferfilter draws itself, in I420
    /// and RGBA, with and without the probability bars.
    func testOverlayDrawsWhatFerfilterDraws() throws {
        for (format, bars) in [("I420", false), ("RGBA", true)] {
            let own = scratch("own.raw"), overlaid = scratch("overlaid.raw"), clean = scratch("clean.raw")
            defer { for p in [own, overlaid, clean] { try? FileManager.default.removeItem(atPath: p) } }
            let src = try source().replacingOccurrences(of: "! ferfilter", with: "! videoconvert ! video/x-raw,format=\(format) ! ferfilter")
            try run(src + " draw=true draw-probabilities=\(bars) ! filesink location=\(own)")
            try run(src + " draw=false ! feroverlay draw-probabilities=\(bars) ! filesink location=\(overlaid)")
            try run(src + " draw=false ! filesink location=\(clean)")
            let a = try readFile(own), b = try readFile(overlaid), c = try readFile(clean)
            XCTAssertGreaterThan(a.count, 0)
            XCTAssertTrue(a == b, "\(format): feroverlay's frames are ferfilter's own drawing")
            XCTAssertGreaterThan(zip(b, c).filter { $0 != $1 }.count, 36 * 3 * 500, "\(format): something drawn on every frame")
        }
    }

    /// The receiving end of a stream: ferseiextract, a decoder, a scaler to twice the size, then
    /// feroverlay: every pixel it changes lies on a face's box (doubled) or its label above it,
    /// and every box is drawn.
    func testOverlayDrawsReceivedFacesAfterScaling() throws {
        let file = scratch("overlay.ts"), drawn = scratch("drawn.gray"), plain = scratch("plain.gray")
        defer { for p in [file, drawn, plain] { try? FileManager.default.removeItem(atPath: p) } }
        let sent = try run(try source() + " draw=false ! videoconvert ! x264enc speed-preset=ultrafast ! ferseiinsert ! mpegtsmux "
                           + "! filesink location=\(file)").messages["sender"] ?? []
        let receiver = "filesrc location=\(file) ! tsdemux ! h264parse ! ferseiextract ! avdec_h264 ! videoconvert ! videoscale "
            + "! video/x-raw,format=I420,width=1280,height=960 "
        try run(receiver + "! feroverlay ! videoconvert ! video/x-raw,format=GRAY8 ! filesink location=\(drawn)")
        try run(receiver + "! videoconvert ! video/x-raw,format=GRAY8 ! filesink location=\(plain)")
        let a = try readFile(drawn), b = try readFile(plain), w = 1280, h = 960
        XCTAssertEqual(a.count, 36 * w * h)
        XCTAssertEqual(b.count, a.count)
        for (k, frame) in sent.sorted(by: { $0.pts < $1.pts }).enumerated() where a.count == 36 * w * h && b.count == a.count {
            let boxes = frame.faces.map { (x: 2 * $0.x, y: 2 * $0.y, w: 2 * $0.width, h: 2 * $0.height) }
            var stray = 0
            var edges = [Int](repeating: 0, count: boxes.count)
            for y in 0..<h {
                for x in 0..<w where a[k * w * h + y * w + x] != b[k * w * h + y * w + x] {
                    // on a box's edge (2 px either side), or in the label band above its top
                    var mine = false
                    for (i, r) in boxes.enumerated() {
                        let inX = x >= r.x - 3 && x <= r.x + r.w + 3
                        let onEdge = inX && y >= r.y - 3 && y <= r.y + r.h + 3
                            && (abs(x - r.x) <= 5 || abs(x - (r.x + r.w)) <= 5 || abs(y - r.y) <= 5 || abs(y - (r.y + r.h)) <= 5)
                        let label = x >= r.x - 3 && x <= r.x + r.w + 200 && y >= r.y - 40 && y <= r.y + 40
                        if onEdge { edges[i] += 1 }
                        if onEdge || label { mine = true }
                    }
                    if !mine { stray += 1 }
                }
            }
            XCTAssertEqual(stray, 0, "frame \(k): pixels changed away from the faces")
            XCTAssertTrue(edges.allSatisfy { $0 > 1000 }, "frame \(k): each face's box drawn: \(edges)")
        }
    }

    /// Faces from metas can come from any element: boxes past the frame's edges, a label_id of -1,
    /// a NaN confidence, probabilities out of range, on frames of 1x1 to 17x13 in every format.
    /// feroverlay draws what fits and never fails.
    func testOverlaySurvivesHostileMetasOnOddFrames() throws {
        let weird = [EmotionFace(id: 1, x: 4_000_000_000, y: 5, width: 3_000_000_000, height: 9, emotion: "", labelID: -1,
                                 confidence: .nan, probabilities: [.infinity, -3, .nan, 2]),
                     EmotionFace(id: 2, x: 0, y: 0, width: 40, height: 40, emotion: "happy\u{1F600}\n", labelID: 1_000_003,
                                 confidence: -7, probabilities: Array(repeating: 0.5, count: 64))]
        for format in ["I420", "NV12", "RGBA", "v210", "GRAY8", "YUY2", "P010_10LE"] {
            for (w, h) in [(1, 1), (2, 2), (17, 13)] {
                let h_ = gst_harness_new("feroverlay")!
                defer { gst_harness_teardown(h_) }
                let frame = convert([UInt8](repeating: 128, count: w * h), width: w, height: h, to: format)
                gst_harness_set_src_caps_str(h_, frame.caps)
                setProperty(h_.pointee.element, "draw-probabilities", true)
                XCTAssertEqual(gst_base_transform_is_qos_enabled(UnsafeMutableRawPointer(h_.pointee.element!).assumingMemoryBound(to: GstBaseTransform.self)),
                               0, "every frame passes: no QoS drops")
                let buffer = makeBuffer(frame.bytes)
                FaceMeta.attach(weird, to: buffer)
                XCTAssertEqual(gst_harness_push(h_, buffer), GST_FLOW_OK, "\(format) \(w)x\(h)")
                if let out = gst_harness_pull(h_) { gst_buffer_unref(out) } else { XCTFail("\(format) \(w)x\(h): no frame out") }
            }
        }
    }

    /// Properties changed from another thread while access units flow (message-mode on
    /// ferseiextract, probabilities on ferseiinsert) never break the stream, and the last setting
    /// takes effect. Under `make tsan` this is where the settings lock would show.
    func testPropertyChangesWhileAccessUnitsFlow() throws {
        let face = EmotionFace(id: 7, x: 10, y: 20, width: 64, height: 64, emotion: "happy", labelID: 3, confidence: 0.9,
                               probabilities: [0.01, 0, 0.02, 0.9, 0.03, 0.02, 0.02])
        let slice: [UInt8] = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]
        let withSEI = slice.withUnsafeBytes {
            try! AccessUnit.inserting(uuid: EmotionPayload.uuid, data: EmotionPayload.encode([face]), into: $0, codec: .h264, framing: .byteStream)!
        }
        final class Flag: @unchecked Sendable {
            let lock = NSLock(); var stop = false; var changes = 0
            let element: UnsafeMutablePointer<GObject>
            init(_ e: UnsafeMutableRawPointer) { element = e.assumingMemoryBound(to: GObject.self) }
            var count: Int { lock.lock(); defer { lock.unlock() }; return changes }
        }
        for (name, property, values, input) in [("ferseiextract", "message-mode", ["every-frame", "on-change", "none"], withSEI),
                                                 ("ferseiinsert", "probabilities", ["true", "false"], slice)] {
            let h = gst_harness_new(name)!
            defer { gst_harness_teardown(h) }
            let bus = gst_bus_new()!
            defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
            gst_element_set_bus(h.pointee.element, bus)
            gst_harness_set_src_caps_str(h, "video/x-h264,stream-format=byte-stream,alignment=au")
            let element = UnsafeMutableRawPointer(h.pointee.element!)
            let flag = Flag(element), done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                var i = 0
                while true {
                    flag.lock.lock(); let stop = flag.stop; flag.lock.unlock()
                    if stop { break }
                    gst_util_set_object_arg(flag.element, property, values[i % values.count])
                    i += 1
                    flag.lock.lock(); flag.changes = i; flag.lock.unlock()
                }
                done.signal()
            }
            var pushed = 0
            while pushed < 300 || (flag.count < 20 && pushed < 100_000) {
                pushed += 1
                let b = makeBuffer(input)
                if name == "ferseiinsert" { FaceMeta.attach([face], to: b) }
                XCTAssertEqual(gst_harness_push(h, b), GST_FLOW_OK)
                if let out = gst_harness_pull(h) { gst_buffer_unref(out) }
            }
            flag.lock.lock(); flag.stop = true; flag.lock.unlock()
            done.wait()
            XCTAssertGreaterThanOrEqual(flag.changes, 20, "\(name): \(property) changed while \(pushed) buffers flowed")
            while let m = gst_bus_pop(bus) { gst_message_unref(m) }
            // the last setting applies
            gst_util_set_object_arg(element.assumingMemoryBound(to: GObject.self), property, values[0] == "true" ? "false" : "every-frame")
            let b = makeBuffer(input)
            if name == "ferseiinsert" { FaceMeta.attach([face], to: b) }
            XCTAssertEqual(gst_harness_push(h, b), GST_FLOW_OK)
            let out = try XCTUnwrap(gst_harness_pull(h))
            defer { gst_buffer_unref(out) }
            if name == "ferseiextract" {
                XCTAssertEqual(gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT).map { m -> Bool in gst_message_unref(m); return true }, true,
                               "message-mode=every-frame posts a message for the frame")
            } else {
                let data = try bytes(of: out).withUnsafeBytes { try AccessUnit.userData(uuid: EmotionPayload.uuid, in: $0, codec: .h264, framing: .byteStream) }
                XCTAssertEqual(data.count, 1)
                XCTAssertFalse(String(decoding: data.first ?? [], as: UTF8.self).contains("probabilities"), "probabilities=false applies")
            }
        }
    }
}

