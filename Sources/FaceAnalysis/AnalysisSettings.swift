import FaceDetect
import Foundation

/// How frames are analysed: detection, crops, classification, tracking and the schedule of the
/// work. ferfilter's properties of the same names set these; `fer serve`'s analyze API, camera
/// sessions, `fer detect` and `fer crop-check` use the same defaults, so all of them give the
/// same answer for the same picture.
public struct AnalysisSettings: Sendable, Equatable {
    /// Which face detector finds the faces.
    public var detector = DetectorKind.yunet
    /// YuNet: faces scoring below this are not reported.
    public var detectionThreshold = 0.6
    /// YuNet: the longer side of the picture the network sees on a whole-frame search (larger
    /// frames are scaled down to it; 0: the frame's own size).
    public var detectionSize = 640
    /// YuNet: heads tilted by about this many degrees are looked for too (the whole frame turned
    /// each way; a still picture is looked at three ways at once, a video in turns, and a tracked
    /// face's region at its own tilt); 0: upright only (faces tilted up to about 20 degrees).
    public var searchTilt = 25.0
    /// Smallest face looked for, pixels; 0: automatic (`minFaceSize(forHeight:)`).
    public var minFaceSize = 0
    /// Haar cascade: scale step between pyramid levels, neighbours a face needs, coarse-to-fine stages.
    public var scaleFactor = 1.25
    public var minNeighbors = 3
    public var coarseStages = DetectionParameters().coarseStages
    /// Analyse every Nth frame; the frames between follow the tracks.
    public var detectInterval = 1
    /// Most faces classified per frame, largest first (0: no limit).
    public var maxFaces = 20
    /// Size of the face crop given to the model relative to the detected box.
    public var cropScale = 1.0
    /// Average each face with its mirror image.
    public var flipTTA = true
    /// With `flipTTA`: a tracked face is classified as seen and mirrored on alternate turns, and
    /// the smoothing averages the two (new faces, and every face with smoothing 0, get both at once).
    public var flipAlternate = true
    /// Tracker: probability smoothing (seconds), label hysteresis, seconds a lost face is held.
    public var smoothing = 0.4
    public var hysteresis = 0.12
    public var trackHold = 0.7
    /// Most analyses per second of stream (0: no limit).
    public var maxAnalysisRate = 0.0
    /// Skip analysis on late frames, and on a live source run analyses beside the stream.
    public var skipLate = true
    /// Threads for detection and classification (0: one per core). Per analysis: two analysers
    /// in one process each keep their own.
    public var threads = 0
    /// The full-frame search for new faces is spread over this many analysed frames; tracked faces
    /// are searched for around their expected boxes on every one (1: the whole pyramid each time;
    /// 0: automatic, `scanSpread(frameDuration:)`).
    public var scanSpread = 0
    /// A tracked face is classified again on every Nth analysed frame (tracks take turns); a new
    /// face, or one found again after a miss, at once (0: automatic, `classifyInterval(frameDuration:)`).
    public var classifyInterval = 0

    public init() {}

    /// The turns at which a whole still picture is searched: upright, and with `searchTilt` both
    /// ways (YuNet only: the cascade looks upright).
    public var stillAngles: [Double] {
        detector == .yunet && searchTilt > 0 ? [0, -searchTilt, searchTilt] : [0]
    }

    /// The smallest face looked for in a frame `height` pixels tall: min-face-size, or when it is 0,
    /// 1/16 of the height but at least 30. Smaller faces hold less than the model's 48x48 input,
    /// and each smaller pyramid level costs more than all the larger ones together.
    public func minFaceSize(forHeight height: Int) -> Int {
        minFaceSize > 0 ? minFaceSize : max(30, height / 16)
    }

    /// Automatic classify-interval: each tracked face is classified at least this many times per
    /// second of stream (or on every other analysed frame where there are fewer than 24 a
    /// second). With the default smoothing (0.4 s) the labels are those of classifying every face
    /// on every frame (tested); the work no longer grows with the frame rate.
    public static let automaticClassificationsPerSecond = 12.0
    /// Automatic scan-spread: the whole frame is searched for new faces at least once in this many
    /// seconds of stream (four frames at 30 fps, nine at 60), or over two analysed frames where
    /// fewer fit.
    public static let automaticScanSeconds = 0.15

    /// Analyses per second of stream at frames `frameDuration` seconds apart: one every
    /// detect-interval frames, at most max-analysis-rate.
    public func analysesPerSecond(frameDuration: Double) -> Double {
        let r = 1 / max(frameDuration, 1e-3) / Double(max(detectInterval, 1))
        return maxAnalysisRate > 0 ? min(r, maxAnalysisRate) : r
    }

    /// classify-interval, or when it is 0 the largest that still classifies each tracked face
    /// `automaticClassificationsPerSecond` times a second, but at least 2 (every other analysed
    /// frame: 2 at 25 and 30 fps and with detect-interval 3; 4 at 50 fps, 5 at 60).
    public func classifyInterval(frameDuration: Double) -> Int {
        guard classifyInterval == 0 else { return classifyInterval }
        let n = (analysesPerSecond(frameDuration: frameDuration) / AnalysisSettings.automaticClassificationsPerSecond).rounded(.down)
        return Int(min(100, max(2, n)))
    }

    /// scan-spread, or when it is 0 the most analysed frames that fit in `automaticScanSeconds`,
    /// but at least 2 (4 at 30 fps, 3 at 25, 7 at 50, 9 at 60; 2 with detect-interval 3).
    public func scanSpread(frameDuration: Double) -> Int {
        guard scanSpread == 0 else { return scanSpread }
        let n = (analysesPerSecond(frameDuration: frameDuration) * AnalysisSettings.automaticScanSeconds + 1e-9).rounded(.down)
        return Int(min(16, max(2, n)))
    }

    /// The Haar detector these settings tune.
    public func haar(_ cascade: HaarCascade) -> HaarDetector {
        HaarDetector(cascade: cascade, scaleFactor: scaleFactor, minNeighbors: minNeighbors, coarseStages: coarseStages)
    }

    /// The detector these settings choose, loaded from its file (the cascade XML or YuNet's ONNX),
    /// tuned by them.
    public func makeDetector(cascade: String, yunet: String) throws -> any FaceDetector {
        switch detector {
        case .haar: return haar(try HaarCascade(contentsOf: cascade))
        case .yunet: return self.yunet(try YuNetDetector(path: yunet))
        }
    }

    /// The YuNet detector these settings tune.
    public func yunet(_ network: YuNetDetector) -> YuNetDetector {
        var d = network
        d.scoreThreshold = detectionThreshold
        d.inputSize = detectionSize > 0 ? detectionSize : Int.max
        return d
    }

    /// The cascade GstFER uses unless told otherwise (Debian's opencv-data).
    public static let defaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
}

/// The face detectors GstFER has (ferfilter's `detector` property; the raw values are its enum's).
public enum DetectorKind: Int32, Sendable, CaseIterable {
    /// YuNet, a small CNN: faces at any angle and size, with five landmarks (the default).
    case yunet = 0
    /// OpenCV's Haar cascade (the `cascade` file): upright frontal faces, no landmarks.
    case haar = 1

    public var name: String { self == .yunet ? "yunet" : "haar" }
    public init?(name: String) {
        guard let k = DetectorKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }
}
