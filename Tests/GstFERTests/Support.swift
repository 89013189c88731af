import FaceAnalysis
import CGStreamer
import CGstCheck
import FaceDetect
import FERNet
import FERTraining
import Foundation
import GstFER
import XCTest

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let shippedModel = packageRoot.appendingPathComponent("Models/fernet.json").path

/// GStreamer initialised once, ferfilter registered statically from this test binary.
enum Gst {
    static let ready: Bool = {
        // only the system plugins: an installed copy of libgstfer.so must not load beside this binary's ferfilter
        isolateRegistry()
        // the face detector file as the plugin's install puts it beside libgstfer.so
        setenv("GSTFER_DETECTOR_MODEL", packageRoot.appendingPathComponent("Models/face_detection_yunet_2023mar.onnx").path, 1)
        gst_init(nil, nil)
        return GstFER.registerStatically()
    }()
}

/// Debian's directory of system GStreamer plugins.
func systemPluginDirectory() -> String? {
    ["/usr/lib/x86_64-linux-gnu/gstreamer-1.0", "/usr/lib/aarch64-linux-gnu/gstreamer-1.0", "/usr/lib/gstreamer-1.0"]
        .first { FileManager.default.fileExists(atPath: $0) }
}

/// Points GStreamer at the system plugins and a private registry (no user plugin directory).
func isolateRegistry() {
    if let sys = systemPluginDirectory() { setenv("GST_PLUGIN_SYSTEM_PATH_1_0", sys, 1) }
    setenv("GST_REGISTRY_1_0", FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-test-registry-\(getpid()).bin").path, 1)
    unsetenv("GST_PLUGIN_PATH_1_0"); unsetenv("GST_PLUGIN_PATH")
}

func fer2013() throws -> FERDataset {
    guard let d = try FERDataset.sharedPublicTest(beside: packageRoot) else {
        throw XCTSkip("FER2013 not found beside the checkout (../shared/data/fer2013/fer2013.csv.gz) nor in $FER2013_CSV: these tests build frames from its faces")
    }
    return d
}

func gobject(_ e: UnsafeMutablePointer<GstElement>) -> UnsafeMutablePointer<GObject> {
    UnsafeMutableRawPointer(e).assumingMemoryBound(to: GObject.self)
}

func setProperty(_ e: UnsafeMutablePointer<GstElement>, _ name: String, _ v: Any) {
    let gv: UnsafeMutablePointer<GValue>
    switch v {
    case let s as String: gv = gstfer_value_new(gstfer_type_string()); g_value_set_string(gv, s)
    case let b as Bool: gv = gstfer_value_new(gstfer_type_boolean()); g_value_set_boolean(gv, b ? 1 : 0)
    case let i as Int: gv = gstfer_value_new(gstfer_type_int()); g_value_set_int(gv, Int32(i))
    case let d as Double: gv = gstfer_value_new(gstfer_type_double()); g_value_set_double(gv, d)
    default: fatalError("unsupported property value \(v)")
    }
    defer { gstfer_value_free(gv) }
    if name == "message-mode" || name == "detector" {
        // enums go through their nick
        gst_util_set_object_arg(gobject(e), name, v as! String)
        return
    }
    g_object_set_property(gobject(e), name, gv)
}

/// A raw frame in memory: bytes plus caps string.
struct RawFrame {
    var bytes: [UInt8]
    var caps: String
}

/// Makes a GstBuffer holding a copy of `bytes`, with a PTS.
func makeBuffer(_ bytes: [UInt8], pts: UInt64 = 0) -> UnsafeMutablePointer<GstBuffer> {
    let b = gst_buffer_new_allocate(nil, gsize(bytes.count), nil)!
    _ = bytes.withUnsafeBytes { gst_buffer_fill(b, 0, $0.baseAddress, gsize(bytes.count)) }
    b.pointee.pts = GstClockTime(pts)
    b.pointee.duration = 33_333_333
    return b
}

func bytes(of buffer: UnsafeMutablePointer<GstBuffer>) -> [UInt8] {
    let n = Int(gst_buffer_get_size(buffer))
    var out = [UInt8](repeating: 0, count: n)
    _ = out.withUnsafeMutableBytes { gst_buffer_extract(buffer, 0, $0.baseAddress, gsize(n)) }
    return out
}

/// A packed grey image laid out as GStreamer's GRAY8 (rows padded to a multiple of 4 bytes).
func gray8Buffer(_ grey: [UInt8], width: Int, height: Int) -> [UInt8] {
    let stride = (width + 3) & ~3
    if stride == width { return grey }
    var out = [UInt8](repeating: 0, count: stride * height)
    for y in 0..<height { for x in 0..<width { out[y * stride + x] = grey[y * width + x] } }
    return out
}

/// A raw frame of any format back to packed grey (videoconvert to GRAY8, rows unpadded).
func toGrey(_ frame: RawFrame, width: Int, height: Int) -> [UInt8] {
    precondition(Gst.ready)
    let h = gst_harness_new_parse("videoconvert ! capsfilter caps=\"video/x-raw,format=GRAY8,width=\(width),height=\(height)\"")!
    defer { gst_harness_teardown(h) }
    gst_harness_set_src_caps_str(h, frame.caps)
    _ = gst_harness_push(h, makeBuffer(frame.bytes))
    let out = gst_harness_pull(h)!
    defer { gst_buffer_unref(out) }
    let padded = bytes(of: out), stride = (width + 3) & ~3
    return (0..<height).flatMap { y in padded[(y * stride)..<(y * stride + width)] }
}

/// Converts a GRAY8 frame to another raw format with videoconvert (through a harness).
func convert(_ grey: [UInt8], width: Int, height: Int, to format: String) -> RawFrame {
    precondition(Gst.ready)
    let caps = "video/x-raw,format=\(format),width=\(width),height=\(height),framerate=30/1"
    let padded = gray8Buffer(grey, width: width, height: height)
    if format == "GRAY8" { return RawFrame(bytes: padded, caps: caps) }
    let h = gst_harness_new_parse("videoconvert ! capsfilter caps=\"\(caps)\"")!
    defer { gst_harness_teardown(h) }
    gst_harness_set_src_caps_str(h, "video/x-raw,format=GRAY8,width=\(width),height=\(height),framerate=30/1")
    _ = gst_harness_push(h, makeBuffer(padded))
    let out = gst_harness_pull(h)!
    defer { gst_buffer_unref(out) }
    return RawFrame(bytes: bytes(of: out), caps: caps)
}

/// One face as the element reported it in a ROI meta.
struct ROI {
    var type: String, id: Int32, x: Int, y: Int, w: Int, h: Int
    var label: String?, labelID: Int32, confidence: Double, probabilities: [Double]
    var landmarks: [Double] = []
}

func rois(of buffer: UnsafeMutablePointer<GstBuffer>) -> [ROI] {
    var out: [ROI] = []
    var state: gpointer? = nil
    while let m = gstfer_buffer_iterate_roi(buffer, &state) {
        var r = ROI(type: String(cString: g_quark_to_string(m.pointee.roi_type)), id: m.pointee.id,
                    x: Int(m.pointee.x), y: Int(m.pointee.y), w: Int(m.pointee.w), h: Int(m.pointee.h),
                    label: nil, labelID: -1, confidence: -1, probabilities: [])
        if let s = gst_video_region_of_interest_meta_get_param(m, "emotion") {
            r.label = gst_structure_get_string(s, "label").map { String(cString: $0) }
            var id: gint = -1; _ = gst_structure_get_int(s, "label_id", &id); r.labelID = id
            var c: gdouble = -1; _ = gst_structure_get_double(s, "confidence", &c); r.confidence = c
            var probs = [gdouble](repeating: 0, count: 16); var n: guint = 0
            if gstfer_structure_get_double_array(s, "probabilities", &probs, 16, &n) != 0 { r.probabilities = Array(probs.prefix(Int(n))) }
            if gstfer_structure_get_double_array(s, "landmarks", &probs, 16, &n) != 0 { r.landmarks = Array(probs.prefix(Int(n))) }
        }
        out.append(r)
    }
    return out
}

/// A ferfilter's read-only `stats`, field by field (each field checked to be there with its type).
func ferfilterStats(_ element: UnsafeMutablePointer<GstElement>) throws -> [String: Any] {
    let v = gstfer_value_new(gst_structure_get_type())!
    defer { gstfer_value_free(v) }
    g_object_get_property(gobject(element), "stats", v)
    let st = try XCTUnwrap(UnsafePointer<GstStructure>(OpaquePointer(g_value_get_boxed(v))))
    XCTAssertEqual(String(cString: gst_structure_get_name(st)), "ferfilter-stats")
    var out: [String: Any] = [:]
    for field in ["frames", "analysed", "between", "skipped-late", "skipped-busy", "skipped-rate", "tracks", "analyses"] {
        var n: guint64 = 0
        XCTAssertNotEqual(gst_structure_get_uint64(st, field, &n), 0, field)
        out[field] = Int(n)
    }
    var faces: guint = 0
    XCTAssertNotEqual(gst_structure_get_uint(st, "faces", &faces), 0)
    out["faces"] = Int(faces)
    for field in ["analysis-ms-mean", "analysis-ms-max", "frame-ms-mean", "frame-ms-max", "latency-ms"] {
        var d = 0.0
        XCTAssertNotEqual(gst_structure_get_double(st, field, &d), 0, field)
        out[field] = d
    }
    var live: gboolean = 1
    XCTAssertNotEqual(gst_structure_get_boolean(st, "live", &live), 0)
    out["live"] = live != 0
    return out
}

/// ferfilter in a harness, with a bus to read its messages.
final class FerHarness {
    let h: UnsafeMutablePointer<GstHarness>
    let element: UnsafeMutablePointer<GstElement>
    let bus: UnsafeMutablePointer<GstBus>

    init(_ props: [String: Any] = [:], caps: String) {
        precondition(Gst.ready)
        element = gst_element_factory_make("ferfilter", nil)!
        setProperty(element, "model", shippedModel)
        // GstHarness's source says it is live, which would move analyses beside the stream (their
        // results a frame or more later); these tests check each frame's own results.
        setProperty(element, "skip-late", false)
        for (k, v) in props { setProperty(element, k, v) }
        bus = gst_bus_new()
        gst_element_set_bus(element, bus)
        h = gst_harness_new_with_element(element, "sink", "src")!
        gst_harness_set_src_caps_str(h, caps)
        gst_harness_play(h)
    }

    deinit {
        gst_harness_teardown(h)
        gst_object_unref(UnsafeMutableRawPointer(bus))
    }

    /// Pushes a frame and returns the buffer that comes out (caller unrefs).
    func process(_ frame: RawFrame, pts: UInt64 = 0) -> UnsafeMutablePointer<GstBuffer>? {
        let caps = gst_caps_from_string(frame.caps)!
        gst_harness_set_src_caps(h, caps)   // takes the caps
        guard gst_harness_push(h, makeBuffer(frame.bytes, pts: pts)) == GST_FLOW_OK else { return nil }
        return gst_harness_pull(h)
    }

    /// Element messages named `ferfilter` posted so far.
    func messages(named name: String = "ferfilter") -> [UnsafeMutablePointer<GstMessage>] {
        var out: [UnsafeMutablePointer<GstMessage>] = []
        var others: [UnsafeMutablePointer<GstMessage>] = []
        while let m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT) {
            if let s = gst_message_get_structure(m), String(cString: gst_structure_get_name(s)) == name { out.append(m) }
            else { others.append(m) }
        }
        for m in others { gst_bus_post(bus, m) }   // left for the next reader (post takes the reference)
        return out
    }
}

/// A scene of real PublicTest faces and what the standalone detector finds in it.
func faceScene(width: Int = 640, height: Int = 480, faces: Int = 4, size: Int = 144, first: Int = 0) throws -> [UInt8] {
    let d = try fer2013()
    return FaceScene.grid(width: width, height: height, rows: Array(first..<(first + faces)), size: size).render(d)
}

/// The detection parameters ferfilter uses by default on frames `height` pixels tall, for the
/// standalone detector.
func elementDetectionParameters(height: Int = 480) -> DetectionParameters {
    var p = DetectionParameters()
    let s = AnalysisSettings()
    p.scaleFactor = s.scaleFactor; p.minNeighbors = s.minNeighbors; p.minSize = s.minFaceSize(forHeight: height)
    return p
}

/// The text of the next error message on `bus` (within 5 s), nil when none comes.
func nextErrorText(_ bus: UnsafeMutablePointer<GstBus>) -> String? {
    guard let msg = gst_bus_timed_pop_filtered(bus, 5_000_000_000, GST_MESSAGE_ERROR) else { return nil }
    defer { gst_message_unref(msg) }
    var err: UnsafeMutablePointer<GError>? = nil
    gst_message_parse_error(msg, &err, nil)
    defer { g_error_free(err) }
    return err.map { String(cString: $0.pointee.message) }
}
