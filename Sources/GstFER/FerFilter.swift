import CGStreamer
import FaceDetect
import FERNet
import Foundation

/// One face found in a frame and what the model says of it.
public struct FaceResult: Sendable, Equatable {
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
    private var lastFaces: [FaceResult] = []
    private var lastSignature = ""
    private var lumaScratch: [UInt8] = []

    init(element: UnsafeMutablePointer<GstFerFilter>) { self.element = element }

    // MARK: properties

    func setProperty(_ p: Property, _ v: UnsafePointer<GValue>) {
        lock.lock(); defer { lock.unlock() }
        p.set(&settings, v)
        if p == .model || p == .cascade { reloadRequested = true }
    }

    func getProperty(_ p: Property, _ v: UnsafeMutablePointer<GValue>) {
        lock.lock(); defer { lock.unlock() }
        p.get(settings, v)
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
                model = try FacialExpressionModel(contentsOf: URL(fileURLWithPath: mpath))
                loadedModelPath = mpath
                log(GST_LEVEL_INFO, "loaded model \(mpath): \(model!.description.name), \(model!.network.parameterCount) parameters")
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
        frameCount = 0; lastFaces = []; lastSignature = ""
        return load(s)
    }

    func stop() -> Bool {
        lastFaces = []
        return true
    }

    func setInfo(_ info: UnsafeMutablePointer<GstVideoInfo>) -> Bool {
        guard let f = info.pointee.finfo, PixelLayout(f.pointee.format) != nil else {
            log(GST_LEVEL_ERROR, "unsupported format")
            return false
        }
        log(GST_LEVEL_DEBUG, "caps: \(info.pointee.width)x\(info.pointee.height) format \(f.pointee.format.rawValue)")
        lastFaces = []   // boxes from another size mean nothing now
        lumaScratch = []
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
        let buffer = frame.pointee.buffer!

        var faces: [FaceResult]
        if frameCount % max(1, s.detectInterval) == 0 {
            faces = analyse(view, s, model, cascade)
            lastFaces = faces
        } else {
            faces = lastFaces
        }
        frameCount += 1

        if s.draw { draw(faces, on: view, labels: model.labels, probabilities: s.drawProbabilities) }
        attachMeta(faces, to: buffer, labels: model.labels)
        postMessage(faces, buffer: buffer, labels: model.labels, mode: s.messageMode)
        return GST_FLOW_OK
    }

    /// Detects faces on the luma plane, crops them as FER2013 frames faces, classifies all of a
    /// frame's faces in one batch.
    func analyse(_ view: FrameView, _ s: Settings, _ model: FacialExpressionModel, _ cascade: HaarCascade) -> [FaceResult] {
        let (luma, stride) = view.luma(into: &lumaScratch)
        var p = DetectionParameters()
        p.minSize = s.minFaceSize; p.scaleFactor = s.scaleFactor; p.minNeighbors = s.minNeighbors
        var boxes = cascade.detect(grey: luma, width: view.width, height: view.height, stride: stride, parameters: p)
        boxes.sort { ($0.width * $0.height, $1.y, $1.x) > ($1.width * $1.height, $0.y, $0.x) }
        if s.maxFaces > 0 && boxes.count > s.maxFaces { boxes = Array(boxes.prefix(s.maxFaces)) }
        guard !boxes.isEmpty else { return [] }
        let side = model.inputSize.width
        let crops = boxes.map { b in
            FaceCrop.crop(grey: luma, width: view.width, height: view.height, stride: stride,
                          box: (b.x, b.y, b.width, b.height), side: side, scale: s.cropScale)
        }
        let probs = model.predict(faces: crops, flipTTA: s.flipTTA)
        return zip(boxes, probs).enumerated().map { (i, bp) in
            FaceResult(id: i, x: bp.0.x, y: bp.0.y, width: bp.0.width, height: bp.0.height,
                       probabilities: bp.1, labelIndex: argmax(bp.1[...]))
        }
    }

    static let palette: [Colour] = [Colour(230, 40, 40), Colour(60, 160, 60), Colour(150, 80, 200), Colour(250, 200, 20),
                                    Colour(50, 110, 230), Colour(240, 120, 200), Colour(200, 200, 200)]
    static let black = Colour(0, 0, 0)

    func draw(_ faces: [FaceResult], on view: FrameView, labels: [String], probabilities: Bool) {
        let painter = Painter(f: view)
        let scale = max(1, min(view.width, view.height) / 240)
        let thick = max(2, scale)
        for f in faces {
            let c = FerFilter.palette[f.labelIndex % FerFilter.palette.count]
            painter.box(f.x, f.y, f.width, f.height, thick, c)
            let text = "\(labels[f.labelIndex]) \(Int((f.confidence * 100).rounded()))%"
            let (_, th) = Font.size(text, scale: scale)
            let ty = f.y - th >= 0 ? f.y - th : f.y + thick
            painter.text(text, f.x, ty, scale: scale, FerFilter.black, c)
            if probabilities {
                // seven rows of initial + bar, beside the box when there is room, else under it
                let rowH = 9 * scale, barW = max(f.width / 2, 40 * scale), panelW = 7 * scale + barW
                let beside = f.x + f.width + thick + panelW <= view.width
                let px = beside ? f.x + f.width + thick : f.x
                let py = beside ? f.y : f.y + f.height + thick
                for (k, p) in f.probabilities.enumerated() {
                    let y = py + k * rowH
                    let kc = FerFilter.palette[k % FerFilter.palette.count]
                    painter.text(String(labels[k].prefix(1)), px, y, scale: scale, FerFilter.black, kc)
                    painter.fill(px + 7 * scale, y + scale, Int(Float(barW) * p), rowH - 2 * scale, kc)
                }
            }
        }
    }

    /// A GstVideoRegionOfInterestMeta per face, roi_type "face", with an "emotion" param.
    func attachMeta(_ faces: [FaceResult], to buffer: UnsafeMutablePointer<GstBuffer>, labels: [String]) {
        for f in faces {
            guard let meta = gst_buffer_add_video_region_of_interest_meta(buffer, "face", guint(f.x), guint(f.y),
                                                                           guint(f.width), guint(f.height)) else { continue }
            meta.pointee.id = gint(f.id)
            meta.pointee.parent_id = -1
            gst_video_region_of_interest_meta_add_param(meta, emotionStructure("emotion", f, labels: labels))
        }
    }

    func emotionStructure(_ name: String, _ f: FaceResult, labels: [String]) -> UnsafeMutablePointer<GstStructure> {
        let st = gst_structure_new_empty(name)!
        gstfer_structure_set_string(st, "label", labels[f.labelIndex])
        gstfer_structure_set_int(st, "label_id", gint(f.labelIndex))
        gstfer_structure_set_double(st, "confidence", Double(f.confidence))
        let probs = f.probabilities.map(Double.init)
        gstfer_structure_set_double_array(st, "probabilities", probs, guint(probs.count))
        return st
    }

    /// The `ferfilter` element message, shaped like facedetect's.
    func postMessage(_ faces: [FaceResult], buffer: UnsafeMutablePointer<GstBuffer>, labels: [String], mode: MessageMode) {
        if mode == .none { return }
        if mode == .onChange {
            let sig = faces.map { "\(labels[$0.labelIndex])" }.joined(separator: ",")
            if sig == lastSignature { return }
            lastSignature = sig
        }
        let st = gst_structure_new_empty("ferfilter")!
        let pts = gstfer_buffer_pts(buffer), seg = gstfer_segment(element)
        gstfer_structure_set_clock_time(st, "timestamp", pts)
        gstfer_structure_set_clock_time(st, "stream-time", gst_segment_to_stream_time(seg, GST_FORMAT_TIME, pts))
        gstfer_structure_set_clock_time(st, "running-time", gst_segment_to_running_time(seg, GST_FORMAT_TIME, pts))
        gstfer_structure_set_clock_time(st, "duration", gstfer_buffer_duration(buffer))
        gstfer_structure_set_uint(st, "count", guint(faces.count))
        for f in faces {
            let fs = gst_structure_new_empty("face")!
            gstfer_structure_set_uint(fs, "x", guint(f.x)); gstfer_structure_set_uint(fs, "y", guint(f.y))
            gstfer_structure_set_uint(fs, "width", guint(f.width)); gstfer_structure_set_uint(fs, "height", guint(f.height))
            gstfer_structure_set_int(fs, "id", gint(f.id))
            gstfer_structure_set_string(fs, "emotion", labels[f.labelIndex])
            gstfer_structure_set_double(fs, "confidence", Double(f.confidence))
            let probs = f.probabilities.map(Double.init)
            gstfer_structure_set_double_array(fs, "probabilities", probs, guint(probs.count))
            gstfer_structure_append_structure(st, "faces", fs)
        }
        _ = gstfer_post_element_message(element, st)
    }
}
