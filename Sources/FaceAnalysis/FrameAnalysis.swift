import FaceDetect
import FaceTracking
import FERNet
import Foundation

/// An 8-bit grey picture to analyse (a frame's luma plane, or a decoded image's grey), valid for
/// the call it is passed to.
public struct LumaPlane {
    public let pixels: UnsafePointer<UInt8>
    public let width: Int, height: Int
    /// Bytes from one row to the next (at least `width`).
    public let stride: Int
    public init(pixels: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int) {
        self.pixels = pixels; self.width = width; self.height = height; self.stride = stride
    }
}

/// What a stream's analyser knows ahead of an analysis, from its tracks, to spare work.
public struct AnalysisGuidance: Sendable {
    /// Which part of the detector's search to run (nil: all of it).
    public var plan: ScanPlan?
    /// Where tracked faces that need no classification this time are expected: a face found there
    /// (intersection over union at least 0.5, one face per box) is not classified.
    public var settled: [TrackBox]
    /// How a face found where one of these boxes is expected is to be looked at (flip-alternate).
    public var views: [ViewHint]

    public struct ViewHint: Sendable {
        public var box: TrackBox
        public var view: FacialExpressionModel.FaceView
        public init(box: TrackBox, view: FacialExpressionModel.FaceView) { self.box = box; self.view = view }
    }

    public init(plan: ScanPlan? = nil, settled: [TrackBox] = [], views: [ViewHint] = []) {
        self.plan = plan; self.settled = settled; self.views = views
    }

    /// Nothing known: search everything, classify every face.
    public static let none = AnalysisGuidance()
}

/// One analysis of one picture: detect the faces, crop them as FER2013 frames its faces, and
/// classify all of them in one batch. Stateless; `StreamAnalyzer` adds the tracks and schedule.
public enum FrameAnalysis {
    /// The faces `detector` finds in `luma` with `settings` (smallest face, `maxFaces`), largest first.
    public static func detect(_ luma: LumaPlane, settings s: AnalysisSettings, detector: any FaceDetector,
                              plan: ScanPlan? = nil) -> [DetectedBox] {
        let request = DetectionRequest(minSize: s.minFaceSize(forHeight: luma.height), plan: plan, threads: s.threads)
        var boxes = detector.detect(grey: luma.pixels, width: luma.width, height: luma.height, stride: luma.stride, request: request)
        boxes.sort { ($0.width * $0.height, $1.y, $1.x) > ($1.width * $1.height, $0.y, $0.x) }
        if s.maxFaces > 0 && boxes.count > s.maxFaces { boxes = Array(boxes.prefix(s.maxFaces)) }
        return boxes
    }

    /// Detects and classifies the faces of `luma` (on any thread, with `settings.threads` threads).
    /// A face found where a `guidance.settled` box is expected has empty probabilities (its track
    /// keeps its own); with flip-tta each classification carries its views (0: as seen,
    /// 1: mirrored), so a track classified one view at a time folds the mean of its latest two.
    public static func analyse(_ luma: LumaPlane, settings s: AnalysisSettings, model: FacialExpressionModel,
                               detector: any FaceDetector, guidance: AnalysisGuidance = .none) -> [TrackDetection] {
        Parallelism.withThreads(s.threads) {
            let boxes = detect(luma, settings: s, detector: detector, plan: guidance.plan)
            guard !boxes.isEmpty else { return [] }
            let found = boxes.map { TrackBox(x: Double($0.x), y: Double($0.y), width: Double($0.width), height: Double($0.height)) }
            var settledTaken = [Bool](repeating: false, count: guidance.settled.count)
            let classify = found.map { match($0, guidance.settled, &settledTaken) == nil }
            var viewTaken = [Bool](repeating: false, count: guidance.views.count)
            let viewBoxes = guidance.views.map(\.box)
            let faceViews = found.indices.filter { classify[$0] }.map { i -> FacialExpressionModel.FaceView in
                match(found[i], viewBoxes, &viewTaken).map { guidance.views[$0].view } ?? (s.flipTTA ? .both : .asSeen)
            }
            let side = model.inputSize.width
            let crops = boxes.indices.filter { classify[$0] }.map { i in
                FaceCrop.crop(grey: luma.pixels, width: luma.width, height: luma.height, stride: luma.stride,
                              box: (boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height), side: side, scale: s.cropScale)
            }
            var results = crops.isEmpty ? [] : model.predictViews(faces: crops, views: faceViews)[...]
            return found.indices.map { i in
                guard classify[i] else { return TrackDetection(box: found[i], probabilities: []) }
                let r = results.removeFirst()
                if !s.flipTTA { return TrackDetection(box: found[i], probabilities: r.asSeen!) }
                var views: [Int: [Float]] = [:]
                views[0] = r.asSeen; views[1] = r.mirrored
                return TrackDetection(box: found[i], probabilities: FacialExpressionModel.combined(r), views: views)
            }
        }
    }

    /// The index of the box of `expected` that `box` matches (intersection over union at least
    /// 0.5, the best not yet taken), marking it taken.
    static func match(_ box: TrackBox, _ expected: [TrackBox], _ taken: inout [Bool]) -> Int? {
        var best = -1, bestOverlap = 0.5
        for (k, e) in expected.enumerated() where !taken[k] {
            let o = box.iou(e)
            if o >= bestOverlap { best = k; bestOverlap = o }
        }
        if best >= 0 { taken[best] = true }
        return best >= 0 ? best : nil
    }

    /// The faces of a still picture, exactly as ferfilter reports them on the first frame of a
    /// stream with the same settings (a new analyser's first frame: everything searched, every
    /// face classified, no smoothing yet). `fer serve`'s analyze API and `fer detect` use this.
    public static func picture(_ luma: LumaPlane, settings: AnalysisSettings, model: FacialExpressionModel,
                               detector: any FaceDetector) -> [FaceResult] {
        var s = settings
        s.skipLate = false
        return StreamAnalyzer().process(luma.width, luma.height, time: 0, settings: s, model: model, detector: detector) { luma }.faces
    }
}
