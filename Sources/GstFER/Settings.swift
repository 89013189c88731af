import CGStreamer
import FaceAnalysis
import FaceDetect
import Foundation

/// When ferfilter posts its `ferfilter` element message on the bus.
public enum MessageMode: Int32, Sendable {
    case everyFrame = 0, onChange = 1, none = 2
}

/// Everything a user can set on ferfilter; read as one snapshot per frame. What the analysis
/// uses is `analysis` (FaceAnalysis's settings, the same defaults as `fer serve` and `fer detect`);
/// the rest is the element's own: its files and what it does with the faces.
public struct Settings: Sendable {
    public var model: String? = nil
    public var cascade = AnalysisSettings.defaultCascade
    /// YuNet's ONNX file; nil: the one installed with the plugin.
    public var detectorModel: String? = nil
    public var draw = true
    /// Draw each face's five landmarks (where the detector gives them).
    public var drawLandmarks = false
    public var drawProbabilities = false
    public var messageMode = MessageMode.everyFrame
    public var results: String? = nil
    /// mqtt:// or mqtts:// URL to publish the results to (MQTTPublish.PublishTarget).
    public var publish: String? = nil
    public var analysis = AnalysisSettings()
    public init() {}
}

/// One ferfilter property, declared once: its name, the text `gst-inspect-1.0 ferfilter` shows,
/// its type, range and default (the default is what `Settings()` holds), and the field it sets.
struct PropertySpec {
    enum Kind {
        case int(WritableKeyPath<Settings, Int>, ClosedRange<Int32>)
        case double(WritableKeyPath<Settings, Double>, ClosedRange<Double>)
        case bool(WritableKeyPath<Settings, Bool>)
        /// A file name; unset or empty gives nil.
        case optionalPath(WritableKeyPath<Settings, String?>)
        /// A file name; unset or empty gives the default.
        case path(WritableKeyPath<Settings, String>)
        case messageMode
        case detector
        /// Read-only: the element's own (`stats`), not a setting.
        case stats
    }
    let name: String
    let kind: Kind
    let blurb: String
    /// Read when the element starts: settable in NULL and READY only.
    var atStart = false
}

/// The properties ferfilter installs, in id order (id = index + 1).
enum FerFilterProperties {
    static let all: [PropertySpec] = [
        .init(name: "model", kind: .optionalPath(\.model), blurb:
            "Model description JSON (its .weights file beside it). Unset: $GSTFER_MODEL, else the model installed "
            + "with the plugin (gstfer/fernet.json beside libgstfer.so), else /usr/local/share/gstfer/fernet.json. "
            + "Changing it while PLAYING reloads the model between frames"),
        .init(name: "cascade", kind: .path(\.cascade), blurb:
            "With detector=haar: Haar cascade XML for face detection (OpenCV format, from opencv-data by default). Changing it while PLAYING "
            + "reloads it between frames"),
        .init(name: "detector", kind: .detector, blurb:
            "Face detector: yunet, a small CNN (OpenCV Zoo's YuNet, run by GstFER on OpenBLAS) that finds faces turned, tilted, "
            + "partly hidden or filling the frame, with five landmarks each, and aligns each face by them before classifying it; "
            + "or haar, OpenCV's Haar cascade (upright frontal faces only, no landmarks; see cascade). Changing it while PLAYING "
            + "switches between frames"),
        .init(name: "detector-model", kind: .optionalPath(\.detectorModel), blurb:
            "With detector=yunet: the YuNet ONNX file. Unset: $GSTFER_DETECTOR_MODEL, else the one installed with the plugin "
            + "(gstfer/face_detection_yunet_2023mar.onnx beside libgstfer.so), else /usr/local/share/gstfer/"),
        .init(name: "detection-threshold", kind: .double(\.analysis.detectionThreshold, 0.05...1.0), blurb:
            "With detector=yunet: the score a face needs to be reported (higher: fewer false faces, fewer faces found)"),
        .init(name: "detection-size", kind: .int(\.analysis.detectionSize, 0...8192), blurb:
            "With detector=yunet: the longer side, in pixels, of the picture the network sees when it searches the whole frame "
            + "(larger frames are scaled down to it: faster, but faces under about 20 px at that scale are missed; 0: the frame's own size)"),
        .init(name: "search-tilt", kind: .double(\.analysis.searchTilt, 0...45), blurb:
            "With detector=yunet: also look for heads tilted by about this many degrees either way (upright, the network misses "
            + "more and more faces beyond about 20 degrees; 0: upright only). The first frame (not a live stream's) is searched upright and turned by "
            + "-N and +N; after it, while no face is tracked, upright on every analysed frame and turned -N or +N as well on every "
            + "fourth; "
            + "while faces are tracked, turned once every 4 scan-spread periods, on a frame of its own (not when the tracked "
            + "faces' regions already cost a whole frame), and each tracked face's region turned by the face's own tilt"),
        .init(name: "min-face-size", kind: .int(\.analysis.minFaceSize, 0...8192), blurb:
            "Smallest face to detect, in pixels; 0: automatic, 1/16 of the frame height but at least 30 "
            + "(30 at 480p, 45 at 720p, 67 at 1080p)"),
        .init(name: "scale-factor", kind: .double(\.analysis.scaleFactor, 1.01...2.0), blurb:
            "With detector=haar: scale step between detection pyramid levels; smaller finds more faces, slower (YuNet looks at "
            + "every scale at once)"),
        .init(name: "min-neighbors", kind: .int(\.analysis.minNeighbors, 0...100), blurb:
            "With detector=haar: overlapping raw detections a face needs to be reported (higher: fewer false faces)"),
        .init(name: "detect-interval", kind: .int(\.analysis.detectInterval, 1...1000), blurb:
            "Run detection and classification every N frames; on the frames between, boxes follow the tracked faces"),
        .init(name: "draw", kind: .bool(\.draw), blurb: "Draw a box, the emotion and its confidence on each face"),
        .init(name: "draw-probabilities", kind: .bool(\.drawProbabilities), blurb:
            "Also draw a bar per emotion probability beside each face (or under or above it: where they cover no other face)"),
        .init(name: "draw-landmarks", kind: .bool(\.drawLandmarks), blurb:
            "Also draw each face's five landmarks (eyes, nose tip, mouth corners; detector=yunet)"),
        .init(name: "message-mode", kind: .messageMode, blurb: "When to post the 'ferfilter' element message with the faces on the bus"),
        .init(name: "max-faces", kind: .int(\.analysis.maxFaces, 0...1000), blurb:
            "Most faces to classify per frame, largest first (0: no limit)"),
        .init(name: "crop-scale", kind: .double(\.analysis.cropScale, 0.5...2.0), blurb:
            "Size of the face crop given to the model relative to the detected box"),
        .init(name: "flip-tta", kind: .bool(\.analysis.flipTTA), blurb:
            "Average each face with its mirror image (the shipped model scores 0.7005 on FER2013 PublicTest "
            + "with it, 0.6849 without). See flip-alternate for what it costs"),
        .init(name: "smoothing", kind: .double(\.analysis.smoothing, 0...60), blurb:
            "Time constant in seconds of the per-face smoothing of emotion probabilities (0: none, "
            + "the label is the latest classification's)"),
        .init(name: "hysteresis", kind: .double(\.analysis.hysteresis, 0...1), blurb:
            "How far (in smoothed probability) another emotion must lead the shown one before a face's "
            + "label changes; each change posts a 'ferfilter-emotion-changed' message"),
        .init(name: "track-hold", kind: .double(\.analysis.trackHold, 0...60), blurb:
            "Seconds a face keeps its track id and box while not detected (short misses, occlusion); on a slow source at "
            + "least two detection passes in a row"),
        .init(name: "max-analysis-rate", kind: .double(\.analysis.maxAnalysisRate, 0...1000), blurb:
            "Most detection+classification passes per second (0: no limit); frames between follow the tracks"),
        .init(name: "skip-late", kind: .bool(\.analysis.skipLate), blurb:
            "Keep live streams on time: skip analysis on a frame that downstream reports late (QoS) or "
            + "whose time budget an analysis would exceed; tracks and overlay go on"),
        .init(name: "threads", kind: .int(\.analysis.threads, 0...256), blurb:
            "Threads for this element's detection and classification (0: one per CPU core); other elements in the "
            + "process keep their own"),
        .init(name: "results", kind: .optionalPath(\.results), blurb:
            "Write every frame's faces (box, track id, emotion, confidence, probabilities, stream and "
            + "wall-clock time) as JSON Lines to this file ('-': standard output), and a summary line at the end of the stream"),
        .init(name: "publish", kind: .optionalPath(\.publish), blurb:
            "Publish to an MQTT broker: mqtt://[user[:password]@]host[:port]/prefix, or mqtts://...?ca=FILE for TLS; options "
            + "qos=0|1 (default 1), client-id=, queue=N (messages waiting, default 512; the oldest dropped beyond), keepalive=S, cert=, key=. "
            + "Every frame's results line goes to prefix/frames, each emotion change to prefix/changes, the summary (retained) "
            + "to prefix/summary, and online/offline (retained, with a last will) to prefix/status. Sent off the streaming thread: "
            + "frames never wait for the broker; when it is slow or gone messages are dropped and counted (stats: published, "
            + "publish-dropped) and the element reconnects by itself. A bad URL, or a broker refusing the credentials, fails the "
            + "start; a broker not reachable yet is a warning. Read when the element starts", atStart: true),
        .init(name: "scan-spread", kind: .int(\.analysis.scanSpread, 0...16), blurb:
            "With detector=haar (YuNet searches the whole frame at every scale in one pass, so this has no meaning for it): spread the search for new faces over N analysed frames (each searches one of N bands of "
            + "window rows at every scale); faces already tracked are searched for near their boxes on every analysed frame. 1: the whole "
            + "frame at every scale each time. A face that appears is found within N analysed frames. 0: automatic, as many "
            + "analysed frames as fit in 0.15 s of stream, at least 2 (4 at 30 fps, 9 at 60)"),
        .init(name: "classify-interval", kind: .int(\.analysis.classifyInterval, 0...100), blurb:
            "Classify a tracked face on every Nth analysed frame, tracks taking turns (each "
            + "frame classifies about 1/N of the faces; between, a face keeps its smoothed probabilities). New faces and "
            + "faces found again after a miss are classified at once. 1: every face on every analysed frame. 0: automatic, "
            + "every Nth analysed frame where N, at least 2, keeps each face classified 12 times per second of stream (every "
            + "2nd frame at 25 and 30 fps, every 5th at 60)"),
        .init(name: "coarse-stages", kind: .int(\.analysis.coarseStages, 0...100), blurb:
            "With detector=haar (no meaning for YuNet): coarse-to-fine face search at the scales searched at every pixel (windows over twice the "
            + "cascade's 24 px): windows on even rows and columns first, those between only next to one that passes this many "
            + "cascade stages (faster; may miss a face the full search finds now and then). 0: every window, as OpenCV's detectMultiScale"),
        .init(name: "flip-alternate", kind: .bool(\.analysis.flipAlternate), blurb:
            "With flip-tta: classify a tracked face as seen and mirrored on alternate turns and let the "
            + "smoothing average the two, at no extra cost; a new face, and every face when smoothing is 0, is classified both "
            + "ways at once. false: every classification both ways, in one batch (twice the classification work)"),
        .init(name: "stats", kind: .stats, blurb:
            "Read-only: what the element has done since it started (a 'ferfilter-stats' structure): frames, "
            + "analysed, between (detect-interval frames), skipped-late, skipped-busy, skipped-rate, faces (on the last frame), "
            + "tracks (started), analyses (passes finished; on a live source one may still run), analysis-ms-mean/-max (one detection and classification pass), frame-ms-mean/-max (time "
            + "in the element per frame), live, latency-ms (what it answers the LATENCY query); with publish: published (messages the "
            + "broker took), publish-dropped, publish-queued, publish-connected, publish-connections"),
    ]

    /// The property with GObject id `id`, nil for an id ferfilter never installed.
    static func spec(_ id: guint) -> PropertySpec? { id >= 1 && Int(id) <= all.count ? all[Int(id) - 1] : nil }

    static func id(_ name: String) -> guint? { all.firstIndex { $0.name == name }.map { guint($0 + 1) } }

    static func install(_ klass: UnsafeMutablePointer<GObjectClass>) {
        let d = Settings()
        for (i, p) in all.enumerated() {
            let flags = p.atStart ? gstfer_param_flags_at_start() : gstfer_param_flags()
            let spec: UnsafeMutablePointer<GParamSpec>?
            switch p.kind {
            case .int(let kp, let r): spec = g_param_spec_int(p.name, p.name, p.blurb, r.lowerBound, r.upperBound, Int32(d[keyPath: kp]), flags)
            case .double(let kp, let r): spec = g_param_spec_double(p.name, p.name, p.blurb, r.lowerBound, r.upperBound, d[keyPath: kp], flags)
            case .bool(let kp): spec = g_param_spec_boolean(p.name, p.name, p.blurb, d[keyPath: kp] ? 1 : 0, flags)
            case .optionalPath(let kp): spec = g_param_spec_string(p.name, p.name, p.blurb, d[keyPath: kp], flags)
            case .path(let kp): spec = g_param_spec_string(p.name, p.name, p.blurb, d[keyPath: kp], flags)
            case .messageMode:
                spec = g_param_spec_enum(p.name, p.name, p.blurb, gstfer_message_mode_get_type(), d.messageMode.rawValue, flags)
            case .detector:
                spec = g_param_spec_enum(p.name, p.name, p.blurb, gstfer_detector_get_type(), d.analysis.detector.rawValue, flags)
            case .stats: spec = g_param_spec_boxed(p.name, p.name, p.blurb, gst_structure_get_type(), gstfer_param_flags_read_only())
            }
            g_object_class_install_property(klass, guint(i + 1), spec)
        }
    }

    /// Sets the field `p` stands for from `v` (GObject checked its type and range).
    static func set(_ p: PropertySpec, _ s: inout Settings, _ v: UnsafePointer<GValue>) {
        func text() -> String? { g_value_get_string(v).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        switch p.kind {
        case .int(let kp, _): s[keyPath: kp] = Int(g_value_get_int(v))
        case .double(let kp, _): s[keyPath: kp] = g_value_get_double(v)
        case .bool(let kp): s[keyPath: kp] = g_value_get_boolean(v) != 0
        case .optionalPath(let kp): s[keyPath: kp] = text()
        case .path(let kp): s[keyPath: kp] = text() ?? Settings()[keyPath: kp]
        case .messageMode: s.messageMode = MessageMode(rawValue: g_value_get_enum(v)) ?? .everyFrame
        case .detector: s.analysis.detector = DetectorKind(rawValue: g_value_get_enum(v)) ?? .yunet
        case .stats: break
        }
    }

    /// Puts the field `p` stands for into `v` (not `stats`: the element's, see FerFilter).
    static func get(_ p: PropertySpec, _ s: Settings, _ v: UnsafeMutablePointer<GValue>) {
        switch p.kind {
        case .int(let kp, _): g_value_set_int(v, Int32(s[keyPath: kp]))
        case .double(let kp, _): g_value_set_double(v, s[keyPath: kp])
        case .bool(let kp): g_value_set_boolean(v, s[keyPath: kp] ? 1 : 0)
        case .optionalPath(let kp): g_value_set_string(v, s[keyPath: kp])
        case .path(let kp): g_value_set_string(v, s[keyPath: kp])
        case .messageMode: g_value_set_enum(v, s.messageMode.rawValue)
        case .detector: g_value_set_enum(v, s.analysis.detector.rawValue)
        case .stats: break
        }
    }
}
