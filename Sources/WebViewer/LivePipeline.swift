import CGstAppLibs
import FaceAnalysis
import Foundation

/// Where the viewer's video comes from, resolved from what the user typed after `--source`.
public struct VideoSource: Sendable, Equatable {
    /// What the user gave (for the page and the health endpoint).
    public var spec: String
    /// The gst-launch fragment that produces raw or decodable video.
    public var launch: String
    /// Play again from the start at the end of the stream (files and the test clip).
    public var loops: Bool
    /// Rebuild the pipeline a few seconds after an error (cameras and network streams drop out).
    public var reconnects: Bool

    public init(spec: String, launch: String, loops: Bool, reconnects: Bool) {
        self.spec = spec; self.launch = launch; self.loops = loops; self.reconnects = reconnects
    }

    /// The first webcam, if the machine has one.
    public static func defaultCamera() -> String? {
        (0..<10).map { "/dev/video\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Resolves `--source`: `/dev/videoN` (a webcam), a URL (`rtsp://`, `http(s)://`, `file://`, ...),
    /// a video file path, or a gst-launch fragment (anything with `!` or `=`, e.g.
    /// `videotestsrc pattern=ball`). Throws when a path names no file.
    public static func resolve(_ spec: String) throws -> VideoSource {
        let s = spec.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { throw ViewerError.badSource("empty --source") }
        if s.hasPrefix("/dev/video") {
            guard FileManager.default.fileExists(atPath: s) else { throw ViewerError.badSource("\(s): no such camera") }
            return VideoSource(spec: s, launch: "v4l2src device=\(s)", loops: false, reconnects: true)
        }
        if let r = s.range(of: "://"), !s[..<r.lowerBound].contains(" ") {
            let scheme = s[..<r.lowerBound].lowercased()
            let isFile = scheme == "file"
            return VideoSource(spec: s, launch: "uridecodebin uri=\(quote(s))", loops: isFile, reconnects: !isFile)
        }
        if s.contains("!") || s.contains("=") || s == "v4l2src" || s == "videotestsrc" {
            return VideoSource(spec: s, launch: s, loops: false, reconnects: false)
        }
        let url = URL(fileURLWithPath: s)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue else {
            throw ViewerError.badSource("\(s): no such video file (give a file, a URL, /dev/videoN or a gst-launch fragment)")
        }
        return VideoSource(spec: s, launch: "uridecodebin uri=\(quote(url.absoluteString))", loops: true, reconnects: false)
    }

    /// This source read for the faces and emotions its stream carries (SEI written by
    /// `ferseiinsert`, as `fer rtsp` does) instead of analysing its pictures: an `rtsp://` URL as
    /// `rtspsrc ! parsebin ! ferseiextract ! decodebin` (H.264 or H.265), another URL or a file
    /// through `urisourcebin ! parsebin ! ferseiextract ! decodebin`; a gst-launch fragment must hold
    /// `ferseiextract` itself. Cameras and raw clips carry no such stream.
    /// `properties` are set on its ferseiextract (e.g. `publish=...`).
    public func readingEmotionSEI(properties: String = "") throws -> VideoSource {
        var s = self
        let extract = properties.isEmpty ? "ferseiextract" : "ferseiextract \(properties)"
        if spec.lowercased().hasPrefix("rtsp") && spec.contains("://") {
            s.launch = "rtspsrc location=\(VideoSource.quote(spec)) ! parsebin ! \(extract) ! decodebin"
        } else if launch.hasPrefix("uridecodebin uri=") {
            s.launch = "urisourcebin " + launch.dropFirst("uridecodebin ".count) + " ! parsebin ! \(extract) ! decodebin"
        } else if let r = launch.range(of: "ferseiextract") {
            s.launch.replaceSubrange(r, with: extract)
        } else {
            throw ViewerError.badSource("--faces-from-stream reads faces an encoded stream carries: give an rtsp:// URL, a URL or "
                                        + "a file of H.264/H.265 video from ferseiinsert, or a fragment that holds ferseiextract "
                                        + "(e.g. \"srtsrc uri=srt://host:7001 ! tsdemux ! h264parse ! ferseiextract ! avdec_h264\"); "
                                        + "\(spec) is not one")
        }
        return s
    }

    /// A raw GRAY8 clip on disk (as `fer scene` writes), played in a loop.
    public static func rawClip(path: String, width: Int, height: Int, fps: Int, spec: String) -> VideoSource {
        VideoSource(spec: spec, launch: "filesrc location=\(quote(path)) ! rawvideoparse format=gray8 width=\(width) height=\(height) framerate=\(fps)/1",
                    loops: true, reconnects: false)
    }

    static func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
}

public enum ViewerError: Error, CustomStringConvertible {
    case badSource(String), pipeline(String)
    public var description: String {
        switch self { case .badSource(let s): return s; case .pipeline(let s): return s }
    }
}

/// The viewer's GStreamer pipeline: SOURCE ! videoconvert ! ferfilter ! videoconvert ! I420 appsink
/// (or, for a stream that carries its faces, SOURCE-with-ferseiextract ! feroverlay ! ...).
/// Annotated frames go to the hub from the appsink's callback; ferfilter's per-frame `ferfilter`
/// messages are read off the bus on a thread of the pipeline's own, which also loops files at the
/// end and rebuilds camera and network pipelines after an error.
public final class LivePipeline: @unchecked Sendable {
    public let source: VideoSource
    public let launchLine: String
    let hub: LiveHub
    /// The faces come from the stream (ferseiextract), not from analysing it.
    let facesFromStream: Bool
    /// How long a stream that should carry faces may play without any before the status says so.
    public var metadataGrace = 5.0
    static let noMetadataNote = "no emotion metadata in this stream so far: was it sent through ferseiinsert (fer rtsp does that)?"
    private let lock = NSLock()
    private var running = false
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)
    /// Seconds between an error and the next attempt, for sources that reconnect.
    public var retryDelay = 5.0
    /// The playing pipeline's ferfilter (a reference, under `lock`), for its `stats`.
    private var analyser: UnsafeMutablePointer<GstElement>?

    /// `ferfilterProperties` are appended to the element (e.g. "model=... draw-probabilities=true").
    /// With `facesFromStream` the source brings the faces itself (`readingEmotionSEI()`: its
    /// ferseiextract posts the same `ferfilter` messages) and `feroverlay` draws them instead.
    public init(source: VideoSource, ferfilterProperties: String, hub: LiveHub, facesFromStream: Bool = false) {
        self.source = source
        self.hub = hub
        self.facesFromStream = facesFromStream
        let element = facesFromStream
            ? "feroverlay name=fer" + (ferfilterProperties.contains("draw-probabilities=true") ? " draw-probabilities=true" : "")
            : "ferfilter name=fer \(ferfilterProperties)"
        launchLine = "\(source.launch) ! videoconvert ! \(element) ! videoconvert "
            + "! video/x-raw,format=I420 ! appsink name=viewersink max-buffers=2 drop=true sync=true"
    }

    /// Checks that GStreamer can build the pipeline (elements exist, the fragment parses), then
    /// starts it on the pipeline's thread. Errors after this point show in the status.
    public func start() throws {
        let (p, err) = LivePipeline.build(launchLine)
        guard let p else { throw ViewerError.pipeline("cannot build the pipeline: \(err ?? "unknown error")\n  \(launchLine)") }
        gst_object_unref(UnsafeMutableRawPointer(p))
        lock.lock(); running = true; lock.unlock()
        let t = Thread { [self] in run() }
        t.name = "gstfer-viewer-bus"
        thread = t
        t.start()
    }

    /// Stops the pipeline and waits for its thread (at most a few seconds).
    public func stop() {
        lock.lock(); let was = running; running = false; lock.unlock()
        if was { _ = stopped.wait(timeout: .now() + 5) }
    }

    private var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }

    static func build(_ line: String) -> (UnsafeMutablePointer<GstElement>?, String?) {
        var error: UnsafeMutablePointer<GError>? = nil
        let p = gst_parse_launch(line, &error)
        if let error {
            let msg = String(cString: error.pointee.message)
            g_error_free(error)
            if let p { gst_object_unref(UnsafeMutableRawPointer(p)) }
            return (nil, msg)
        }
        guard let p else { return (nil, nil) }
        gst_object_ref_sink(UnsafeMutableRawPointer(p))
        return (p, nil)
    }

    private func run() {
        defer { stopped.signal() }
        var status = PipelineStatus(state: "starting", source: source.spec, pipeline: launchLine)
        while isRunning {
            hub.setStatus(status)
            let outcome = play()
            guard isRunning else { break }
            switch outcome {
            case .error(let message):
                status.error = message
                if source.reconnects {
                    status.state = "reconnecting"
                    hub.setStatus(status)
                    let until = Date().addingTimeInterval(retryDelay)
                    while isRunning && Date() < until { Thread.sleep(forTimeInterval: 0.1) }
                    status.state = "starting"
                } else {
                    status.state = "error"
                    hub.setStatus(status)
                    while isRunning { Thread.sleep(forTimeInterval: 0.1) }
                }
            case .ended:
                status.state = "ended"; status.error = nil
                hub.setStatus(status)
                while isRunning { Thread.sleep(forTimeInterval: 0.1) }
            case .stopped:
                break
            }
        }
    }

    private enum Outcome { case error(String), ended, stopped }

    /// Builds and plays the pipeline until it fails, ends (without looping) or `stop()` is called.
    private func play() -> Outcome {
        let (built, err) = LivePipeline.build(launchLine)
        guard let pipeline = built else { return .error(err ?? "cannot build the pipeline") }
        defer {
            gst_element_set_state(pipeline, GST_STATE_NULL)
            gst_object_unref(UnsafeMutableRawPointer(pipeline))
        }
        let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
        if !facesFromStream, let fer = gst_bin_get_by_name(bin, "fer") {
            lock.lock(); analyser = fer; lock.unlock()
        }
        defer {
            lock.lock(); let fer = analyser; analyser = nil; lock.unlock()
            if let fer { gst_object_unref(UnsafeMutableRawPointer(fer)) }
        }
        if let sink = gst_bin_get_by_name(bin, "viewersink") {
            var callbacks = GstAppSinkCallbacks()
            callbacks.new_sample = { sink, user in
                let me = Unmanaged<LivePipeline>.fromOpaque(user!).takeUnretainedValue()
                me.takeSample(sink!)
                return GST_FLOW_OK
            }
            gst_app_sink_set_callbacks(UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstAppSink.self), &callbacks,
                                       Unmanaged.passUnretained(self).toOpaque(), nil)
            gst_object_unref(UnsafeMutableRawPointer(sink))
        }
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            // the reason is on the bus as an error message
            if let m = gst_bus_timed_pop_filtered(bus, 500_000_000, GST_MESSAGE_ERROR) {
                defer { gst_message_unref(m) }
                return .error(LivePipeline.errorText(m))
            }
            return .error("the pipeline does not start")
        }
        let mask = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ELEMENT.rawValue
                                  | GST_MESSAGE_STATE_CHANGED.rawValue)
        // with faces from the stream: say so when a playing stream brings none
        var playingSince: Date?, sawFaces = false, noted = false
        while isRunning {
            if facesFromStream, !sawFaces, !noted, let since = playingSince, Date().timeIntervalSince(since) > metadataGrace {
                noted = true
                hub.setStatus(PipelineStatus(state: "playing", source: source.spec, pipeline: launchLine, error: LivePipeline.noMetadataNote))
            }
            guard let m = gst_bus_timed_pop_filtered(bus, 100_000_000, mask) else { continue }
            defer { gst_message_unref(m) }
            let type = m.pointee.type
            if type == GST_MESSAGE_ELEMENT {
                if let st = gst_message_get_structure(m), gst_structure_has_name(st, "ferfilter") != 0 {
                    let (faces, time, timecode) = LivePipeline.readings(st, labels: hub.ledger.labels)
                    hub.publish(faces: faces, streamTime: time, timecode: timecode)
                    if !sawFaces {
                        sawFaces = true
                        if noted { hub.setStatus(PipelineStatus(state: "playing", source: source.spec, pipeline: launchLine)) }
                    }
                }
            } else if type == GST_MESSAGE_ERROR {
                return .error(LivePipeline.errorText(m))
            } else if type == GST_MESSAGE_EOS {
                guard source.loops else { return .ended }
                let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_KEY_UNIT.rawValue)
                if gst_element_seek_simple(pipeline, GST_FORMAT_TIME, flags, 0) == 0 { return .ended }
            } else if type == GST_MESSAGE_STATE_CHANGED,
                      UnsafeMutableRawPointer(m.pointee.src) == UnsafeMutableRawPointer(pipeline) {
                var old = GST_STATE_NULL, new = GST_STATE_NULL, pending = GST_STATE_NULL
                gst_message_parse_state_changed(m, &old, &new, &pending)
                if new == GST_STATE_PLAYING {
                    playingSince = playingSince ?? Date()
                    hub.setStatus(PipelineStatus(state: "playing", source: source.spec, pipeline: launchLine,
                                                 error: noted && !sawFaces ? LivePipeline.noMetadataNote : nil))
                }
            }
        }
        return .stopped
    }

    static func errorText(_ m: UnsafeMutablePointer<GstMessage>) -> String {
        var err: UnsafeMutablePointer<GError>? = nil
        var debug: UnsafeMutablePointer<gchar>? = nil
        gst_message_parse_error(m, &err, &debug)
        defer { if let err { g_error_free(err) }; g_free(debug) }
        var name = "pipeline"
        if let src = m.pointee.src, let n = gst_object_get_name(src) { name = String(cString: n); g_free(n) }
        return "\(name): " + (err.map { String(cString: $0.pointee.message) } ?? "error")
    }

    /// The appsink's callback (streaming thread): copies the frame out for the hub.
    private func takeSample(_ sink: UnsafeMutablePointer<GstAppSink>) {
        guard let sample = gst_app_sink_pull_sample(sink) else { return }
        defer { gst_sample_unref(sample) }
        guard let caps = gst_sample_get_caps(sample), let st = gst_caps_get_structure(caps, 0),
              let buffer = gst_sample_get_buffer(sample) else { return }
        var w: gint = 0, h: gint = 0
        guard gst_structure_get_int(st, "width", &w) != 0, gst_structure_get_int(st, "height", &h) != 0 else { return }
        var info = GstMapInfo()
        guard gst_buffer_map(buffer, &info, GST_MAP_READ) != 0 else { return }
        defer { gst_buffer_unmap(buffer, &info) }
        let need = I420Frame.size(width: Int(w), height: Int(h))
        guard info.size >= need, let data = info.data else { return }
        hub.publish(frame: I420Frame(width: Int(w), height: Int(h), bytes: Array(UnsafeBufferPointer(start: data, count: need))))
    }

    /// The ferfilter's `stats` (frames, analysed, skipped, tracks, times...) while the pipeline
    /// plays; nil with faces from the stream or between pipelines.
    public func elementStats() -> [String: StatValue]? {
        lock.lock(); defer { lock.unlock() }
        guard let fer = analyser else { return nil }   // the ferfilter this pipeline was built with
        let object = UnsafeMutableRawPointer(fer).assumingMemoryBound(to: GObject.self)
        var v = GValue()
        g_value_init(&v, gst_structure_get_type())
        defer { g_value_unset(&v) }
        g_object_get_property(object, "stats", &v)
        guard let raw = g_value_get_boxed(&v) else { return nil }
        return StatValue.fields(of: raw.assumingMemoryBound(to: GstStructure.self))
    }

    /// The faces, stream time and time code (when the frame has one) of a `ferfilter` element message.
    /// `labels` names the entries of each face's `probabilities` array (the model's label order).
    static func readings(_ st: UnsafePointer<GstStructure>, labels: [String]) -> ([FaceReading], Double?, String?) {
        var t: GstClockTime = 0
        var time: Double? = nil
        if gst_structure_get_clock_time(st, "stream-time", &t) != 0, t != GstClockTime.max { time = Double(t) / 1e9 }
        let timecode = gst_structure_get_string(st, "timecode").map { String(cString: $0) }
        guard let list = gst_structure_get_value(st, "faces"), gst_value_list_get_type() == list.pointee.g_type else { return ([], time, timecode) }
        var faces: [FaceReading] = []
        for i in 0..<gst_value_list_get_size(list) {
            guard let v = gst_value_list_get_value(list, i), let fs = gst_value_get_structure(v),
                  let f = try? EmotionFace(reading: MessageFaceReader(structure: fs)) else { continue }
            var probs: [String: Double] = [:]
            for (j, p) in f.probabilities.enumerated() where j < labels.count { probs[labels[j]] = p }
            faces.append(FaceReading(id: f.id, box: FaceBox(x: f.x, y: f.y, width: f.width, height: f.height),
                                     emotion: f.emotion, confidence: f.confidence, probabilities: probs))
        }
        return (faces, time, timecode)
    }
}

/// A number or a flag of an element's `stats` structure, as JSON.
public enum StatValue: Codable, Sendable, Equatable {
    case number(Double), flag(Bool)

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self { case .number(let d): try c.encode(d); case .flag(let b): try c.encode(b) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .flag(b) } else { self = .number(try c.decode(Double.self)) }
    }

    /// The numeric and boolean fields of a structure (others left out).
    static func fields(of st: UnsafePointer<GstStructure>) -> [String: StatValue] {
        var out: [String: StatValue] = [:]
        for i in 0..<gst_structure_n_fields(st) {
            guard let name = gst_structure_nth_field_name(st, guint(i)), let v = gst_structure_get_value(st, name) else { continue }
            let key = String(cString: name)
            if v.pointee.g_type == gstfer_viewer_type_boolean() {
                out[key] = .flag(g_value_get_boolean(v) != 0)
            } else {
                var d = GValue()
                g_value_init(&d, gstfer_viewer_type_double())
                if g_value_transform(v, &d) != 0 { out[key] = .number(g_value_get_double(&d)) }
                g_value_unset(&d)
            }
        }
        return out
    }
}

/// Reads a face of ferfilter's message for `EmotionFace(reading:)`, the codec ferfilter writes it with.
struct MessageFaceReader: FaceFieldReader {
    let structure: UnsafePointer<GstStructure>
    func value(_ key: String) -> FaceFieldValue? {
        guard let v = gst_structure_get_value(structure, key) else { return nil }
        let type = v.pointee.g_type
        if type == gst_value_array_get_type() {
            var out: [Double] = []
            for i in 0..<min(gst_value_array_get_size(v), guint(EmotionFace.maxLabels + 1)) {
                guard let e = gst_value_array_get_value(v, i), e.pointee.g_type == gstfer_viewer_type_double() else { return .other }
                out.append(g_value_get_double(e))
            }
            return .numbers(out)
        }
        if type == gstfer_viewer_type_double() { return .number(g_value_get_double(v)) }
        if let s = gst_structure_get_string(structure, key) { return .text(String(cString: s)) }
        var i: gint = 0, u: guint = 0
        if gst_structure_get_int(structure, key, &i) != 0 { return .integer(Int(i)) }
        if gst_structure_get_uint(structure, key, &u) != 0 { return .integer(Int(u)) }
        return .other
    }
}
