import Foundation

/// A face's box in frame pixels.
public struct FaceBox: Codable, Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
}

/// One face as the viewer shows it: the element's track id (nil for a still image), its box, the
/// shown emotion with its confidence, and all the probabilities by label.
public struct FaceReading: Codable, Sendable, Equatable {
    public var id: Int?
    public var box: FaceBox
    public var emotion: String
    public var confidence: Double
    public var probabilities: [String: Double]

    public init(id: Int?, box: FaceBox, emotion: String, confidence: Double, probabilities: [String: Double]) {
        self.id = id; self.box = box; self.emotion = emotion; self.confidence = confidence; self.probabilities = probabilities
    }
}

/// One analysed video frame: what ferfilter's `ferfilter` bus message said about it.
public struct FrameReading: Codable, Sendable {
    /// Frames read since the viewer started.
    public var frame: Int
    /// The frame's stream time in seconds (nil when the stream has none).
    public var streamTime: Double?
    /// When the reading arrived, in seconds since 1970.
    public var wallTime: Double
    /// The frame's SMPTE time code, when the stream carries one (left out of the JSON otherwise).
    public var timecode: String?
    public var faces: [FaceReading]

    enum CodingKeys: String, CodingKey { case frame, streamTime = "stream_time", wallTime = "wall_time", timecode, faces }

    public init(frame: Int, streamTime: Double?, wallTime: Double, timecode: String? = nil, faces: [FaceReading]) {
        self.frame = frame; self.streamTime = streamTime; self.wallTime = wallTime; self.timecode = timecode; self.faces = faces
    }
}

/// One second of the timeline: how many frames and face-frames it had, and the share of the
/// face-frames that showed each emotion (in label order).
public struct TimelinePoint: Codable, Sendable, Equatable {
    /// The second, as whole seconds since 1970.
    public var time: Int
    public var frames: Int
    public var faces: Int
    public var shares: [Double]
}

/// Share of each emotion per track and over all faces since the viewer started.
public struct EmotionSummary: Codable, Sendable {
    public struct Track: Codable, Sendable {
        public var id: Int
        public var frames: Int
        /// First and last seen, seconds since 1970.
        public var first: Double, last: Double
        /// The emotion the track showed last.
        public var emotion: String
        public var shares: [String: Double]
    }
    public var since: Double
    public var seconds: Double
    public var frames: Int
    public var faceFrames: Int
    public var labels: [String]
    public var overall: [String: Double]
    public var tracks: [Track]
    /// Tracks forgotten to bound memory (the oldest go first); they still count in `overall`.
    public var tracksDropped: Int

    enum CodingKeys: String, CodingKey {
        case since, seconds, frames, faceFrames = "face_frames", labels, overall, tracks, tracksDropped = "tracks_dropped"
    }
}

/// Keeps the counts behind `/api/v1/summary` and `/api/v1/timeline`: per-track and overall
/// emotion counts since start and a per-second history of the last `historySeconds`. Memory is
/// bounded: at most `maxTracks` tracks (the least recently seen are dropped) and one bucket per
/// second of history. Thread-safe.
public final class EmotionLedger: @unchecked Sendable {
    public let labels: [String]
    public let historySeconds: Int
    public let maxTracks: Int
    private let lock = NSLock()
    private let start: Double
    private var frames = 0
    private var overall: [Int]
    private struct Tally { var frames = 0; var first: Double; var last: Double; var counts: [Int]; var emotion = "" }
    private var tracks: [Int: Tally] = [:]
    private var dropped = 0
    private var buckets: [TimelinePoint] = []
    private var current: (time: Int, frames: Int, counts: [Int])?

    public init(labels: [String], historySeconds: Int = 600, maxTracks: Int = 1000, start: Double = Date().timeIntervalSince1970) {
        self.labels = labels; self.historySeconds = historySeconds; self.maxTracks = maxTracks; self.start = start
        overall = [Int](repeating: 0, count: labels.count)
    }

    /// Counts a frame. Returns the seconds that this frame completed (normally none or one), for
    /// the live feed's `tick` events.
    @discardableResult
    public func record(_ r: FrameReading) -> [TimelinePoint] {
        lock.lock(); defer { lock.unlock() }
        frames += 1
        var completed: [TimelinePoint] = []
        let second = Int(r.wallTime.rounded(.down))
        if let c = current, c.time != second {   // a new second (or the clock went back): close the old one
            completed.append(point(c))
            current = nil
        }
        if current == nil { current = (second, 0, [Int](repeating: 0, count: labels.count)) }
        current!.frames += 1
        for f in r.faces {
            guard let k = labels.firstIndex(of: f.emotion) else { continue }
            overall[k] += 1
            current!.counts[k] += 1
            guard let id = f.id else { continue }
            var t = tracks[id] ?? Tally(first: r.wallTime, last: r.wallTime, counts: [Int](repeating: 0, count: labels.count))
            t.frames += 1; t.last = r.wallTime; t.counts[k] += 1; t.emotion = f.emotion
            tracks[id] = t
        }
        if tracks.count > maxTracks {
            let excess = tracks.count - maxTracks
            for (id, _) in tracks.sorted(by: { $0.value.last < $1.value.last }).prefix(excess) { tracks[id] = nil }
            dropped += excess
        }
        buckets.append(contentsOf: completed)
        if buckets.count > historySeconds { buckets.removeFirst(buckets.count - historySeconds) }
        return completed
    }

    private func point(_ c: (time: Int, frames: Int, counts: [Int])) -> TimelinePoint {
        let n = c.counts.reduce(0, +)
        return TimelinePoint(time: c.time, frames: c.frames, faces: n, shares: c.counts.map { n > 0 ? Double($0) / Double(n) : 0 })
    }

    /// The completed seconds of the last `seconds` (at most `historySeconds`), oldest first.
    public func timeline(seconds: Int) -> [TimelinePoint] {
        lock.lock(); defer { lock.unlock() }
        guard let last = buckets.last else { return [] }
        return buckets.filter { $0.time > last.time - seconds }
    }

    public func summary(now: Double = Date().timeIntervalSince1970) -> EmotionSummary {
        lock.lock(); defer { lock.unlock() }
        func shares(_ counts: [Int]) -> [String: Double] {
            let n = counts.reduce(0, +)
            var out: [String: Double] = [:]
            for (k, l) in labels.enumerated() { out[l] = n > 0 ? Double(counts[k]) / Double(n) : 0 }
            return out
        }
        let list = tracks.keys.sorted().map { id -> EmotionSummary.Track in
            let t = tracks[id]!
            return .init(id: id, frames: t.frames, first: t.first, last: t.last, emotion: t.emotion, shares: shares(t.counts))
        }
        return EmotionSummary(since: start, seconds: now - start, frames: frames, faceFrames: overall.reduce(0, +), labels: labels,
                              overall: shares(overall), tracks: list, tracksDropped: dropped)
    }
}
