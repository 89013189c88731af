import FaceDetect
import FaceTracking
import FERNet
import Foundation

/// A change of the label a track shows (hysteresis passed), with the track's confidence in the new one.
public struct EmotionChange: Sendable, Equatable {
    public var id: Int, from: Int, to: Int
    public var confidence: Float
}

/// The analysis of one video stream, frame after frame: what ferfilter does with a frame,
/// without GStreamer. Per frame it decides whether to analyse (`AnalysisScheduler`), what to search
/// and classify given the tracks (spread search, classify-interval, flip-alternate), runs the
/// analysis on the calling thread or, on a live source, beside the stream (one at a time), and
/// moves the tracks (`FaceTracker`).
///
/// Not thread-safe: one caller at a time (the streaming thread). Create one per stream; `restart`
/// when the frame size changes.
public final class StreamAnalyzer {
    /// What became of one frame.
    public struct Outcome: Sendable {
        public var decision: AnalysisScheduler.Decision
        /// The tracked faces to show on this frame (at most max-faces, in id order, clipped).
        public var faces: [FaceResult]
        /// Labels that changed on this frame.
        public var changes: [EmotionChange]
        /// Wall time of the analysis finished on this frame (this frame's, or on a live source an
        /// earlier frame's that ran beside the stream), seconds.
        public var analysisSeconds: Double?
        /// Tracks started since the analyser started.
        public var tracksStarted: Int
    }

    private let tracker = FaceTracker()
    private var scheduler = AnalysisScheduler()
    private let worker = AnalysisWorker()
    /// Analyses so far: the phase of the spread search and of the classification turns.
    private var analyses = 0
    /// Seconds between frames (from the caps; 1/30 until known).
    public private(set) var frameDuration = 1.0 / 30

    public init(frameDuration: Double? = nil) {
        if let frameDuration, frameDuration > 0 { self.frameDuration = frameDuration }
    }

    deinit { worker.reset() }

    /// Forgets the tracks and any analysis in flight (new frame size: boxes mean nothing now);
    /// keeps the schedule. `frameDuration` when the new caps give one.
    public func restart(frameDuration: Double?) {
        worker.reset(); tracker.reset()
        if let frameDuration, frameDuration > 0 { self.frameDuration = frameDuration }
    }

    /// Waits for an analysis in flight and drops everything (end of the stream).
    public func finish() { worker.reset(); tracker.reset() }

    /// The tracks as they stand.
    public var tracks: [Track] { tracker.tracks }

    /// One frame of `width` x `height` at stream time `time` (seconds). `late`: downstream said the
    /// frame is late; `live`: the source is live (with skip-late, analyses then run beside the
    /// stream and the frame never waits for one). `luma` is called only when the frame is analysed.
    public func process(_ width: Int, _ height: Int, time t: Double, late: Bool = false, live: Bool = false,
                        settings s: AnalysisSettings, model: FacialExpressionModel, detector: any FaceDetector,
                        luma: () -> LumaPlane) -> Outcome {
        tracker.configuration.hold = s.trackHold
        tracker.configuration.smoothing = s.smoothing
        tracker.configuration.hysteresis = s.hysteresis
        let async = live && s.skipLate
        if !async && worker.isBusy { worker.drain() }
        var changes: [LabelChange] = []
        var analysisSeconds: Double? = nil
        if let r = worker.take() {
            analysisSeconds = r.seconds
            changes += tracker.update(r.detections, at: r.time)
        }
        let decision = scheduler.decide(time: t, late: late, busy: async && worker.isBusy, settings: s)
        if decision == .analyse {
            var guidance = self.guidance(s, at: t, analysis: analyses)
            // a live stream's analyses run beside it: its first looks upright only, as every
            // analysis after it may, so the latency it answers is not set by a three-way look
            if async && analyses == 0 { guidance.angles = [0] }
            analyses += 1
            let plane = luma()
            if !async {
                let a0 = DispatchTime.now().uptimeNanoseconds
                let detections = FrameAnalysis.analyse(plane, settings: s, model: model, detector: detector, guidance: guidance)
                analysisSeconds = Double(DispatchTime.now().uptimeNanoseconds - a0) / 1e9
                changes += tracker.update(detections, at: t)
            } else {
                // the frame goes on now: the analysis reads a copy
                let (w, h) = (plane.width, plane.height)
                var copy = [UInt8](repeating: 0, count: w * h)
                copy.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<h { (dst.baseAddress! + y * w).update(from: plane.pixels + y * plane.stride, count: w) }
                }
                let colour = plane.colour?.copy(width: w, height: h)
                worker.submit(time: t) {
                    copy.withUnsafeBufferPointer { grey in
                        func run(_ c: ColourSource?) -> [TrackDetection] {
                            FrameAnalysis.analyse(LumaPlane(pixels: grey.baseAddress!, width: w, height: h, stride: w, colour: c), settings: s,
                                                  model: model, detector: detector, guidance: guidance)
                        }
                        return colour.map { $0.with(run) } ?? run(nil)
                    }
                }
                tracker.predict(at: t)
            }
        } else {
            tracker.predict(at: t)
        }
        let faces = visibleFaces(s.maxFaces, width: width, height: height)
        let tracks = tracker.tracks
        let reported = changes.map { c in
            EmotionChange(id: c.id, from: c.from, to: c.to, confidence: tracks.first { $0.id == c.id }?.confidence ?? 0)
        }
        return Outcome(decision: decision, faces: faces, changes: reported, analysisSeconds: analysisSeconds,
                       tracksStarted: tracker.tracksStarted)
    }

    /// Records the wall time a frame spent in the caller (for `latency`).
    public func spent(_ seconds: Double) { scheduler.spent(seconds) }

    /// The latency the analysis adds: the 95th percentile of recent frames' time, at least a frame.
    public func latency(frameDuration d: Double) -> Double { scheduler.latency(frameDuration: d) }

    /// What analysis number `n` at time `t` searches and classifies, from the tracks:
    /// - the plan: with scan-spread N > 1 and faces tracked, one of N bands of window rows at every
    ///   pyramid level (in turn) and, at the sizes each tracked face may have, the area around it;
    ///   without tracks (a new scene), everything;
    /// - settled faces: with classify-interval N, a track is classified when (n + its id) is a
    ///   multiple of N, so the tracks take turns; one missed on the last analysis is classified too;
    /// - views: with flip-tta, flip-alternate and smoothing, a tracked face classified now is looked
    ///   at mirrored after an odd number of classifications, as seen after an even one; the
    ///   tracker folds the mean of that view and the track's latest of the other, so a steady face
    ///   gets exactly flip TTA's probabilities at half the work.
    func guidance(_ s: AnalysisSettings, at t: Double, analysis n: Int) -> AnalysisGuidance {
        let tracks = tracker.tracks
        let expected = tracker.expectedBoxes(at: t)
        var g = AnalysisGuidance()
        let spread = s.scanSpread(frameDuration: frameDuration)
        let tilts = tracks.map { StreamAnalyzer.tilt(landmarks: $0.landmarks) }
        if spread > 1 && !expected.isEmpty {
            let regions = zip(expected, tilts).map { box, tilt in
                ScanRegion.around(x: box.x, y: box.y, width: box.width, height: box.height, angle: abs(tilt) >= 8 ? tilt : 0)
            }
            g.plan = ScanPlan(period: spread, phase: n % spread, regions: regions)
        }
        g.angles = StreamAnalyzer.angles(s, analysis: n, spread: g.plan == nil ? 1 : spread, tracked: expected.isEmpty ? nil : tilts)
        let interval = s.classifyInterval(frameDuration: frameDuration)
        if interval > 1 {
            g.settled = zip(tracks, expected).compactMap { tr, box in tr.detected && (n + tr.id) % interval != 0 ? box : nil }
        }
        if s.flipTTA && s.flipAlternate && s.smoothing > 0 {
            g.views = zip(tracks, expected).map { tr, box in .init(box: box, view: tr.classifications % 2 == 1 ? .mirrored : .asSeen) }
        }
        return g
    }

    /// The turns at which analysis number `n` looks at the whole frame (empty: not at all, only
    /// at the tracked faces' regions), with `search-tilt` t and a spread search of `spread`
    /// analyses (1: none; the whole frame every time):
    /// - the first analysis of a stream, like a still picture: 0, -t and t;
    /// - no face tracked: upright every time, and every fourth analysis -t or t in turn as well
    ///   (an eighth more work; a tilted head is found within eight analyses);
    /// - faces tracked (`tracked`: their tilts), spread search: upright on the whole-frame phase,
    ///   and on every fourth period -t or t in turn half-way through it (one run more in
    ///   4 x `spread` analyses, on a frame of its own: a new head tilted too far for the upright
    ///   search is found within 8 x `spread`); a tracked face's region is searched at its own tilt;
    /// - faces tracked, no spread search: upright, every other analysis -t or t in turn, and the
    ///   turn nearest a tracked face's tilt whenever that is far from upright.
    static func angles(_ s: AnalysisSettings, analysis n: Int, spread: Int, tracked: [Double]?) -> [Double] {
        let t = s.searchTilt
        guard s.detector == .yunet, t > 0 else { return spread > 1 && tracked != nil && n % spread != 0 ? [] : [0] }
        if n == 0 { return s.stillAngles }
        guard let tilts = tracked else { return n % 4 != 0 ? [0] : [0, n % 8 == 4 ? -t : t] }
        if spread > 1 {
            let phase = n % spread, k = n / spread
            if phase == 0 { return [0] }
            return phase == spread / 2 && k % 4 == 2 ? [k % 8 == 2 ? -t : t] : []
        }
        var angles: [Double] = n % 2 == 0 ? [0] : [0, n % 4 == 1 ? -t : t]
        for tilt in tilts where abs(tilt) >= t / 2 && !angles.contains(tilt < 0 ? -t : t) { angles.append(tilt < 0 ? -t : t) }
        return angles
    }

    /// A face's tilt in degrees (clockwise on screen) from its landmarks (x, y pairs: right eye,
    /// left eye, ...): the angle of the line between the eyes; 0 without landmarks.
    static func tilt(landmarks l: [Double]) -> Double {
        guard l.count >= 4 else { return 0 }
        return YuNetDetector.tilt([Landmark(x: l[0], y: l[1]), Landmark(x: l[2], y: l[3])])
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
                              probabilities: tr.probabilities, labelIndex: tr.label, landmarks: tr.landmarks)
        }
    }
}
