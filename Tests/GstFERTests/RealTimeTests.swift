import FaceAnalysis
import CGStreamer
import Foundation
import GstFER
import XCTest

/// How late each buffer reached the sink: the pipeline's running time on arrival minus the
/// buffer's running time (a live source stamps buffers with the running time of capture).
final class LatenessProbe {
    let lock = NSLock()
    var lateness: [Double] = []   // seconds, in arrival order

    static let callback: GstPadProbeCallback = { pad, info, user in
        let probe = Unmanaged<LatenessProbe>.fromOpaque(user!).takeUnretainedValue()
        guard let pad, let info, let data = info.pointee.data else { return GST_PAD_PROBE_OK }
        let buffer = data.assumingMemoryBound(to: GstBuffer.self)
        if let sink = gst_pad_get_parent_element(pad) {
            let now = gst_element_get_current_running_time(sink)
            let pts = buffer.pointee.pts
            if now != GstClockTime.max && pts != GstClockTime.max {
                probe.lock.lock(); probe.lateness.append((Double(now) - Double(pts)) / 1e9); probe.lock.unlock()
            }
            gst_object_unref(UnsafeMutableRawPointer(sink))
        }
        return GST_PAD_PROBE_OK
    }
}

final class RealTimeTests: XCTestCase {
    override func setUp() { XCTAssertTrue(Gst.ready) }

    /// Runs `frames` frames of a live 1080p source through ferfilter with detection made far too
    /// slow for 30 fps (scale-factor 1.02), into a synchronised sink. Returns each buffer's
    /// lateness at the sink, the wall time and the element's `stats` at the end.
    func runLive(frames: Int, skipLate: Bool) throws -> (lateness: [Double], seconds: Double, stats: [String: Any]) {
        let desc = "videotestsrc is-live=true num-buffers=\(frames) pattern=smpte ! video/x-raw,format=I420,width=1920,height=1080,framerate=30/1 "
            + "! ferfilter name=fer model=\"\(shippedModel)\" detector=haar scale-factor=1.02 min-face-size=24 skip-late=\(skipLate) "
            + "! fakesink name=sink sync=true qos=true"
        var err: UnsafeMutablePointer<GError>? = nil
        let pipeline = try XCTUnwrap(gst_parse_launch(desc, &err), err.map { String(cString: $0.pointee.message) } ?? desc)
        defer { gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
        let sink = try XCTUnwrap(gst_bin_get_by_name(bin, "sink"))
        let pad = try XCTUnwrap(gst_element_get_static_pad(sink, "sink"))
        let probe = LatenessProbe()
        let user = Unmanaged.passRetained(probe)
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, LatenessProbe.callback, user.toOpaque(), { p in
            Unmanaged<LatenessProbe>.fromOpaque(p!).release()
        })
        gst_object_unref(UnsafeMutableRawPointer(pad)); gst_object_unref(UnsafeMutableRawPointer(sink))

        let start = Date()
        XCTAssertNotEqual(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE)
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue)
        // generous: under ThreadSanitizer (make tsan) the slow run's frames take over ten seconds each
        let msg = gst_bus_timed_pop_filtered(bus, 600 * 1_000_000_000, types)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertNotNil(msg, "the stream should end")
        if let msg {
            XCTAssertEqual(msg.pointee.type, GST_MESSAGE_EOS, "no error")
            gst_message_unref(msg)
        }
        let fer = try XCTUnwrap(gst_bin_get_by_name(bin, "fer"))
        defer { gst_object_unref(UnsafeMutableRawPointer(fer)) }
        let stats = try ferfilterStats(fer)
        gst_element_set_state(pipeline, GST_STATE_NULL)
        probe.lock.lock(); defer { probe.lock.unlock() }
        return (probe.lateness, seconds, stats)
    }

    /// A live source whose frames take far longer to analyse than they last: with skip-late (the
    /// default) buffers reach the sink no later at the end than at the start, and the run lasts
    /// about as long as the clip; without it the backlog grows with every frame.
    func testLiveSourceNeverBuildsABacklog() throws {
        let slow = try runLive(frames: 12, skipLate: false)
        XCTAssertEqual(slow.lateness.count, 12)
        let perFrame = slow.seconds / 12
        let growth = (slow.lateness.last ?? 0) - (slow.lateness.dropFirst(2).first ?? 0)
        print(String(format: "skip-late=false: %.0f ms a frame, lateness %.2f s -> %.2f s",
                     perFrame * 1000, slow.lateness.dropFirst(2).first ?? 0, slow.lateness.last ?? 0))
        XCTAssertGreaterThan(perFrame, 0.1, "the analysis must be slower than 30 fps for this test to mean anything")
        XCTAssertGreaterThan(growth, 0.5, "without skip-late the backlog grows")
        XCTAssertEqual(slow.stats["frames"] as? Int, 12)
        XCTAssertEqual(slow.stats["analysed"] as? Int, 12, "every frame analysed, however late: \(slow.stats)")
        XCTAssertEqual(slow.stats["live"] as? Bool, true)

        let frames = 90   // three seconds of video
        let live = try runLive(frames: frames, skipLate: true)
        XCTAssertEqual(live.lateness.count, frames, "every frame reaches the sink")
        let head = live.lateness.prefix(30).max() ?? 0, tail = live.lateness.suffix(30).max() ?? 0
        print(String(format: "skip-late=true: %d frames in %.2f s, worst lateness first second %.2f s, last second %.2f s",
                     frames, live.seconds, head, tail))
        XCTAssertLessThan(tail, max(head, perFrame) + 0.15, "lateness must not grow over the stream")
        XCTAssertLessThan(tail, 0.5, "frames reach the sink within a few frame times")
        XCTAssertLessThan(live.seconds, Double(frames) / 30 + 2 * perFrame + 1.0, "the run keeps pace with the source")
        // the element's own account: every frame passed, most analyses left out while one ran, and
        // the latency it answers covers an analysis
        print("skip-late=true stats: \(live.stats)")
        XCTAssertEqual(live.stats["frames"] as? Int, frames)
        let analysed = live.stats["analysed"] as? Int ?? 0, busy = live.stats["skipped-busy"] as? Int ?? 0
        XCTAssertEqual(["analysed", "between", "skipped-late", "skipped-busy", "skipped-rate"].compactMap { live.stats[$0] as? Int }.reduce(0, +), frames)
        XCTAssertGreaterThan(analysed, 0)
        XCTAssertGreaterThan(busy, analysed, "most frames pass while an analysis runs beside the stream")
        // an analysis outlasts a frame: the mean of those that finished, or, where none finished
        // before the stream ended (a slow host, a sanitizer: ten seconds each), the one still running
        let finished = live.stats["analyses"] as? Int ?? -1
        XCTAssertGreaterThanOrEqual(finished, 0, "stats count finished analyses")
        if finished > 0 {
            XCTAssertGreaterThan(live.stats["analysis-ms-mean"] as? Double ?? 0, 1000.0 / 30, "an analysis outlasts a frame")
        } else {
            // one started and was still running when the stream ended, seconds of frames later
            XCTAssertGreaterThan(analysed, 0, "an analysis started")
            XCTAssertGreaterThan(live.seconds, 10.0 / 30, "the stream outlasted ten frames while it ran")
        }
        XCTAssertLessThan(live.stats["frame-ms-mean"] as? Double ?? 1e9, 1000.0 / 30, "frames themselves pass quickly")
    }
}
