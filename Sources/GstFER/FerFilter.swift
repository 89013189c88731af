import CGStreamer
import EmotionSEI
import FaceDetect
import FaceTracking
import FERNet
import Foundation

/// One face in a frame and what the model says of it (smoothed over its track).
public struct FaceResult: Sendable, Equatable {
    /// The track id: the same while the face stays in view.
    public var id: Int
    public var x: Int, y: Int, width: Int, height: Int
    public var probabilities: [Float]
    public var labelIndex: Int
    public var confidence: Float { probabilities.isEmpty ? 0 : probabilities[labelIndex] }
}

/// The ferfilter element's behaviour. One instance per GstFerFilter; GStreamer calls in from
/// the application thread (properties, state changes) and the streaming thread (frames).
final class FerFilter {
    let element: UnsafeMutablePointer<GstFerFilter>
    private let lock = NSLock()
    private var settings = Settings()
    /// Set when `model` or `cascade` changes while running: reloaded before the next frame.
    private var reloadRequested = false

    // Streaming-thread state (start/stop/set_info/transform are serialised by GstBaseTransform).
    private var model: FacialExpressionModel?
    private var cascade: HaarCascade?
    private var loadedModelPath = ""
    private var loadedCascadePath = ""
    private var frameCount = 0
    /// Analyses so far (the phase of a spread scan).
    private var analysisCount = 0
    private var lastSignature = ""
    private var lumaScratch: [UInt8] = []
    private let tracker = FaceTracker()
    private var scheduler = AnalysisScheduler()
    private let worker = AnalysisWorker()
    private var frameDuration = 1.0 / 30
    private var appliedThreads = -1
    private var feed: ResultsFeed?

    // Shared with the threads that deliver events and queries (under `lock`).
    private var qosEarliest: GstClockTime = clockTimeNone
    private var upstreamLive = false
    private var liveKnown = false
    private var latencyEstimate = 1.0 / 30
    private var reportedLatency = 0.0
    private var stats = FilterStats()

    init(element: UnsafeMutablePointer<GstFerFilter>) { self.element = element }

    // MARK: properties

    func setProperty(_ p: Property, _ v: UnsafePointer<GValue>) {
        lock.lock(); defer { lock.unlock() }
        p.set(&settings, v)
        if p == .model || p == .cascade { reloadRequested = true }
    }

    func getProperty(_ p: Property, _ v: UnsafeMutablePointer<GValue>) {
        lock.lock(); defer { lock.unlock() }
        if p == .stats {
            g_value_take_boxed(v, stats.structure(live: upstreamLive, latency: reportedLatency))
        } else {
            p.get(settings, v)
        }
    }

    private func snapshot() -> (Settings, Bool) {
        lock.lock(); defer { lock.unlock() }
        let r = reloadRequested
        reloadRequested = false
        return (settings, r)
    }

    // MARK: logging

    func log(_ level: GstDebugLevel, _ s: String) { gstfer_log(element, level, s) }

    // MARK: lifecycle

    /// Where the model comes from when the `model` property is unset.
    static func defaultModelPath() -> String {
        if let env = ProcessInfo.processInfo.environment["GSTFER_MODEL"], !env.isEmpty { return env }
        var candidates: [String] = []
        if let f = gstfer_library_path() {
            let dir = (String(cString: f) as NSString).deletingLastPathComponent
            candidates.append((dir as NSString).appendingPathComponent("gstfer/fernet.json"))
        }
        candidates += ["/usr/local/share/gstfer/fernet.json", "/usr/share/gstfer/fernet.json"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }

    /// Loads the model and cascade named by `s`. On failure posts an element error naming the file
    /// (`fatal`, at start), or a warning while running, when the old model stays in use.
    private func load(_ s: Settings, fatal: Bool = true) -> Bool {
        func report(_ kind: Int32, _ text: String, _ debug: String) {
            if fatal { gstfer_element_error(element, kind, text, debug) } else {
                gstfer_element_warning(element, text + " (keeping the one loaded before)", debug)
            }
        }
        let mpath = s.model ?? FerFilter.defaultModelPath()
        do {
            if model == nil || mpath != loadedModelPath {
                model = try FacialExpressionModel.shared(contentsOf: URL(fileURLWithPath: mpath))
                loadedModelPath = mpath
                log(GST_LEVEL_INFO, "loaded model \(mpath): \(model!.description.name), \(model!.network.parameterCount) parameters, "
                    + BLAS.kernelsDescription)
            }
        } catch {
            let missing = (error as? ModelFileError).map { if case .missing = $0 { return true } else { return false } } ?? false
            report(missing ? 0 : 1, "ferfilter cannot load the model \(mpath): \(error)", "property model=\(s.model ?? "(default)")")
            return false
        }
        do {
            if cascade == nil || s.cascade != loadedCascadePath {
                cascade = try HaarCascade(contentsOf: s.cascade)
                loadedCascadePath = s.cascade
                log(GST_LEVEL_INFO, "loaded cascade \(s.cascade): \(cascade!.stageCount) stages")
            }
        } catch {
            let missing = !FileManager.default.fileExists(atPath: s.cascade)
            report(missing ? 0 : 1, "ferfilter cannot load the face cascade \(s.cascade): \(error)",
                   missing ? "install opencv-data or set the cascade property" : "property cascade=\(s.cascade)")
            return false
        }
        return true
    }

    func start() -> Bool {
        let (s, _) = snapshot()
        frameCount = 0; lastSignature = ""
        worker.reset(); tracker.reset(); scheduler.reset()
        lock.lock(); qosEarliest = clockTimeNone; reportedLatency = 0; liveKnown = false; stats = FilterStats(); lock.unlock()
        guard load(s) else { return false }
        feed = nil
        if let path = s.results {
            do { feed = try ResultsFeed(path: path) } catch {
                gstfer_element_error(element, 2, "ferfilter cannot write the results file \(path): \(error.localizedDescription)",
                                     "property results=\(path)")
                return false
            }
        }
        return true
    }

    func stop() -> Bool {
        feed?.finish(labels: model?.labels ?? FERDataset.labels); feed = nil
        worker.reset(); tracker.reset()
        return true
    }

    // MARK: events and queries

    /// At the end of the stream the results file gets its summary.
    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>) {
        if event.pointee.type == GST_EVENT_EOS { feed?.finish(labels: model?.labels ?? FERDataset.labels) }
    }

    /// Notes QoS from downstream: frames whose running time is before `earliest` are late.
    func srcEvent(_ event: UnsafeMutablePointer<GstEvent>) {
        guard event.pointee.type == GST_EVENT_QOS else { return }
        var type = GST_QOS_TYPE_UNDERFLOW, proportion = 0.0, diff: GstClockTimeDiff = 0, timestamp: GstClockTime = 0
        gst_event_parse_qos(event, &type, &proportion, &diff, &timestamp)
        lock.lock(); defer { lock.unlock() }
        qosEarliest = diff > 0 ? timestamp &+ GstClockTime(diff) : timestamp
    }

    /// Adds the element's processing time to LATENCY queries and notes whether the source is live.
    func query(_ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>, handled: Bool) -> Bool {
        guard handled, direction == GST_PAD_SRC, query.pointee.type == GST_QUERY_LATENCY else { return handled }
        var live: gboolean = 0, minLatency: GstClockTime = 0, maxLatency: GstClockTime = 0
        gst_query_parse_latency(query, &live, &minLatency, &maxLatency)
        lock.lock()
        upstreamLive = live != 0; liveKnown = true
        reportedLatency = latencyEstimate
        let ours = GstClockTime(latencyEstimate * 1e9)
        lock.unlock()
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
        log(GST_LEVEL_DEBUG, "caps: \(info.pointee.width)x\(info.pointee.height) format \(f.pointee.format.rawValue)")
        worker.reset(); tracker.reset()   // boxes from another size mean nothing now
        lumaScratch = []
        if info.pointee.fps_n > 0 && info.pointee.fps_d > 0 { frameDuration = Double(info.pointee.fps_d) / Double(info.pointee.fps_n) }
        lock.lock(); let s = settings; lock.unlock()
        log(GST_LEVEL_INFO, "at \(String(format: "%.2f", 1 / frameDuration)) fps: the search for new faces spread over "
            + "\(s.scanSpread(frameDuration: frameDuration)) analysed frames, a tracked face classified on one in "
            + "\(s.classifyInterval(frameDuration: frameDuration))")
        return true
    }

    // MARK: frames

    func transform(_ frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn {
        let (s, reload) = snapshot()
        if reload {
            // a bad file set while running must not stop the stream: keep the old model, warn
            let oldModel = model, oldCascade = cascade, oldM = loadedModelPath, oldC = loadedCascadePath
            if !load(s, fatal: false) {
                model = oldModel; cascade = oldCascade; loadedModelPath = oldM; loadedCascadePath = oldC
            }
        }
        guard let model, let cascade, let view = FrameView(frame) else { return GST_FLOW_ERROR }
        let started = DispatchTime.now().uptimeNanoseconds
        let buffer = frame.pointee.buffer!
        if s.threads != appliedThreads {
            appliedThreads = s.threads
            Parallelism.setThreads(s.threads > 0 ? s.threads : ProcessInfo.processInfo.activeProcessorCount)
        }
        tracker.configuration.hold = s.trackHold
        tracker.configuration.smoothing = s.smoothing
        tracker.configuration.hysteresis = s.hysteresis

        // the frame's time: its running time, else its place in the stream
        let times = FrameTimes(buffer, gstfer_segment(element))
        let running = times.running, dur = times.duration
        let d = dur == clockTimeNone || dur == 0 ? frameDuration : Double(dur) / 1e9
        let t = running == clockTimeNone ? Double(frameCount) * d : Double(running) / 1e9
        lock.lock()
        let needLive = !liveKnown
        lock.unlock()
        if needLive { askUpstreamIfLive() }
        lock.lock()
        let late = qosEarliest != clockTimeNone && running != clockTimeNone && running &+ GstClockTime(d * 1e9) < qosEarliest
        let live = upstreamLive
        lock.unlock()

        // Live with skip-late: analyses run beside the stream and frames never wait for one.
        let async = live && s.skipLate
        if !async && worker.isBusy { worker.drain() }
        var changes: [LabelChange] = []
        var analysisSeconds: Double? = nil
        if let r = worker.take() {
            analysisSeconds = r.seconds
            changes += tracker.update(r.detections, at: r.time)
            log(GST_LEVEL_LOG, "analysis of the frame at \(r.time) s took \(Int(r.seconds * 1000)) ms")
        }
        let decision = scheduler.decide(time: t, late: late, busy: async && worker.isBusy, settings: s)
        let expected = decision == .analyse ? tracker.expectedBoxes(at: t) : []
        let settled = decision == .analyse ? settledFaces(expected, s) : []
        let views = decision == .analyse ? alternateViews(expected, s) : []
        let plan = decision == .analyse ? scanPlan(expected, s) : nil
        if decision == .analyse && !async {
            let a0 = DispatchTime.now().uptimeNanoseconds
            let detections = analyse(view, s, model, cascade, plan: plan, settled: settled, views: views)
            analysisSeconds = Double(DispatchTime.now().uptimeNanoseconds - a0) / 1e9
            changes += tracker.update(detections, at: t)
        } else {
            if decision == .analyse {
                let (luma, stride) = view.luma(into: &lumaScratch)
                let (w, h) = (view.width, view.height)
                var copy = [UInt8](repeating: 0, count: w * h)
                copy.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<h { (dst.baseAddress! + y * w).update(from: luma + y * stride, count: w) }
                }
                worker.submit(time: t) {
                    copy.withUnsafeBufferPointer { FerFilter.analyse(luma: $0.baseAddress!, width: w, height: h, stride: w, s, model, cascade,
                                                                   plan: plan, settled: settled, views: views) }
                }
            } else if decision == .late {
                log(GST_LEVEL_DEBUG, "frame at \(t) s is late downstream: not analysed")
            }
            tracker.predict(at: t)
        }
        frameCount += 1
        let faces = visibleFaces(s.maxFaces, width: view.width, height: view.height)

        let reported = faces.map { $0.emotionFace(labels: model.labels) }
        if s.draw { FaceDrawing.draw(reported, on: view, labels: model.labels, probabilities: s.drawProbabilities) }
        FaceMeta.attach(reported, timecode: times.timecode, to: buffer)
        postMessage(reported, times: times, mode: s.messageMode)
        if s.messageMode != .none { for c in changes { postLabelChange(c, times: times, labels: model.labels) } }
        if s.results != feed?.path { switchResults(to: s.results, labels: model.labels) }
        feed?.frame(reported, times: times, time: t)

        let frameSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        scheduler.spent(frameSeconds)
        lock.lock()
        stats.count(decision, faces: reported.count, tracks: tracker.tracksStarted, analysisSeconds: analysisSeconds, frameSeconds: frameSeconds)
        lock.unlock()
        updateLatency(frameDuration: d)
        return GST_FLOW_OK
    }

    /// The results property changed while running: the old file gets its summary, the new one opens.
    private func switchResults(to path: String?, labels: [String]) {
        feed?.finish(labels: labels); feed = nil
        guard let path else { return }
        do { feed = try ResultsFeed(path: path) } catch {
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
        lock.lock(); upstreamLive = live != 0; liveKnown = true; lock.unlock()
        log(GST_LEVEL_DEBUG, "upstream is \(live != 0 ? "live" : "not live")")
    }

    /// Keeps the latency estimate current; when it grows well past what the pipeline was told,
    /// posts a LATENCY message so the pipeline asks again.
    private func updateLatency(frameDuration d: Double) {
        let estimate = scheduler.latency(frameDuration: d)
        lock.lock()
        latencyEstimate = estimate
        let repost = upstreamLive && reportedLatency > 0 && estimate > reportedLatency * 1.5
        if repost { reportedLatency = estimate }
        lock.unlock()
        if repost {
            log(GST_LEVEL_INFO, "processing takes \(Int(estimate * 1000)) ms a frame: asking the pipeline to recompute its latency")
            let object = UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstObject.self)
            _ = gst_element_post_message(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstElement.self),
                                         gst_message_new_latency(object))
        }
    }

    /// The tracks to show: those detected last first, then by size, at most `maxFaces`, in id order,
    /// boxes clipped to the frame.
    func visibleFaces(_ maxFaces: Int, width: Int, height: Int) -> [FaceResult] {
        var tracks = tracker.tracks
        if maxFaces > 0 && tracks.count > maxFaces {
            tracks.sort { ($0.detected ? 1 : 0, $0.box.width * $0.box.height) > ($1.detected ? 1 : 0, $1.box.width * $1.box.height) }
            tracks = Array(tracks.prefix(maxFaces))
        }
        return tracks.sorted { $0.id < $1.id }.compactMap { tr in
            let x0 = max(0, Int(tr.box.x.rounded())), y0 = max(0, Int(tr.box.y.rounded()))
            let x1 = min(width, Int((tr.box.x + tr.box.width).rounded())), y1 = min(height, Int((tr.box.y + tr.box.height).rounded()))
            guard x1 - x0 >= 2, y1 - y0 >= 2 else { return nil }
            return FaceResult(id: tr.id, x: x0, y: y0, width: x1 - x0, height: y1 - y0,
                              probabilities: tr.probabilities, labelIndex: tr.label)
        }
    }

    /// What this analysis searches: with `scan-spread` N > 1 and faces tracked, one of N bands of
    /// window rows at every pyramid level (in turn) and, at the sizes each tracked face may have,
    /// the area around it (`expected`: the tracks' expected boxes); without tracks (a new scene),
    /// everything.
    func scanPlan(_ expected: [TrackBox], _ s: Settings) -> ScanPlan? {
        defer { analysisCount += 1 }
        let spread = s.scanSpread(frameDuration: frameDuration)
        guard spread > 1, !expected.isEmpty else { return nil }
        let regions = expected.map { ScanRegion.around(x: $0.x, y: $0.y, width: $0.width, height: $0.height) }
        return ScanPlan(period: spread, phase: analysisCount % spread, regions: regions)
    }

    /// Where the tracked faces that need no classification on this analysis are expected: with
    /// `classify-interval` N, a track is classified when (analysis number + its id) is a multiple
    /// of N, so the tracks take turns; one that was missed on the last analysis is classified too.
    /// `expected`: the tracks' expected boxes, in track order.
    func settledFaces(_ expected: [TrackBox], _ s: Settings) -> [TrackBox] {
        let interval = s.classifyInterval(frameDuration: frameDuration)
        guard interval > 1 else { return [] }
        return zip(tracker.tracks, expected).compactMap { tr, box in
            tr.detected && (analysisCount + tr.id) % interval != 0 ? box : nil
        }
    }

    /// With flip-tta and flip-alternate (and smoothing on), how each tracked face is to be looked
    /// at if it is classified on this analysis: mirrored after an odd number of classifications,
    /// as seen after an even one; the tracker folds the mean of that view and the track's latest
    /// of the other, so a steady face gets exactly flip TTA's probabilities at half the work.
    /// `expected`: the tracks' expected boxes, in track order.
    func alternateViews(_ expected: [TrackBox], _ s: Settings) -> [(box: TrackBox, view: FacialExpressionModel.FaceView)] {
        guard s.flipTTA && s.flipAlternate && s.smoothing > 0 else { return [] }
        return zip(tracker.tracks, expected).map { tr, box in (box, tr.classifications % 2 == 1 ? .mirrored : .asSeen) }
    }

    /// Detects faces on the luma plane, crops them as FER2013 frames faces, classifies all of a
    /// frame's faces in one batch.
    func analyse(_ view: FrameView, _ s: Settings, _ model: FacialExpressionModel, _ cascade: HaarCascade, plan: ScanPlan?,
                 settled: [TrackBox] = [], views: [(box: TrackBox, view: FacialExpressionModel.FaceView)] = []) -> [TrackDetection] {
        let (luma, stride) = view.luma(into: &lumaScratch)
        return FerFilter.analyse(luma: luma, width: view.width, height: view.height, stride: stride, s, model, cascade,
                                 plan: plan, settled: settled, views: views)
    }

    /// One analysis of a grey plane (on any thread). A face found where a `settled` box is expected
    /// (intersection over union at least 0.5, one face per box) is not classified: its detection
    /// has empty probabilities and its track keeps its own. A face classified where a box of
    /// `views` is expected (the same matching) is looked at as that says; any other with flip-tta
    /// both as seen and mirrored.
    static func analyse(luma: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, _ s: Settings,
                        _ model: FacialExpressionModel, _ cascade: HaarCascade, plan: ScanPlan? = nil,
                        settled: [TrackBox] = [], views: [(box: TrackBox, view: FacialExpressionModel.FaceView)] = []) -> [TrackDetection] {
        var p = DetectionParameters()
        p.plan = plan
        p.minSize = s.minFaceSize(forHeight: height); p.scaleFactor = s.scaleFactor; p.minNeighbors = s.minNeighbors; p.threads = s.threads
        p.coarseStages = s.coarseStages
        var boxes = cascade.detect(grey: luma, width: width, height: height, stride: stride, parameters: p)
        boxes.sort { ($0.width * $0.height, $1.y, $1.x) > ($1.width * $1.height, $0.y, $0.x) }
        if s.maxFaces > 0 && boxes.count > s.maxFaces { boxes = Array(boxes.prefix(s.maxFaces)) }
        guard !boxes.isEmpty else { return [] }
        let found = boxes.map { TrackBox(x: Double($0.x), y: Double($0.y), width: Double($0.width), height: Double($0.height)) }
        /// the index of the box of `expected` that `box` matches (intersection over union at least
        /// 0.5, the best not yet taken), marking it taken
        func match(_ box: TrackBox, _ expected: [TrackBox], _ taken: inout [Bool]) -> Int? {
            var best = -1, bestOverlap = 0.5
            for (k, sb) in expected.enumerated() where !taken[k] {
                let o = box.iou(sb)
                if o >= bestOverlap { best = k; bestOverlap = o }
            }
            if best >= 0 { taken[best] = true }
            return best >= 0 ? best : nil
        }
        var taken = [Bool](repeating: false, count: settled.count)
        let classify = found.map { match($0, settled, &taken) == nil }
        var viewTaken = [Bool](repeating: false, count: views.count)
        let viewBoxes = views.map(\.box)
        let faceViews = found.indices.filter { classify[$0] }.map { i -> FacialExpressionModel.FaceView in
            match(found[i], viewBoxes, &viewTaken).map { views[$0].view } ?? (s.flipTTA ? .both : .asSeen)
        }
        let side = model.inputSize.width
        let crops = boxes.indices.filter { classify[$0] }.map { i in
            FaceCrop.crop(grey: luma, width: width, height: height, stride: stride,
                          box: (boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height), side: side, scale: s.cropScale)
        }
        // with flip TTA each classification carries its views (0: as seen, 1: mirrored), so that a
        // track classified one view at a time folds the mean of its latest two
        var results = crops.isEmpty ? [] : model.predictViews(faces: crops, views: faceViews)[...]
        return found.indices.map { i in
            guard classify[i] else { return TrackDetection(box: found[i], probabilities: []) }
            let r = results.removeFirst()
            if !s.flipTTA { return TrackDetection(box: found[i], probabilities: r.asSeen!) }
            var views: [Int: [Float]] = [:]
            views[0] = r.asSeen; views[1] = r.mirrored
            return TrackDetection(box: found[i], probabilities: FacialExpressionModel.combined(r), views: views)
        }
    }

    /// The `ferfilter` element message, shaped like facedetect's (every frame, or on change).
    func postMessage(_ faces: [EmotionFace], times: FrameTimes, mode: MessageMode) {
        if mode == .none { return }
        if mode == .onChange {
            let sig = FaceMeta.signature(faces)
            if sig == lastSignature { return }
            lastSignature = sig
        }
        _ = gstfer_post_element_message(element, FaceMeta.message(faces, times: times))
    }

    /// `ferfilter-emotion-changed`: a track's shown label changed.
    func postLabelChange(_ c: LabelChange, times: FrameTimes, labels: [String]) {
        let st = gst_structure_new_empty("ferfilter-emotion-changed")!
        gstfer_structure_set_int(st, "id", gint(c.id))
        gstfer_structure_set_string(st, "emotion", labels[c.to])
        gstfer_structure_set_string(st, "previous", labels[c.from])
        if let tr = tracker.tracks.first(where: { $0.id == c.id }) { gstfer_structure_set_double(st, "confidence", Double(tr.confidence)) }
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
    func structure(live: Bool, latency: Double) -> UnsafeMutablePointer<GstStructure> {
        let st = gst_structure_new_empty("ferfilter-stats")!
        gstfer_structure_set_uint64(st, "frames", guint64(frames))
        gstfer_structure_set_uint64(st, "analysed", guint64(analysed))
        for (field, d) in [("between", AnalysisScheduler.Decision.interval), ("skipped-late", .late), ("skipped-busy", .busy), ("skipped-rate", .rate)] {
            gstfer_structure_set_uint64(st, field, guint64(skipped[d] ?? 0))
        }
        gstfer_structure_set_uint(st, "faces", guint(faces))
        gstfer_structure_set_uint64(st, "tracks", guint64(tracks))
        gstfer_structure_set_double(st, "analysis-ms-mean", analyses > 0 ? analysisSeconds / Double(analyses) * 1000 : 0)
        gstfer_structure_set_double(st, "analysis-ms-max", analysisMax * 1000)
        gstfer_structure_set_double(st, "frame-ms-mean", frames > 0 ? frameSeconds / Double(frames) * 1000 : 0)
        gstfer_structure_set_double(st, "frame-ms-max", frameMax * 1000)
        gstfer_structure_set_boolean(st, "live", live ? 1 : 0)
        gstfer_structure_set_double(st, "latency-ms", latency * 1000)
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
