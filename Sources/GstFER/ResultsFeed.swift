import CGStreamer
import FaceAnalysis
import Foundation
import MQTTPublish

/// The `results` property's output: one JSON object per frame (JSON Lines) and a summary at the
/// end of the stream, so any tool can follow the emotions over time (`tail -f`, jq, pandas).
///
///     {"frame":12,"pts":0.4,"stream_time":0.4,"running_time":0.4,"wall_time":"2026-11-25T09:45:00.123Z",
///      "timecode":"10:00:00:12","faces":[{"id":1,"x":120,"y":64,"width":140,"height":140,"emotion":"happy","label_id":3,"confidence":0.87,
///                "probabilities":[...7 numbers in label order...]}]}
///     {"summary":{"frames":300,"seconds":10.0,"labels":[...],"overall":{"happy":0.61,...},
///                 "tracks":[{"id":1,"frames":298,"first":0.0,"last":9.93,"first_timecode":"10:00:00:00",
///                            "last_timecode":"10:00:09:28","shares":{"happy":0.62,...}}]}}
///
/// Shares are the fraction of frames each emotion was shown (per track, and over all faces).
/// `timecode` (a line's) and `first_timecode`/`last_timecode` (a track's in and out points) are
/// there when the frames carry SMPTE time codes (GstVideoTimeCodeMeta, or the sender's SEI).
///
/// The same lines go to an MQTT broker (the `publish` property): each frame's line to
/// `prefix/frames`, the summary (retained) to `prefix/summary`, and each label change to
/// `prefix/changes`; see `change`.
final class ResultsFeed {
    /// The file's path; nil when the feed publishes.
    let path: String?
    private let handle: FileHandle?
    private let closeOnFinish: Bool
    let publisher: MQTTPublisher?
    private var frames = 0
    private var firstTime: Double?, lastTime = 0.0
    private var overall: [Int: Int] = [:]
    private struct TrackStats {
        var frames = 0; var first = 0.0; var last = 0.0; var labels: [Int: Int] = [:]
        var firstTimecode: String?, lastTimecode: String?
    }
    private var tracks: [Int: TrackStats] = [:]
    /// Each track's label on the last frame it was on (for the changes).
    private var shown: [Int: String] = [:]
    private var finished = false
    private static let iso: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter(); f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]; return f
    }()

    /// Opens (truncates) `path`; "-" or "stdout" writes to standard output.
    init(path: String) throws {
        self.path = path
        if path == "-" || path == "stdout" {
            handle = FileHandle.standardOutput; closeOnFinish = false
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
            handle = h; closeOnFinish = true
        }
        publisher = nil
    }

    /// Publishes to `publisher`'s broker (which the caller closes after `finish`).
    init(publisher: MQTTPublisher) {
        path = nil; handle = nil; closeOnFinish = false
        self.publisher = publisher
    }

    private func emit(_ object: [String: Any], topic: String, retain: Bool = false) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        if let publisher { publisher.publish(topic, data, retain: retain); return }
        data.append(0x0A)
        try? handle?.write(contentsOf: data)
    }

    /// A track's shown label changed from the last frame it was on (published only; the file has
    /// the frames); ferfilter's `ferfilter-emotion-changed` message, as JSON:
    ///
    ///     {"id":1,"emotion":"happy","previous":"neutral","confidence":0.71,"pts":3.2,"stream_time":3.2,
    ///      "running_time":3.2,"wall_time":"2026-12-08T09:45:00.123Z","timecode":"10:00:03:06"}
    private func change(_ f: EmotionFace, from previous: String, times: FrameTimes, wall: String) {
        var line: [String: Any] = ["id": f.id, "emotion": f.emotion, "previous": previous, "confidence": Double(f.confidence),
                                   "pts": ResultsFeed.seconds(times.pts), "stream_time": ResultsFeed.seconds(times.stream),
                                   "running_time": ResultsFeed.seconds(times.running), "wall_time": wall]
        if let tc = times.timecode { line["timecode"] = tc }
        emit(line, topic: "changes")
    }

    private static func seconds(_ t: GstClockTime) -> Any { t == clockTimeNone ? NSNull() : Double(t) / 1e9 }

    /// One frame's faces; `time` is the frame's time in seconds for the summary.
    func frame(_ faces: [EmotionFace], times: FrameTimes, time: Double) {
        // a frame after the summary: the stream went on after its end (a seek after EOS, as a
        // looping player does); published, it starts anew from frame 0 (a file has ended)
        if finished && publisher != nil {
            finished = false; frames = 0; firstTime = nil; overall = [:]; tracks = [:]; shown = [:]
        }
        guard !finished else { return }
        if firstTime == nil { firstTime = time }
        lastTime = time
        let list = faces.map { $0.jsonObject() }
        let wall = ResultsFeed.iso.string(from: Date())
        var line: [String: Any] = ["frame": frames, "pts": ResultsFeed.seconds(times.pts), "stream_time": ResultsFeed.seconds(times.stream),
                                   "running_time": ResultsFeed.seconds(times.running), "wall_time": wall,
                                   "faces": list]
        if let tc = times.timecode { line["timecode"] = tc }
        emit(line, topic: "frames")
        if publisher != nil {
            for f in faces {
                if let before = shown[f.id], before != f.emotion { change(f, from: before, times: times, wall: wall) }
                shown[f.id] = f.emotion
            }
        }
        frames += 1
        for f in faces {
            overall[f.labelID, default: 0] += 1
            var s = tracks[f.id] ?? TrackStats(first: time, firstTimecode: times.timecode)
            s.frames += 1; s.last = time; s.lastTimecode = times.timecode; s.labels[f.labelID, default: 0] += 1
            tracks[f.id] = s
        }
    }

    /// Writes the summary line and closes the file, or publishes it retained (once; later calls do nothing).
    func finish(labels: [String]) {
        guard !finished else { return }
        finished = true
        func shares(_ counts: [Int: Int]) -> [String: Double] {
            let total = counts.values.reduce(0, +)
            var out: [String: Double] = [:]
            for (k, n) in counts where k >= 0 && k < labels.count { out[labels[k]] = total > 0 ? Double(n) / Double(total) : 0 }
            return out
        }
        let trackList: [[String: Any]] = tracks.keys.sorted().map { id in
            let s = tracks[id]!
            var o: [String: Any] = ["id": id, "frames": s.frames, "first": s.first, "last": s.last, "shares": shares(s.labels)]
            if let tc = s.firstTimecode { o["first_timecode"] = tc }
            if let tc = s.lastTimecode { o["last_timecode"] = tc }
            return o
        }
        emit(["summary": ["frames": frames, "seconds": lastTime - (firstTime ?? lastTime), "labels": labels,
                          "overall": shares(overall), "tracks": trackList] as [String: Any]], topic: "summary", retain: true)
        if closeOnFinish { try? handle?.close() } else { try? handle?.synchronize() }
    }
}
