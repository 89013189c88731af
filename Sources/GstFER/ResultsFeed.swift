import CGStreamer
import FaceAnalysis
import Foundation

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
final class ResultsFeed {
    let path: String
    private let handle: FileHandle
    private let closeOnFinish: Bool
    private var frames = 0
    private var firstTime: Double?, lastTime = 0.0
    private var overall: [Int: Int] = [:]
    private struct TrackStats {
        var frames = 0; var first = 0.0; var last = 0.0; var labels: [Int: Int] = [:]
        var firstTimecode: String?, lastTimecode: String?
    }
    private var tracks: [Int: TrackStats] = [:]
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
    }

    private func emit(_ object: [String: Any]) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        try? handle.write(contentsOf: data)
    }

    private static func seconds(_ t: GstClockTime) -> Any { t == clockTimeNone ? NSNull() : Double(t) / 1e9 }

    /// One frame's faces; `time` is the frame's time in seconds for the summary.
    func frame(_ faces: [EmotionFace], times: FrameTimes, time: Double) {
        guard !finished else { return }
        if firstTime == nil { firstTime = time }
        lastTime = time
        let list = faces.map { $0.jsonObject() }
        var line: [String: Any] = ["frame": frames, "pts": ResultsFeed.seconds(times.pts), "stream_time": ResultsFeed.seconds(times.stream),
                                   "running_time": ResultsFeed.seconds(times.running), "wall_time": ResultsFeed.iso.string(from: Date()),
                                   "faces": list]
        if let tc = times.timecode { line["timecode"] = tc }
        emit(line)
        frames += 1
        for f in faces {
            overall[f.labelID, default: 0] += 1
            var s = tracks[f.id] ?? TrackStats(first: time, firstTimecode: times.timecode)
            s.frames += 1; s.last = time; s.lastTimecode = times.timecode; s.labels[f.labelID, default: 0] += 1
            tracks[f.id] = s
        }
    }

    /// Writes the summary line and closes the file (once; later calls do nothing).
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
                          "overall": shares(overall), "tracks": trackList] as [String: Any]])
        if closeOnFinish { try? handle.close() } else { try? handle.synchronize() }
    }
}
