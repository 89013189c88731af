import FaceDetect
import FaceTracking
import FERNet
import Foundation

/// An 8-bit grey picture to analyse (a frame's luma plane, or a decoded image's grey), and where
/// the picture has colour, that colour for the detector; valid for the call it is passed to.
/// Faces are classified on the grey.
public struct LumaPlane {
    public let pixels: UnsafePointer<UInt8>
    public let width: Int, height: Int
    /// Bytes from one row to the next (at least `width`).
    public let stride: Int
    /// The picture's colour (nil: grey only). YuNet finds more faces in colour.
    public var colour: ColourSource?
    public init(pixels: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, colour: ColourSource? = nil) {
        self.pixels = pixels; self.width = width; self.height = height; self.stride = stride; self.colour = colour
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
    /// The turns at which a whole-frame search looks (nil: `AnalysisSettings.stillAngles`).
    public var angles: [Double]?

    public struct ViewHint: Sendable {
        public var box: TrackBox
        public var view: FacialExpressionModel.FaceView
        public init(box: TrackBox, view: FacialExpressionModel.FaceView) { self.box = box; self.view = view }
    }

    public init(plan: ScanPlan? = nil, settled: [TrackBox] = [], views: [ViewHint] = [], angles: [Double]? = nil) {
        self.plan = plan; self.settled = settled; self.views = views; self.angles = angles
    }

    /// Nothing known: search everything, classify every face.
    public static let none = AnalysisGuidance()
}

/// One analysis of one picture: detect the faces, crop them as FER2013 frames its faces, and
/// classify all of them in one batch. Stateless; `StreamAnalyzer` adds the tracks and schedule.
public enum FrameAnalysis {
    /// The faces `detector` finds in `luma` with `settings` (smallest face, `maxFaces`), largest
    /// first; a whole-frame search looks at the turns `angles` (nil: `settings.stillAngles`).
    public static func detect(_ luma: LumaPlane, settings s: AnalysisSettings, detector: any FaceDetector,
                              plan: ScanPlan? = nil, angles: [Double]? = nil) -> [DetectedBox] {
        let request = DetectionRequest(minSize: s.minFaceSize(forHeight: luma.height), plan: plan, threads: s.threads,
                                       angles: angles ?? s.stillAngles)
        var boxes = detector.detect(grey: luma.pixels, colour: luma.colour, width: luma.width, height: luma.height, stride: luma.stride,
                                    request: request)
            .map(FrameAnalysis.ferFramed)
        boxes.sort { ($0.width * $0.height, $1.y, $1.x) > ($1.width * $1.height, $0.y, $0.x) }
        if s.maxFaces > 0 && boxes.count > s.maxFaces { boxes = Array(boxes.prefix(s.maxFaces)) }
        return boxes
    }

    /// The model's input for a face: aligned by its landmarks where it has them (eyes level, where
    /// FER2013's faces have them), else its box's square; `side` pixels a side.
    public static func crop(_ luma: LumaPlane, _ b: DetectedBox, side: Int, scale: Double) -> [UInt8] {
        b.landmarks.count == 5
            ? FaceCrop.aligned(grey: luma.pixels, width: luma.width, height: luma.height, stride: luma.stride,
                               landmarks: b.landmarks.map { (x: $0.x, y: $0.y) }, side: side, scale: scale)
            : FaceCrop.crop(grey: luma.pixels, width: luma.width, height: luma.height, stride: luma.stride,
                            box: (b.x, b.y, b.width, b.height), side: side, scale: scale)
    }

    /// A face with landmarks boxed as FER2013 frames its faces: a square about the eyes and mouth
    /// (centred 0.298 of the way from the eyes' midpoint to the mouth's, 2.686 times that distance
    /// a side: the medians over PublicTest faces placed in frames), whatever the detector's own box;
    /// so tracks, reports and crops are framed alike whichever detector found the face. A face
    /// without landmarks (Haar's), or with eyes and mouth too close to measure, keeps its box.
    public static func ferFramed(_ b: DetectedBox) -> DetectedBox {
        guard b.landmarks.count == 5 else { return b }
        let l = b.landmarks
        let ex = (l[0].x + l[1].x) / 2, ey = (l[0].y + l[1].y) / 2, mx = (l[3].x + l[4].x) / 2, my = (l[3].y + l[4].y) / 2
        let d = ((mx - ex) * (mx - ex) + (my - ey) * (my - ey)).squareRoot()
        guard d >= 0.15 * Double(max(b.width, b.height)) else { return b }
        let cx = ex + 0.298 * (mx - ex), cy = ey + 0.298 * (my - ey), side = 2.686 * d
        var f = b
        f.x = Int((cx - side / 2).rounded()); f.y = Int((cy - side / 2).rounded())
        f.width = Int(side.rounded()); f.height = f.width
        return f
    }

    /// Detects and classifies the faces of `luma` (on any thread, with `settings.threads` threads).
    /// A face found where a `guidance.settled` box is expected has empty probabilities (its track
    /// keeps its own); with flip-tta each classification carries its views (0: as seen,
    /// 1: mirrored), so a track classified one view at a time folds the mean of its latest two.
    public static func analyse(_ luma: LumaPlane, settings s: AnalysisSettings, model: FacialExpressionModel,
                               detector: any FaceDetector, guidance: AnalysisGuidance = .none) -> [TrackDetection] {
        Parallelism.withThreads(s.threads) {
            let boxes = detect(luma, settings: s, detector: detector, plan: guidance.plan, angles: guidance.angles)
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
            let crops = boxes.indices.filter { classify[$0] }.map { i in crop(luma, boxes[i], side: side, scale: s.cropScale) }
            var results = crops.isEmpty ? [] : model.predictViews(faces: crops, views: faceViews)[...]
            func marks(_ i: Int) -> [Double] { boxes[i].landmarks.flatMap { [$0.x, $0.y] } }
            return found.indices.map { i in
                guard classify[i] else { return TrackDetection(box: found[i], probabilities: [], landmarks: marks(i)) }
                let r = results.removeFirst()
                if !s.flipTTA { return TrackDetection(box: found[i], probabilities: r.asSeen!, landmarks: marks(i)) }
                var views: [Int: [Float]] = [:]
                views[0] = r.asSeen; views[1] = r.mirrored
                return TrackDetection(box: found[i], probabilities: FacialExpressionModel.combined(r), views: views, landmarks: marks(i))
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

extension LumaPlane {
    /// Runs `body` with a plane over a decoded picture: its grey, and its colour where it has
    /// three or four channels (RGB order, as `ImageCodec` decodes). `grey`: the picture's grey
    /// when the caller has it already (for pictures analysed many times).
    public static func over<R>(_ img: Image, grey known: [UInt8]? = nil, _ body: (LumaPlane) throws -> R) rethrows -> R {
        let grey = known ?? img.grey
        return try grey.withUnsafeBufferPointer { g in
            guard img.channels >= 3 else {
                return try body(LumaPlane(pixels: g.baseAddress!, width: img.width, height: img.height, stride: img.width))
            }
            return try img.pixels.withUnsafeBufferPointer { c in
                try body(LumaPlane(pixels: g.baseAddress!, width: img.width, height: img.height, stride: img.width,
                                   colour: .rgb(c.baseAddress!, stride: img.width * img.channels, pixelBytes: img.channels, r: 0, g: 1, b: 2)))
            }
        }
    }
}
