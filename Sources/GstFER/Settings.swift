import CGStreamer
import FaceDetect
import Foundation

/// When ferfilter posts its `ferfilter` element message on the bus.
public enum MessageMode: Int32, Sendable {
    case everyFrame = 0, onChange = 1, none = 2
}

/// Everything a user can set on ferfilter; read as one snapshot per frame.
public struct Settings: Sendable {
    public var model: String? = nil
    public var cascade = Settings.defaultCascade
    /// 0: automatic (`minFaceSize(forHeight:)`).
    public var minFaceSize = 0
    public var scaleFactor = 1.25
    public var minNeighbors = 3
    public var detectInterval = 1
    public var draw = true
    public var drawProbabilities = false
    public var messageMode = MessageMode.everyFrame
    public var maxFaces = 20
    public var cropScale = 1.0
    public var flipTTA = true
    /// With `flipTTA`: a tracked face is classified as seen and mirrored on alternate turns, and
    /// the smoothing averages the two (new faces, and every face with smoothing 0, get both at once).
    public var flipAlternate = true
    public var smoothing = 0.4
    public var hysteresis = 0.12
    public var trackHold = 0.7
    public var maxAnalysisRate = 0.0
    public var skipLate = true
    public var threads = 0
    public var results: String? = nil
    /// The full-frame search for new faces is spread over this many analysed frames; tracked faces
    /// are searched for around their expected boxes on every one (1: the whole pyramid each time;
    /// 0: automatic, `scanSpread(frameDuration:)`).
    public var scanSpread = 0
    /// A tracked face is classified again on every Nth analysed frame (tracks take turns, so each
    /// frame classifies about 1/N of them); a new face, or one found again after a miss, at once
    /// (0: automatic, `classifyInterval(frameDuration:)`).
    public var classifyInterval = 0
    /// Coarse-to-fine face search (`DetectionParameters.coarseStages`): windows between those of
    /// a coarser grid are evaluated only next to one that passes this many cascade stages; 0:
    /// every window, as OpenCV.
    public var coarseStages = DetectionParameters().coarseStages

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
        let n = (analysesPerSecond(frameDuration: frameDuration) / Settings.automaticClassificationsPerSecond).rounded(.down)
        return Int(min(100, max(2, n)))
    }

    /// scan-spread, or when it is 0 the most analysed frames that fit in `automaticScanSeconds`,
    /// but at least 2 (4 at 30 fps, 3 at 25, 7 at 50, 9 at 60; 2 with detect-interval 3).
    public func scanSpread(frameDuration: Double) -> Int {
        guard scanSpread == 0 else { return scanSpread }
        let n = (analysesPerSecond(frameDuration: frameDuration) * Settings.automaticScanSeconds + 1e-9).rounded(.down)
        return Int(min(16, max(2, n)))
    }

    public static let defaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
    public init() {}
}

/// The properties ferfilter installs, with the text `gst-inspect-1.0 ferfilter` shows.
enum Property: UInt32, CaseIterable {
    case model = 1, cascade, minFaceSize, scaleFactor, minNeighbors, detectInterval, draw, drawProbabilities,
         messageMode, maxFaces, cropScale, flipTTA, smoothing, hysteresis, trackHold, maxAnalysisRate, skipLate, threads, results, scanSpread,
         classifyInterval, coarseStages, flipAlternate, stats

    var name: String {
        switch self {
        case .model: return "model"
        case .cascade: return "cascade"
        case .minFaceSize: return "min-face-size"
        case .scaleFactor: return "scale-factor"
        case .minNeighbors: return "min-neighbors"
        case .detectInterval: return "detect-interval"
        case .draw: return "draw"
        case .drawProbabilities: return "draw-probabilities"
        case .messageMode: return "message-mode"
        case .maxFaces: return "max-faces"
        case .cropScale: return "crop-scale"
        case .flipTTA: return "flip-tta"
        case .smoothing: return "smoothing"
        case .hysteresis: return "hysteresis"
        case .trackHold: return "track-hold"
        case .maxAnalysisRate: return "max-analysis-rate"
        case .skipLate: return "skip-late"
        case .threads: return "threads"
        case .results: return "results"
        case .scanSpread: return "scan-spread"
        case .classifyInterval: return "classify-interval"
        case .coarseStages: return "coarse-stages"
        case .flipAlternate: return "flip-alternate"
        case .stats: return "stats"
        }
    }

    var blurb: String {
        switch self {
        case .model:
            return "Model description JSON (its .weights file beside it). Unset: $GSTFER_MODEL, else the model installed "
                + "with the plugin (gstfer/fernet.json beside libgstfer.so), else /usr/local/share/gstfer/fernet.json. "
                + "Changing it while PLAYING reloads the model between frames"
        case .cascade: return "Haar cascade XML for face detection (OpenCV format, from opencv-data by default)"
        case .minFaceSize: return "Smallest face to detect, in pixels; 0: automatic, 1/16 of the frame height but at least 30 "
            + "(30 at 480p, 45 at 720p, 67 at 1080p)"
        case .scaleFactor: return "Scale step between detection pyramid levels; smaller finds more faces, slower"
        case .minNeighbors: return "Overlapping raw detections a face needs to be reported (higher: fewer false faces)"
        case .detectInterval: return "Run detection and classification every N frames; on the frames between, boxes follow the tracked faces"
        case .draw: return "Draw a box, the emotion and its confidence on each face"
        case .drawProbabilities: return "Also draw bars of all 7 emotion probabilities under each face"
        case .messageMode: return "When to post the 'ferfilter' element message with the faces on the bus"
        case .maxFaces: return "Most faces to classify per frame, largest first (0: no limit)"
        case .cropScale: return "Size of the face crop given to the model relative to the detected box"
        case .flipTTA: return "Average each face with its mirror image (the shipped model scores 0.7005 on FER2013 PublicTest "
            + "with it, 0.6849 without). See flip-alternate for what it costs"
        case .flipAlternate: return "With flip-tta: classify a tracked face as seen and mirrored on alternate turns and let the "
            + "smoothing average the two, at no extra cost; a new face, and every face when smoothing is 0, is classified both "
            + "ways at once. false: every classification both ways, in one batch (twice the classification work)"
        case .smoothing: return "Time constant in seconds of the per-face smoothing of emotion probabilities (0: none, "
            + "the label is the latest classification's)"
        case .hysteresis: return "How far (in smoothed probability) another emotion must lead the shown one before a face's "
            + "label changes; each change posts a 'ferfilter-emotion-changed' message"
        case .trackHold: return "Seconds a face keeps its track id and box while not detected (short misses, occlusion); on a slow source at least two detection passes in a row"
        case .maxAnalysisRate: return "Most detection+classification passes per second (0: no limit); frames between "
            + "follow the tracks"
        case .skipLate: return "Keep live streams on time: skip analysis on a frame that downstream reports late (QoS) or "
            + "whose time budget an analysis would exceed; tracks and overlay go on"
        case .threads: return "Threads for detection and classification (0: one per CPU core)"
        case .scanSpread: return "Spread the search for new faces over N analysed frames (each searches one of N bands of "
            + "window rows at every scale); faces already tracked are searched for near their boxes on every analysed frame. 1: the whole "
            + "frame at every scale each time. A face that appears is found within N analysed frames. 0: automatic, as many "
            + "analysed frames as fit in 0.15 s of stream, at least 2 (4 at 30 fps, 9 at 60)"
        case .classifyInterval: return "Classify a tracked face on every Nth analysed frame, tracks taking turns (each "
            + "frame classifies about 1/N of the faces; between, a face keeps its smoothed probabilities). New faces and "
            + "faces found again after a miss are classified at once. 1: every face on every analysed frame. 0: automatic, "
            + "every Nth analysed frame where N, at least 2, keeps each face classified 12 times per second of stream (every "
            + "2nd frame at 25 and 30 fps, every 5th at 60)"
        case .coarseStages: return "Coarse-to-fine face search at the scales searched at every pixel (windows over twice the "
            + "cascade's 24 px): windows on even rows and columns first, those between only next to one that passes this many "
            + "cascade stages (faster; may miss a face the full search finds now and then). 0: every window, as OpenCV's detectMultiScale"
        case .stats: return "Read-only: what the element has done since it started (a 'ferfilter-stats' structure): frames, "
            + "analysed, between (detect-interval frames), skipped-late, skipped-busy, skipped-rate, faces (on the last frame), "
            + "tracks (started), analysis-ms-mean/-max (one detection and classification pass), frame-ms-mean/-max (time "
            + "in the element per frame), live, latency-ms (what it answers the LATENCY query)"
        case .results: return "Write every frame's faces (box, track id, emotion, confidence, probabilities, stream and "
            + "wall-clock time) as JSON Lines to this file ('-': standard output), and a summary line at the end of the stream"
        }
    }
}

extension Property {
    static func install(_ klass: UnsafeMutablePointer<GObjectClass>) {
        let flags = gstfer_param_flags()
        let d = Settings()
        for p in Property.allCases {
            let spec: UnsafeMutablePointer<GParamSpec>?
            switch p {
            case .model: spec = g_param_spec_string(p.name, p.name, p.blurb, nil, flags)
            case .cascade: spec = g_param_spec_string(p.name, p.name, p.blurb, d.cascade, flags)
            case .minFaceSize: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 8192, Int32(d.minFaceSize), flags)
            case .scaleFactor: spec = g_param_spec_double(p.name, p.name, p.blurb, 1.01, 2.0, d.scaleFactor, flags)
            case .minNeighbors: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 100, Int32(d.minNeighbors), flags)
            case .detectInterval: spec = g_param_spec_int(p.name, p.name, p.blurb, 1, 1000, Int32(d.detectInterval), flags)
            case .draw: spec = g_param_spec_boolean(p.name, p.name, p.blurb, d.draw ? 1 : 0, flags)
            case .drawProbabilities: spec = g_param_spec_boolean(p.name, p.name, p.blurb, d.drawProbabilities ? 1 : 0, flags)
            case .messageMode:
                spec = g_param_spec_enum(p.name, p.name, p.blurb, gstfer_message_mode_get_type(), d.messageMode.rawValue, flags)
            case .maxFaces: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 1000, Int32(d.maxFaces), flags)
            case .cropScale: spec = g_param_spec_double(p.name, p.name, p.blurb, 0.5, 2.0, d.cropScale, flags)
            case .flipTTA: spec = g_param_spec_boolean(p.name, p.name, p.blurb, d.flipTTA ? 1 : 0, flags)
            case .smoothing: spec = g_param_spec_double(p.name, p.name, p.blurb, 0, 60, d.smoothing, flags)
            case .hysteresis: spec = g_param_spec_double(p.name, p.name, p.blurb, 0, 1, d.hysteresis, flags)
            case .trackHold: spec = g_param_spec_double(p.name, p.name, p.blurb, 0, 60, d.trackHold, flags)
            case .maxAnalysisRate: spec = g_param_spec_double(p.name, p.name, p.blurb, 0, 1000, d.maxAnalysisRate, flags)
            case .skipLate: spec = g_param_spec_boolean(p.name, p.name, p.blurb, d.skipLate ? 1 : 0, flags)
            case .threads: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 256, Int32(d.threads), flags)
            case .results: spec = g_param_spec_string(p.name, p.name, p.blurb, nil, flags)
            case .scanSpread: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 16, Int32(d.scanSpread), flags)
            case .classifyInterval: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 100, Int32(d.classifyInterval), flags)
            case .coarseStages: spec = g_param_spec_int(p.name, p.name, p.blurb, 0, 100, Int32(d.coarseStages), flags)
            case .flipAlternate: spec = g_param_spec_boolean(p.name, p.name, p.blurb, d.flipAlternate ? 1 : 0, flags)
            case .stats: spec = g_param_spec_boxed(p.name, p.name, p.blurb, gst_structure_get_type(), gstfer_param_flags_read_only())
            }
            g_object_class_install_property(klass, p.rawValue, spec)
        }
    }

    func set(_ s: inout Settings, _ v: UnsafePointer<GValue>) {
        switch self {
        case .model: s.model = g_value_get_string(v).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        case .cascade: s.cascade = g_value_get_string(v).map { String(cString: $0) } ?? Settings.defaultCascade
        case .minFaceSize: s.minFaceSize = Int(g_value_get_int(v))
        case .scaleFactor: s.scaleFactor = g_value_get_double(v)
        case .minNeighbors: s.minNeighbors = Int(g_value_get_int(v))
        case .detectInterval: s.detectInterval = Int(g_value_get_int(v))
        case .draw: s.draw = g_value_get_boolean(v) != 0
        case .drawProbabilities: s.drawProbabilities = g_value_get_boolean(v) != 0
        case .messageMode: s.messageMode = MessageMode(rawValue: g_value_get_enum(v)) ?? .everyFrame
        case .maxFaces: s.maxFaces = Int(g_value_get_int(v))
        case .cropScale: s.cropScale = g_value_get_double(v)
        case .flipTTA: s.flipTTA = g_value_get_boolean(v) != 0
        case .smoothing: s.smoothing = g_value_get_double(v)
        case .hysteresis: s.hysteresis = g_value_get_double(v)
        case .trackHold: s.trackHold = g_value_get_double(v)
        case .maxAnalysisRate: s.maxAnalysisRate = g_value_get_double(v)
        case .skipLate: s.skipLate = g_value_get_boolean(v) != 0
        case .threads: s.threads = Int(g_value_get_int(v))
        case .scanSpread: s.scanSpread = Int(g_value_get_int(v))
        case .classifyInterval: s.classifyInterval = Int(g_value_get_int(v))
        case .coarseStages: s.coarseStages = Int(g_value_get_int(v))
        case .flipAlternate: s.flipAlternate = g_value_get_boolean(v) != 0
        case .results: s.results = g_value_get_string(v).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        case .stats: break   // read-only
        }
    }

    func get(_ s: Settings, _ v: UnsafeMutablePointer<GValue>) {
        switch self {
        case .model: g_value_set_string(v, s.model)
        case .cascade: g_value_set_string(v, s.cascade)
        case .minFaceSize: g_value_set_int(v, Int32(s.minFaceSize))
        case .scaleFactor: g_value_set_double(v, s.scaleFactor)
        case .minNeighbors: g_value_set_int(v, Int32(s.minNeighbors))
        case .detectInterval: g_value_set_int(v, Int32(s.detectInterval))
        case .draw: g_value_set_boolean(v, s.draw ? 1 : 0)
        case .drawProbabilities: g_value_set_boolean(v, s.drawProbabilities ? 1 : 0)
        case .messageMode: g_value_set_enum(v, s.messageMode.rawValue)
        case .maxFaces: g_value_set_int(v, Int32(s.maxFaces))
        case .cropScale: g_value_set_double(v, s.cropScale)
        case .flipTTA: g_value_set_boolean(v, s.flipTTA ? 1 : 0)
        case .smoothing: g_value_set_double(v, s.smoothing)
        case .hysteresis: g_value_set_double(v, s.hysteresis)
        case .trackHold: g_value_set_double(v, s.trackHold)
        case .maxAnalysisRate: g_value_set_double(v, s.maxAnalysisRate)
        case .skipLate: g_value_set_boolean(v, s.skipLate ? 1 : 0)
        case .threads: g_value_set_int(v, Int32(s.threads))
        case .results: g_value_set_string(v, s.results)
        case .scanSpread: g_value_set_int(v, Int32(s.scanSpread))
        case .classifyInterval: g_value_set_int(v, Int32(s.classifyInterval))
        case .coarseStages: g_value_set_int(v, Int32(s.coarseStages))
        case .flipAlternate: g_value_set_boolean(v, s.flipAlternate ? 1 : 0)
        case .stats: break   // the element's, not a setting: FerFilter.getProperty
        }
    }
}
