import FaceTracking
import Foundation

/// Decides frame by frame whether a stream's analyser (ferfilter's) analyses (detects and classifies) a frame or only
/// moves its tracks.
///
/// - `detect-interval` and `max-analysis-rate` space analyses out by frames and by time.
/// - With `skip-late`: a frame downstream already reported late (QoS) is not analysed, and on a
///   live source analyses run beside the stream (`AnalysisWorker`), one at a time, so a frame is
///   never held back by one: frames that come while an analysis is running only follow the tracks.
public struct AnalysisScheduler: Sendable {
    /// What happens to a frame: analysed, or not for one of four reasons.
    public enum Decision: String, Sendable { case analyse, interval, rate, late, busy }

    private(set) var framesSinceAnalysis = Int.max / 2
    private(set) var lastAnalysisTime: Double?
    /// Wall times of recent frames in the streaming thread, seconds (for the latency reported).
    private var recent: [Double] = []

    public init() {}

    public mutating func reset() { self = AnalysisScheduler() }

    /// Whether to analyse the frame at stream time `t` (seconds).
    public mutating func decide(time t: Double, late: Bool, busy: Bool, settings s: AnalysisSettings) -> Decision {
        let decision: Decision
        if framesSinceAnalysis + 1 < s.detectInterval {
            decision = .interval
        } else if s.maxAnalysisRate > 0, let last = lastAnalysisTime, t >= last, t - last < 1 / s.maxAnalysisRate - 1e-4 {
            decision = .rate
        } else if s.skipLate && late {
            decision = .late
        } else if busy {
            decision = .busy
        } else {
            decision = .analyse
        }
        if decision == .analyse { framesSinceAnalysis = 0; lastAnalysisTime = t } else { framesSinceAnalysis += 1 }
        return decision
    }

    /// Records the wall time a frame spent in the streaming thread.
    public mutating func spent(_ seconds: Double) {
        recent.append(seconds)
        if recent.count > 64 { recent.removeFirst(recent.count - 64) }
    }

    /// The latency the element adds: the 95th percentile of recent frames' time in the element,
    /// at least one frame duration.
    public func latency(frameDuration d: Double) -> Double {
        guard !recent.isEmpty else { return d }
        let sorted = recent.sorted()
        return max(d, sorted[min(sorted.count - 1, sorted.count * 95 / 100)])
    }
}

/// Runs analyses off the streaming thread, one at a time; the streaming thread collects the
/// result on a later frame.
final class AnalysisWorker: @unchecked Sendable {
    struct Result: @unchecked Sendable {
        var detections: [TrackDetection]
        /// Stream time of the analysed frame, and the wall time the analysis took.
        var time: Double, seconds: Double
    }

    private let queue = DispatchQueue(label: "ferfilter.analysis", qos: .userInitiated)
    private let lock = NSLock()
    private var busy = false
    private var result: Result?
    private var generation = 0

    var isBusy: Bool { lock.lock(); defer { lock.unlock() }; return busy }

    /// Starts `work` for the frame at stream time `time`; the caller checked `isBusy`.
    func submit(time: Double, _ work: @escaping () -> [TrackDetection]) {
        lock.lock(); busy = true; let gen = generation; lock.unlock()
        queue.async { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            let d = work()
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.lock()
            if gen == generation { result = Result(detections: d, time: time, seconds: secs) }
            busy = false
            lock.unlock()
        }
    }

    /// The finished analysis not yet collected, if any.
    func take() -> Result? {
        lock.lock(); defer { lock.unlock() }
        let r = result; result = nil
        return r
    }

    /// Waits for the analysis in flight, if any.
    func drain() { queue.sync {} }

    /// Waits for the analysis in flight and forgets its result (new caps, restart).
    func reset() {
        lock.lock(); generation += 1; result = nil; lock.unlock()
        drain()   // the job in flight sees the new generation and drops its result
    }
}
