import CGStreamer
import FaceAnalysis
import FaceDetect
import FERNet
import Foundation
import MQTTPublish

/// The ferfilter element: a thin adapter between GStreamer and FaceAnalysis. Per frame it takes a
/// settings snapshot, hands the frame to the stream's `StreamAnalyzer`, then draws, attaches the
/// metas, posts the messages, writes the results and counts. GStreamer calls in from the
/// application thread (properties, state changes), the streaming thread (frames) and the threads
/// delivering events and queries.
final class FerFilter: ElementImpl {
    let element: UnsafeMutablePointer<GstFerFilter>

    /// What the threads share, under one lock.
    private struct Shared {
        var settings = Settings()
        /// Set when `model`, `detector`, `detector-model` or `cascade` changes while running:
        /// reloaded before the next frame.
        var reloadRequested = false
        /// QoS: frames whose running time is before this are late downstream.
        var qosEarliest: GstClockTime = clockTimeNone
        var upstreamLive = false, liveKnown = false
        /// What the element adds to the LATENCY query: the estimate now and what was answered.
        var latencyEstimate = 1.0 / 30, reportedLatency = 0.0
        var stats = FilterStats()
        /// The running element's publisher (the `publish` property), for `stats`.
        var publisher: MQTTPublisher?
    }
    private let shared = Locked(Shared())

    /// What exists while the element runs: made in `start`, dropped in `stop`; the streaming
    /// thread's alone (GstBaseTransform serialises start, stop, set_info and transform).
    private final class Running {
        var model: FacialExpressionModel
        var modelPath: String
        var detector: LoadedDetector
        let analyzer = StreamAnalyzer()
        var feed: ResultsFeed?
        /// The results as published (the `publish` property).
        var published: ResultsFeed?
        var frames = 0
        var lastSignature = ""
        var lumaScratch: [UInt8] = []
        init(model: FacialExpressionModel, modelPath: String, detector: LoadedDetector) {
            self.model = model; self.modelPath = modelPath; self.detector = detector
        }
    }

    /// The detector the settings chose, as loaded from its file.
    private struct LoadedDetector {
        var kind: DetectorKind
        var path: String
        var haar: HaarCascade?
        var yunet: YuNetDetector?
        /// Tuned by this frame's settings.
        func tuned(_ s: AnalysisSettings) -> any FaceDetector {
            if let yunet { return s.yunet(yunet) }
            return s.haar(haar!)
        }
    }
    private var running: Running?

    init(element: UnsafeMutablePointer<GstFerFilter>) { self.element = element }

    // MARK: properties

    /// Sets property `id`; false for an id ferfilter does not have (the C side warns, as GObject expects).
    func setProperty(_ id: guint, _ v: UnsafePointer<GValue>) -> Bool {
        guard let p = FerFilterProperties.spec(id) else { return false }
        shared.withLock {
            FerFilterProperties.set(p, &$0.settings, v)
            if ["model", "cascade", "detector", "detector-model"].contains(p.name) { $0.reloadRequested = true }
        }
        return true
    }

    func getProperty(_ id: guint, _ v: UnsafeMutablePointer<GValue>) -> Bool {
        guard let p = FerFilterProperties.spec(id) else { return false }
        shared.withLock { sh in
            if case .stats = p.kind {
                g_value_take_boxed(v, sh.stats.structure(live: sh.upstreamLive, latency: sh.reportedLatency, publishing: sh.publisher?.currentCounts))
            } else {
                FerFilterProperties.get(p, sh.settings, v)
            }
        }
        return true
    }

    private func snapshot() -> (Settings, reload: Bool) {
        shared.withLock { sh in
            defer { sh.reloadRequested = false }
            return (sh.settings, sh.reloadRequested)
        }
    }

    // MARK: logging

    /// Logs `message` (built only when the debug level lets it through).
    func log(_ level: GstDebugLevel, _ message: @autoclosure () -> String) {
        if gstfer_log_enabled(level) != 0 { gstfer_log(element, level, message()) }
    }

    // MARK: lifecycle

    /// Where the model comes from when the `model` property is unset.
    static func defaultModelPath() -> String { installedFile("fernet.json", environment: "GSTFER_MODEL") }

    /// Where YuNet's file comes from when `detector-model` is unset.
    static func defaultDetectorPath() -> String {
        installedFile("face_detection_yunet_2023mar.onnx", environment: "GSTFER_DETECTOR_MODEL")
    }

    /// A file the plugin's install puts beside it: `$environment` when set, else gstfer/`name` beside
    /// libgstfer.so, else /usr/local/share/gstfer or /usr/share/gstfer (the first that exists).
    static func installedFile(_ name: String, environment: String) -> String {
        if let env = ProcessInfo.processInfo.environment[environment], !env.isEmpty { return env }
        var candidates: [String] = []
        if let f = gstfer_library_path() {
            let dir = (String(cString: f) as NSString).deletingLastPathComponent
            candidates.append((dir as NSString).appendingPathComponent("gstfer/\(name)"))
        }
        candidates += ["/usr/local/share/gstfer/\(name)", "/usr/share/gstfer/\(name)"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }

    /// Loads the model and the detector `s` names, reusing `current`'s where the file is the same.
    /// On failure posts an element error naming the file (`fatal`, at start), or a warning while
    /// running, when the old ones stay in use; returns nil.
    private func load(_ s: Settings, current: Running?, fatal: Bool) -> (FacialExpressionModel, String, LoadedDetector)? {
        func report(_ kind: GstFerErrorKind, _ text: String, _ debug: String) {
            if fatal { gstfer_element_error(element, kind, text, debug) } else {
                gstfer_element_warning(element, text + " (keeping the one loaded before)", debug)
            }
        }
        let mpath = s.model ?? FerFilter.defaultModelPath()
        var model = current?.model
        if model == nil || mpath != current?.modelPath {
            do {
                let m = try FacialExpressionModel.shared(contentsOf: URL(fileURLWithPath: mpath))
                log(GST_LEVEL_INFO, "loaded model \(mpath): \(m.description.name), \(m.network.parameterCount) parameters, "
                    + BLAS.kernelsDescription)
                model = m
            } catch {
                let missing = (error as? ModelFileError).map { if case .missing = $0 { return true } else { return false } } ?? false
                report(missing ? GSTFER_ERROR_NOT_FOUND : GSTFER_ERROR_OPEN_READ, "ferfilter cannot load the model \(mpath): \(error)",
                       "property model=\(s.model ?? "(default)")")
                return nil
            }
        }
        let kind = s.analysis.detector
        let dpath = kind == .haar ? s.cascade : s.detectorModel ?? FerFilter.defaultDetectorPath()
        if let d = current?.detector, d.kind == kind, d.path == dpath { return (model!, mpath, d) }
        let missing = !FileManager.default.fileExists(atPath: dpath)
        switch kind {
        case .haar:
            do {
                let c = try HaarCascade(contentsOf: dpath)
                log(GST_LEVEL_INFO, "loaded cascade \(dpath): \(c.stageCount) stages")
                return (model!, mpath, LoadedDetector(kind: kind, path: dpath, haar: c, yunet: nil))
            } catch {
                report(missing ? GSTFER_ERROR_NOT_FOUND : GSTFER_ERROR_OPEN_READ, "ferfilter cannot load the face cascade \(dpath): \(error)",
                       missing ? "install opencv-data or set the cascade property" : "property cascade=\(dpath)")
                return nil
            }
        case .yunet:
            do {
                let y = try YuNetDetector(path: dpath)
                log(GST_LEVEL_INFO, "loaded face detector \(y.summary): \(y.network.summary)")
                return (model!, mpath, LoadedDetector(kind: kind, path: dpath, haar: nil, yunet: y))
            } catch {
                report(missing ? GSTFER_ERROR_NOT_FOUND : GSTFER_ERROR_OPEN_READ, "ferfilter cannot load the face detector \(dpath): \(error)",
                       missing ? "reinstall the plugin with its files (plugin/meson-free-build.sh), set detector-model, or use detector=haar"
                               : "property detector-model=\(s.detectorModel ?? "(default)")")
                return nil
            }
        }
    }

    func start() -> Bool {
        let (s, _) = snapshot()
        shared.withLock { $0.qosEarliest = clockTimeNone; $0.reportedLatency = 0; $0.liveKnown = false; $0.stats = FilterStats(); $0.publisher = nil }
        guard let (model, mpath, detector) = load(s, current: nil, fatal: true) else { return false }
        let run = Running(model: model, modelPath: mpath, detector: detector)
        if let path = s.results {
            do { run.feed = try ResultsFeed(path: path) } catch {
                gstfer_element_error(element, GSTFER_ERROR_SETTINGS, "ferfilter cannot write the results file \(path): \(error.localizedDescription)",
                                     "property results=\(path)")
                return false
            }
        }
        if let url = s.publish {
            guard let publisher = Publishing.start(url, element: "ferfilter", post: post) else { return false }
            run.published = ResultsFeed(publisher: publisher)
            shared.withLock { $0.publisher = publisher }
        }
        running = run
        return true
    }

    func stop() -> Bool {
        if let run = running {
            run.feed?.finish(labels: run.model.labels)
            run.published?.finish(labels: run.model.labels)
            run.published?.publisher?.close(timeout: Publishing.closeTimeout)
            run.analyzer.finish()
        }
        running = nil
        return true
    }

    /// Reports what the publisher met: an error (at start) or a warning, or a log line.
    private func post(_ report: Publishing.Report) {
        switch report {
        case .error(let text, let debug): gstfer_element_error(element, GSTFER_ERROR_SETTINGS, text, debug)
        case .warning(let text, let debug): gstfer_element_warning(element, text, debug)
        case .info(let text): log(GST_LEVEL_INFO, text)
        }
    }

    // MARK: events and queries

    /// At the end of the stream the results file gets its summary.
    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>) {
        if event.pointee.type == GST_EVENT_EOS, let run = running {
            run.feed?.finish(labels: run.model.labels)
            run.published?.finish(labels: run.model.labels)
        }
    }

    /// Notes QoS from downstream: frames whose running time is before `earliest` are late.
    func srcEvent(_ event: UnsafeMutablePointer<GstEvent>) {
        guard event.pointee.type == GST_EVENT_QOS else { return }
        var type = GST_QOS_TYPE_UNDERFLOW, proportion = 0.0, diff: GstClockTimeDiff = 0, timestamp: GstClockTime = 0
        gst_event_parse_qos(event, &type, &proportion, &diff, &timestamp)
        shared.withLock { $0.qosEarliest = diff > 0 ? timestamp &+ GstClockTime(diff) : timestamp }
    }

    /// Adds the element's processing time to LATENCY queries and notes whether the source is live.
    func query(_ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>, handled: Bool) -> Bool {
        guard handled, direction == GST_PAD_SRC, query.pointee.type == GST_QUERY_LATENCY else { return handled }
        var live: gboolean = 0, minLatency: GstClockTime = 0, maxLatency: GstClockTime = 0
        gst_query_parse_latency(query, &live, &minLatency, &maxLatency)
        let ours = shared.withLock { sh -> GstClockTime in
            sh.upstreamLive = live != 0; sh.liveKnown = true
            sh.reportedLatency = sh.latencyEstimate
            return GstClockTime(sh.latencyEstimate * 1e9)
        }
        minLatency &+= ours
        if maxLatency != clockTimeNone { maxLatency &+= ours }
        gst_query_set_latency(query, live, minLatency, maxLatency)
        log(GST_LEVEL_DEBUG, "latency query: live \(live != 0), adding \(ours / 1_000_000) ms")
        return true
    }

    func setInfo(_ info: UnsafeMutablePointer<GstVideoInfo>) -> Bool {
        guard let f = info.pointee.finfo, PixelLayout(f.pointee.format) != nil else {
            log(GST_LEVEL_ERROR, "unsupported format")
            return false
        }
        guard let run = running else { return false }
        log(GST_LEVEL_DEBUG, "caps: \(info.pointee.width)x\(info.pointee.height) format \(f.pointee.format.rawValue)")
        let fps = info.pointee.fps_n > 0 && info.pointee.fps_d > 0 ? Double(info.pointee.fps_d) / Double(info.pointee.fps_n) : nil
        run.analyzer.restart(frameDuration: fps)   // boxes from another size mean nothing now
        run.lumaScratch = []
        let s = snapshot().0.analysis, d = run.analyzer.frameDuration
        log(GST_LEVEL_INFO, "at \(String(format: "%.2f", 1 / d)) fps: the search for new faces spread over "
            + "\(s.scanSpread(frameDuration: d)) analysed frames, a tracked face classified on one in \(s.classifyInterval(frameDuration: d))")
        return true
    }

    // MARK: frames

    func transform(frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn {
        let (s, reload) = snapshot()
        guard let run = running, let view = FrameView(frame) else { return GST_FLOW_ERROR }
        if reload, let (model, mpath, detector) = load(s, current: run, fatal: false) {
            // a bad file set while running must not stop the stream: load warned and the old ones stay
            run.model = model; run.modelPath = mpath; run.detector = detector
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let buffer = frame.pointee.buffer!

        // the frame's time: its running time, else its place in the stream
        let times = FrameTimes(buffer, gstfer_segment(element))
        let d = times.duration == clockTimeNone || times.duration == 0 ? run.analyzer.frameDuration : Double(times.duration) / 1e9
        let t = times.running == clockTimeNone ? Double(run.frames) * d : Double(times.running) / 1e9
        if !shared.withLock({ $0.liveKnown }) { askUpstreamIfLive() }
        let (late, live) = shared.withLock { sh in
            (sh.qosEarliest != clockTimeNone && times.running != clockTimeNone && times.running &+ GstClockTime(d * 1e9) < sh.qosEarliest,
             sh.upstreamLive)
        }

        let outcome = run.analyzer.process(view.width, view.height, time: t, late: late, live: live, settings: s.analysis,
                                           model: run.model, detector: run.detector.tuned(s.analysis)) {
            let (luma, stride) = view.luma(into: &run.lumaScratch)
            return LumaPlane(pixels: luma, width: view.width, height: view.height, stride: stride, colour: view.colour)
        }
        if outcome.decision == .late { log(GST_LEVEL_DEBUG, "frame at \(t) s is late downstream: not analysed") }
        run.frames += 1

        let labels = run.model.labels
        let faces = outcome.faces.map { $0.reported(labels: labels) }
        if s.draw { FaceDrawing.draw(faces, on: view, labels: labels, probabilities: s.drawProbabilities, landmarks: s.drawLandmarks) }
        FaceMeta.attach(faces, timecode: times.timecode, to: buffer)
        postMessage(faces, times: times, mode: s.messageMode, run)
        if s.messageMode != .none { for c in outcome.changes { postLabelChange(c, times: times, labels: labels) } }
        if s.results != run.feed?.path { switchResults(run, to: s.results) }
        run.feed?.frame(faces, times: times, time: t)
        run.published?.frame(faces, times: times, time: t)

        let frameSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        run.analyzer.spent(frameSeconds)
        let estimate = run.analyzer.latency(frameDuration: d)
        let repost = shared.withLock { sh -> Bool in
            sh.stats.count(outcome.decision, faces: faces.count, tracks: outcome.tracksStarted, analysisSeconds: outcome.analysisSeconds,
                           frameSeconds: frameSeconds)
            // when the estimate grows well past what the pipeline was told, ask it to recompute
            sh.latencyEstimate = estimate
            let repost = sh.upstreamLive && sh.reportedLatency > 0 && estimate > sh.reportedLatency * 1.5
            if repost { sh.reportedLatency = estimate }
            return repost
        }
        if repost {
            log(GST_LEVEL_INFO, "processing takes \(Int(estimate * 1000)) ms a frame: asking the pipeline to recompute its latency")
            let object = UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self)
            _ = gst_element_post_message(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstElement.self),
                                         gst_message_new_latency(object))
        }
        return GST_FLOW_OK
    }

    /// The results property changed while running: the old file gets its summary, the new one opens.
    private func switchResults(_ run: Running, to path: String?) {
        run.feed?.finish(labels: run.model.labels); run.feed = nil
        guard let path else { return }
        do { run.feed = try ResultsFeed(path: path) } catch {
            gstfer_element_warning(element, "ferfilter cannot write the results file \(path): \(error.localizedDescription)", "property results=\(path)")
        }
    }

    /// Asks upstream whether the source is live (before the pipeline's first LATENCY query, which
    /// may come after the first frames).
    private func askUpstreamIfLive() {
        guard let q = gst_query_new_latency() else { return }
        defer { gst_query_unref(q) }
        var live: gboolean = 0
        if gst_pad_peer_query(gstfer_sink_pad(element), q) != 0 { gst_query_parse_latency(q, &live, nil, nil) }
        shared.withLock { $0.upstreamLive = live != 0; $0.liveKnown = true }
        log(GST_LEVEL_DEBUG, "upstream is \(live != 0 ? "live" : "not live")")
    }

    /// The `ferfilter` element message, shaped like facedetect's (every frame, or on change).
    private func postMessage(_ faces: [EmotionFace], times: FrameTimes, mode: MessageMode, _ run: Running) {
        if mode == .none { return }
        if mode == .onChange {
            let sig = FaceMeta.signature(faces)
            if sig == run.lastSignature { return }
            run.lastSignature = sig
        }
        _ = gstfer_post_element_message(element, FaceMeta.message(faces, times: times))
    }

    /// `ferfilter-emotion-changed`: a track's shown label changed.
    private func postLabelChange(_ c: EmotionChange, times: FrameTimes, labels: [String]) {
        let st = gst_structure_new_empty("ferfilter-emotion-changed")!
        gstfer_structure_set_int(st, "id", gint(c.id))
        gstfer_structure_set_string(st, "emotion", labels[c.to])
        gstfer_structure_set_string(st, "previous", labels[c.from])
        gstfer_structure_set_double(st, "confidence", Double(c.confidence))
        times.set(on: st)
        _ = gstfer_post_element_message(element, st)
    }
}

/// What the read-only `stats` property reports: counts since the element started, and times.
struct FilterStats {
    var frames = 0, analysed = 0, faces = 0, tracks = 0
    /// Frames not analysed, by the scheduler's reason (interval, rate, late, busy).
    var skipped: [AnalysisScheduler.Decision: Int] = [:]
    var analyses = 0, analysisSeconds = 0.0, analysisMax = 0.0
    var frameSeconds = 0.0, frameMax = 0.0

    mutating func count(_ decision: AnalysisScheduler.Decision, faces: Int, tracks: Int, analysisSeconds a: Double?, frameSeconds f: Double) {
        frames += 1
        if decision == .analyse { analysed += 1 } else { skipped[decision, default: 0] += 1 }
        self.faces = faces; self.tracks = tracks
        if let a { analyses += 1; analysisSeconds += a; analysisMax = max(analysisMax, a) }
        frameSeconds += f; frameMax = max(frameMax, f)
    }

    /// A new `ferfilter-stats` structure (the caller owns it).
    func structure(live: Bool, latency: Double, publishing: MQTTPublisher.Counts? = nil) -> UnsafeMutablePointer<GstStructure> {
        let st = gst_structure_new_empty("ferfilter-stats")!
        gstfer_structure_set_uint64(st, "frames", guint64(frames))
        gstfer_structure_set_uint64(st, "analysed", guint64(analysed))
        for (field, d) in [("between", AnalysisScheduler.Decision.interval), ("skipped-late", .late), ("skipped-busy", .busy), ("skipped-rate", .rate)] {
            gstfer_structure_set_uint64(st, field, guint64(skipped[d] ?? 0))
        }
        gstfer_structure_set_uint(st, "faces", guint(faces))
        gstfer_structure_set_uint64(st, "tracks", guint64(tracks))
        gstfer_structure_set_uint64(st, "analyses", guint64(analyses))
        gstfer_structure_set_double(st, "analysis-ms-mean", analyses > 0 ? analysisSeconds / Double(analyses) * 1000 : 0)
        gstfer_structure_set_double(st, "analysis-ms-max", analysisMax * 1000)
        gstfer_structure_set_double(st, "frame-ms-mean", frames > 0 ? frameSeconds / Double(frames) * 1000 : 0)
        gstfer_structure_set_double(st, "frame-ms-max", frameMax * 1000)
        gstfer_structure_set_boolean(st, "live", live ? 1 : 0)
        gstfer_structure_set_double(st, "latency-ms", latency * 1000)
        if let p = publishing { Publishing.set(p, on: st) }
        return st
    }
}

/// GST_CLOCK_TIME_NONE (the macro's `((GstClockTime) -1)` does not import).
let clockTimeNone = GstClockTime.max

/// A frame's times, worked out once per frame for the messages and the results file.
struct FrameTimes {
    let pts: GstClockTime, duration: GstClockTime, running: GstClockTime, stream: GstClockTime
    /// The frame's SMPTE time code ("10:00:00:12"; ";" before the frames when drop-frame), from
    /// its GstVideoTimeCodeMeta (timecodestamper, an SDI capture card), or what the sender's
    /// emotion SEI carried; nil when neither is there.
    var timecode: String?

    init(_ buffer: UnsafeMutablePointer<GstBuffer>, _ segment: UnsafeMutablePointer<GstSegment>) {
        pts = gstfer_buffer_pts(buffer); duration = gstfer_buffer_duration(buffer)
        running = pts == clockTimeNone ? clockTimeNone : gst_segment_to_running_time(segment, GST_FORMAT_TIME, pts)
        stream = pts == clockTimeNone ? clockTimeNone : gst_segment_to_stream_time(segment, GST_FORMAT_TIME, pts)
        timecode = FrameTimes.timecode(of: buffer)
    }

    /// The time code of a buffer's GstVideoTimeCodeMeta, if it has a valid one.
    static func timecode(of buffer: UnsafeMutablePointer<GstBuffer>) -> String? {
        guard let tc = gstfer_buffer_time_code(buffer), gst_video_time_code_is_valid(tc) != 0,
              let text = gst_video_time_code_to_string(tc) else { return nil }
        defer { g_free(text) }
        return String(cString: text)
    }

    /// `timestamp`, `stream-time` and `running-time`, as facedetect's message has them, and
    /// `timecode` when the frame has one.
    func set(on st: UnsafeMutablePointer<GstStructure>) {
        gstfer_structure_set_clock_time(st, "timestamp", pts)
        gstfer_structure_set_clock_time(st, "stream-time", stream)
        gstfer_structure_set_clock_time(st, "running-time", running)
        if let timecode { gstfer_structure_set_string(st, "timecode", timecode) }
    }
}
