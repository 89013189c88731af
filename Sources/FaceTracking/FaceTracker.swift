import Foundation

/// A box in frame pixels (floating point: tracks move by fractions of a pixel between frames).
public struct TrackBox: Equatable, Sendable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public var centreX: Double { x + width / 2 }
    public var centreY: Double { y + height / 2 }

    /// The area this box shares with `o`.
    public func intersection(_ o: TrackBox) -> Double {
        max(0, min(x + width, o.x + o.width) - max(x, o.x)) * max(0, min(y + height, o.y + o.height) - max(y, o.y))
    }

    /// The share of this box's area that lies inside `o`.
    public func fractionInside(_ o: TrackBox) -> Double {
        width * height > 0 ? intersection(o) / (width * height) : 0
    }

    /// Intersection over union.
    public func iou(_ o: TrackBox) -> Double {
        let inter = intersection(o), union = width * height + o.width * o.height - inter
        return union > 0 ? inter / union : 0
    }
}

/// One face found by a detection pass, with the model's probabilities for it. Empty
/// probabilities: the face was not classified this time (its track keeps what it had); such a
/// detection moves a track but never starts one.
public struct TrackDetection: Sendable {
    public var box: TrackBox
    public var probabilities: [Float]
    /// Where the classifier looks at a face in two ways (ferfilter: as seen, 0, and mirrored, 1)
    /// and `probabilities` are their mean: the views this classification looked at. With one
    /// view, the track folds the mean of it and its latest of the other view, so that views taken
    /// in turns average as if both were taken each time. Empty: `probabilities` stand alone.
    public var views: [Int: [Float]]
    /// Points on the face the detector gave (x, y pairs in frame pixels; empty: none), kept with
    /// the track and moved with its box between detections.
    public var landmarks: [Double]
    public init(box: TrackBox, probabilities: [Float], views: [Int: [Float]] = [:], landmarks: [Double] = []) {
        self.box = box; self.probabilities = probabilities; self.views = views; self.landmarks = landmarks
    }
}

/// How tracks are kept and their labels smoothed.
public struct TrackerConfiguration: Sendable {
    /// Seconds a track lives on without being detected (it coasts on its last velocity).
    public var hold = 0.7
    /// Detection passes in a row a track always lives through without its face, however long they
    /// take: on a slow source (a few frames a second, or a browser's camera at the server's pace)
    /// `hold` may be shorter than two frames, and one missed detection would end the track.
    public var minMissedPasses = 2
    /// Time constant of the exponential smoothing of probabilities, in seconds; 0: no smoothing,
    /// the shown label is the latest classification's.
    public var smoothing = 0.4
    /// How far another emotion's smoothed probability must lead the shown one to replace it.
    public var hysteresis = 0.12
    /// Least intersection-over-union for a detection to continue a track by overlap.
    public var minIoU = 0.25
    public init() {}
}

/// A face followed over time.
public struct Track: Sendable {
    /// Unique within a tracker's life (never reused).
    public let id: Int
    public var box: TrackBox
    /// The box of the latest detection pass that found this face.
    public var detectedBox: TrackBox
    /// That detection's landmarks (x, y pairs; empty: none).
    public var detectedLandmarks: [Double] = []

    /// The landmarks where the box is now: those of the latest detection, moved and scaled as the
    /// box has moved since.
    public var landmarks: [Double] {
        guard !detectedLandmarks.isEmpty, detectedBox.width > 0, detectedBox.height > 0 else { return detectedLandmarks }
        let kx = box.width / detectedBox.width, ky = box.height / detectedBox.height
        return detectedLandmarks.enumerated().map { i, v in
            i % 2 == 0 ? box.x + (v - detectedBox.x) * kx : box.y + (v - detectedBox.y) * ky
        }
    }
    /// Pixels per second, of the box's corner and size.
    public var velocity = (x: 0.0, y: 0.0, width: 0.0, height: 0.0)
    public var firstSeen: Double, lastSeen: Double, lastUpdate: Double
    /// When the face was last classified (smoothing weighs a classification by the time since).
    public var classifiedAt: Double
    /// Detection passes that found this face.
    public var hits = 1
    /// Classifications folded into `probabilities` so far (1 when the track begins).
    public var classifications = 1
    /// The latest probabilities of each view (see `TrackDetection.views`).
    public var views: [Int: [Float]] = [:]
    /// Detection passes in a row that have not found this face.
    public var misses = 0
    /// Whether the latest detection pass found this face (false: the box is a prediction).
    public var detected: Bool { misses == 0 }
    /// The latest classification, and the smoothed probabilities the label comes from.
    public var rawProbabilities: [Float], probabilities: [Float]
    /// The label shown (index into the model's labels); changes only with hysteresis.
    public var label: Int
    public var confidence: Float { probabilities.isEmpty ? 0 : probabilities[label] }
}

/// A track whose shown label changed.
public struct LabelChange: Equatable, Sendable {
    public var id: Int, from: Int, to: Int
}

/// Keeps face identities across frames: detections are matched to the tracks' predicted boxes
/// (overlap first, then nearest centre), unmatched detections start tracks, tracks not seen for
/// `hold` seconds (and at least `minMissedPasses` detection passes) end. Between detection passes `predict` moves boxes along their velocity.
public final class FaceTracker {
    public var configuration: TrackerConfiguration
    public private(set) var tracks: [Track] = []
    private var nextID = 1

    public init(configuration: TrackerConfiguration = TrackerConfiguration()) { self.configuration = configuration }

    public func reset() { tracks = []; nextID = 1 }

    /// Tracks started since the last reset (each new face one).
    public var tracksStarted: Int { nextID - 1 }

    /// Where a track's box is expected at time t.
    func predicted(_ tr: Track, at t: Double) -> TrackBox {
        let dt = max(0, min(t - tr.lastUpdate, 1))
        var b = tr.box
        b.x += tr.velocity.x * dt; b.y += tr.velocity.y * dt
        b.width = max(4, b.width + tr.velocity.width * dt); b.height = max(4, b.height + tr.velocity.height * dt)
        return b
    }

    /// Where each track's face is expected at time t (its box moved along its velocity).
    public func expectedBoxes(at t: Double) -> [TrackBox] { tracks.map { predicted($0, at: t) } }

    /// Moves every track to its predicted position at time t (a frame without detection).
    public func predict(at t: Double) {
        for i in tracks.indices {
            tracks[i].box = predicted(tracks[i], at: t)
            tracks[i].lastUpdate = t
        }
    }

    /// A detection pass at time t (seconds, increasing). Returns the tracks whose shown label changed.
    @discardableResult
    public func update(_ detections: [TrackDetection], at t: Double) -> [LabelChange] {
        let boxes = tracks.map { predicted($0, at: t) }
        var trackFor = [Int?](repeating: nil, count: detections.count)
        var taken = [Bool](repeating: false, count: tracks.count)
        // 1. greedy by overlap
        var pairs: [(Double, Int, Int)] = []
        for (d, det) in detections.enumerated() {
            for (k, b) in boxes.enumerated() {
                let o = det.box.iou(b)
                if o >= configuration.minIoU { pairs.append((o, d, k)) }
            }
        }
        for (_, d, k) in pairs.sorted(by: { $0.0 > $1.0 }) where trackFor[d] == nil && !taken[k] {
            trackFor[d] = k; taken[k] = true
        }
        // 2. what is left, by centre distance relative to size (fast motion, long detection gaps)
        var near: [(Double, Int, Int)] = []
        for (d, det) in detections.enumerated() where trackFor[d] == nil {
            for (k, b) in boxes.enumerated() where !taken[k] {
                let size = (b.width + det.box.width) / 2
                let dist = hypot(det.box.centreX - b.centreX, det.box.centreY - b.centreY) / size
                let ratio = det.box.width / b.width
                if dist < 0.6 && ratio > 0.6 && ratio < 1.6 { near.append((dist, d, k)) }
            }
        }
        for (_, d, k) in near.sorted(by: { $0.0 < $1.0 }) where trackFor[d] == nil && !taken[k] {
            trackFor[d] = k; taken[k] = true
        }
        // 2b. a larger detection holding most of a track's box: the track began on part of the face
        //     (the cascade fires on parts of faces) and the whole face is found now. It continues
        //     the track (same id, same smoothed probabilities); the jump in size is not motion.
        var whole: [(Double, Int, Int)] = []
        for (d, det) in detections.enumerated() where trackFor[d] == nil {
            for (k, b) in boxes.enumerated() where !taken[k] && b.width < det.box.width {
                let inside = b.fractionInside(det.box)
                if inside > 0.6 { whole.append((inside, d, k)) }
            }
        }
        var regrown = Set<Int>()
        for (_, d, k) in whole.sorted(by: { $0.0 > $1.0 }) where trackFor[d] == nil && !taken[k] {
            trackFor[d] = k; taken[k] = true; regrown.insert(d)
        }

        // 3. a detection lying mostly inside a face already tracked is a part of that face (the
        //    cascade fires on parts of large faces): it keeps the track alive and starts nothing
        var partOf = [Int?](repeating: nil, count: detections.count)
        for (d, det) in detections.enumerated() where trackFor[d] == nil {
            partOf[d] = boxes.indices.max { det.box.fractionInside(boxes[$0]) < det.box.fractionInside(boxes[$1]) }
                .flatMap { det.box.fractionInside(boxes[$0]) > 0.6 ? $0 : nil }
        }
        var changes: [LabelChange] = []
        for k in tracks.indices where !taken[k] && partOf.contains(k) {
            taken[k] = true
            tracks[k].box = boxes[k]; tracks[k].lastUpdate = t; tracks[k].lastSeen = t; tracks[k].misses = 0
        }
        for k in tracks.indices where !taken[k] {
            // not found: coasts on at constant velocity until found again or `hold` runs out
            tracks[k].box = boxes[k]; tracks[k].lastUpdate = t; tracks[k].misses += 1
        }
        for (d, det) in detections.enumerated() where partOf[d] == nil {
            if let k = trackFor[d] {
                var tr = tracks[k]
                let dt = t - tr.lastSeen
                if regrown.contains(d) {
                    tr.velocity = (0, 0, 0, 0)
                } else if dt > 0 {
                    let old = tr.detectedBox
                    let m = (x: (det.box.x - old.x) / dt, y: (det.box.y - old.y) / dt,
                             w: (det.box.width - old.width) / dt, h: (det.box.height - old.height) / dt)
                    let a = tr.hits == 1 ? 1.0 : 0.5
                    tr.velocity = (tr.velocity.x + a * (m.x - tr.velocity.x), tr.velocity.y + a * (m.y - tr.velocity.y),
                                   tr.velocity.width + a * (m.w - tr.velocity.width), tr.velocity.height + a * (m.h - tr.velocity.height))
                }
                tr.box = det.box; tr.detectedBox = det.box; tr.detectedLandmarks = det.landmarks; tr.lastSeen = t; tr.lastUpdate = t; tr.hits += 1; tr.misses = 0
                if let ch = classify(&tr, det, dt: t - tr.classifiedAt) { changes.append(ch) }
                if !det.probabilities.isEmpty { tr.classifiedAt = t }
                tracks[k] = tr
            } else if !det.probabilities.isEmpty {
                let p = det.probabilities
                var track = Track(id: nextID, box: det.box, detectedBox: det.box, firstSeen: t, lastSeen: t, lastUpdate: t,
                                  classifiedAt: t, views: det.views, rawProbabilities: p, probabilities: p, label: FaceTracker.argmax(p))
                track.detectedLandmarks = det.landmarks
                tracks.append(track)
                nextID += 1
            }
        }
        tracks.removeAll { t - $0.lastSeen > configuration.hold && $0.misses > configuration.minMissedPasses }
        // a coasting track now mostly inside a detected face is the same face seen twice
        let found = tracks.filter(\.detected).map(\.box)
        tracks.removeAll { tr in !tr.detected && found.contains { tr.box.fractionInside($0) > 0.6 && tr.box != $0 } }
        return changes
    }

    /// Folds a new classification into a track: exponential smoothing over time, and a label that
    /// moves only when another emotion leads by the hysteresis margin.
    func classify(_ tr: inout Track, _ det: TrackDetection, dt: Double) -> LabelChange? {
        var p = det.probabilities
        guard !p.isEmpty else { return nil }
        if det.views.isEmpty {
            tr.views = [:]
        } else {
            tr.views.merge(det.views) { _, new in new }
            if det.views.count == 1, let a = tr.views[0], let b = tr.views[1], a.count == p.count, b.count == p.count {
                p = zip(a, b).map { 0.5 * ($0 + $1) }   // the same sum, in the same order, as a classification of both
            }
        }
        tr.rawProbabilities = p
        tr.classifications += 1
        let old = tr.label
        if configuration.smoothing <= 0 || tr.probabilities.count != p.count {
            tr.probabilities = p
            tr.label = FaceTracker.argmax(p)
        } else {
            let a = Float(1 - exp(-max(0, dt) / configuration.smoothing))
            for i in p.indices { tr.probabilities[i] += a * (p[i] - tr.probabilities[i]) }
            let best = FaceTracker.argmax(tr.probabilities)
            if best != tr.label && tr.probabilities[best] - tr.probabilities[tr.label] >= Float(configuration.hysteresis) {
                tr.label = best
            }
        }
        return tr.label != old ? LabelChange(id: tr.id, from: old, to: tr.label) : nil
    }

    static func argmax(_ p: [Float]) -> Int {
        var k = 0
        for i in p.indices where p[i] > p[k] { k = i }
        return k
    }
}
