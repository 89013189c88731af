import Foundation

/// What a face detector is asked for on one frame, whatever kind it is.
public struct DetectionRequest: Sendable, Equatable {
    /// Smallest and largest face sides to report, in pixels (`maxSize` 0: no limit).
    public var minSize: Int
    public var maxSize: Int
    /// Which part of the frame to search (nil: all of it). Detectors that look at the whole frame
    /// at once may search more than asked.
    public var plan: ScanPlan?
    /// Threads the detector may use (0: one per core; 1: the calling thread only).
    public var threads: Int
    /// The turns (degrees, clockwise on screen) at which a search of the whole frame looks at it:
    /// 0 as it is; each other angle costs a search of its own and finds heads tilted about that
    /// much. YuNet honours them; the Haar cascade looks upright only.
    public var angles: [Double]
    public init(minSize: Int = 30, maxSize: Int = 0, plan: ScanPlan? = nil, threads: Int = 0, angles: [Double] = [0]) {
        self.minSize = minSize; self.maxSize = maxSize; self.plan = plan; self.threads = threads; self.angles = angles
    }
}

/// Where a frame's colour is, beside its 8-bit grey (luma) plane, for detectors that see colour.
/// Valid for the call it is passed to.
public enum ColourSource {
    /// Packed 8-bit RGB in any order: `pixelBytes` bytes a pixel (3 or 4), red, green and blue at
    /// byte offsets `r`, `g`, `b` within a pixel, rows `stride` bytes apart.
    case rgb(UnsafePointer<UInt8>, stride: Int, pixelBytes: Int, r: Int, g: Int, b: Int)
    /// The chroma of 8-bit YUV whose luma is the grey plane: the U and V samples of chroma column
    /// c and row r at `u + r * stride + c * step` (and `v + ...`), one sample for 2^`shiftX` x
    /// 2^`shiftY` pixels (4:2:0: 1, 1; 4:2:2: 1, 0), turned to RGB by `matrix`. I420 and YV12 (two
    /// planes, step 1), NV12 and NV21 (one interleaved plane, step 2), YUY2 and UYVY (inside the
    /// packed row, step 4) all fit.
    case chroma(u: UnsafePointer<UInt8>, v: UnsafePointer<UInt8>, stride: Int, step: Int, shiftX: Int, shiftY: Int,
                matrix: YUVMatrix = .bt601)

    /// The same source for the part of the picture from pixel (x, y) on (x and y even for chroma).
    public func offset(x: Int, y: Int) -> ColourSource {
        switch self {
        case let .rgb(p, stride, bytes, r, g, b):
            return .rgb(p + y * stride + x * bytes, stride: stride, pixelBytes: bytes, r: r, g: g, b: b)
        case let .chroma(u, v, stride, step, sx, sy, m):
            let o = (y >> sy) * stride + (x >> sx) * step
            return .chroma(u: u + o, v: v + o, stride: stride, step: step, shiftX: sx, shiftY: sy, matrix: m)
        }
    }

    /// A copy of the colour of a `width` x `height` picture that outlives the frame (for an
    /// analysis that runs after the frame has gone on), and the source over it.
    public func copy(width: Int, height: Int) -> OwnedColour {
        switch self {
        case let .rgb(p, stride, bytes, r, g, b):
            let row = width * bytes
            var data = [UInt8](repeating: 0, count: row * height)
            data.withUnsafeMutableBufferPointer { d in
                for y in 0..<height { (d.baseAddress! + y * row).update(from: p + y * stride, count: row) }
            }
            return OwnedColour(data: data) { .rgb($0, stride: row, pixelBytes: bytes, r: r, g: g, b: b) }
        case let .chroma(u, v, stride, step, sx, sy, m):
            let base = min(u, v), gap = abs(v - u)
            let cols = (width + (1 << sx) - 1) >> sx, rows = (height + (1 << sy) - 1) >> sy
            let row = (cols - 1) * step + 1 + gap
            var data = [UInt8](repeating: 0, count: row * rows)
            data.withUnsafeMutableBufferPointer { d in
                for y in 0..<rows { (d.baseAddress! + y * row).update(from: base + y * stride, count: row) }
            }
            let uFirst = u <= v
            return OwnedColour(data: data) {
                .chroma(u: uFirst ? $0 : $0 + gap, v: uFirst ? $0 + gap : $0, stride: row, step: step, shiftX: sx, shiftY: sy, matrix: m)
            }
        }
    }
}

/// How 8-bit YUV becomes RGB: the matrix (BT.601 or BT.709) and the range of the samples (limited:
/// luma 16-235 and chroma 16-240, as video usually is; full: 0-255, as JPEG and MJPEG cameras
/// give), as the caps' colorimetry says.
public struct YUVMatrix: Sendable, Equatable {
    /// R = ys (Y - y0) + rv (V - 128); G = ys (Y - y0) - gu (U - 128) - gv (V - 128); B = ys (Y - y0) + bu (U - 128).
    public let ys: Float, y0: Float, rv: Float, gu: Float, gv: Float, bu: Float

    public init(bt709: Bool, fullRange: Bool) {
        // Kr, Kb of the matrix; full-range chroma scale 2 (1 - K)
        let (kr, kb): (Float, Float) = bt709 ? (0.2126, 0.0722) : (0.299, 0.114)
        let kg = 1 - kr - kb
        let c: Float = fullRange ? 1 : 255 / 224
        ys = fullRange ? 1 : 255 / 219; y0 = fullRange ? 0 : 16
        rv = 2 * (1 - kr) * c; bu = 2 * (1 - kb) * c
        gu = 2 * (1 - kb) * kb / kg * c; gv = 2 * (1 - kr) * kr / kg * c
    }

    public static let bt601 = YUVMatrix(bt709: false, fullRange: false)
}

/// A frame's colour copied out of the frame (`ColourSource.copy`).
public struct OwnedColour: @unchecked Sendable {
    let data: [UInt8]
    let source: (UnsafePointer<UInt8>) -> ColourSource
    /// Runs `body` with a source over the copy.
    public func with<R>(_ body: (ColourSource) throws -> R) rethrows -> R {
        try data.withUnsafeBufferPointer { try body(source($0.baseAddress!)) }
    }
}

/// A face detector: an 8-bit grey frame (and its colour, where it has one) in, face boxes out.
/// The element, the web viewer and the `fer` tool know detectors only through this.
public protocol FaceDetector: Sendable {
    /// What it is, for logs ("Haar cascade haarcascade_frontalface_default.xml, 25 stages").
    var summary: String { get }
    /// The faces in `grey` (rows `stride` bytes apart), in that frame's pixel coordinates.
    func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, request: DetectionRequest) -> [DetectedBox]
    /// The same with the frame's colour beside its grey (nil: none); detectors that see only grey
    /// ignore it.
    func detect(grey: UnsafePointer<UInt8>, colour: ColourSource?, width: Int, height: Int, stride: Int,
                request: DetectionRequest) -> [DetectedBox]
}

extension FaceDetector {
    public func detect(grey: UnsafePointer<UInt8>, colour: ColourSource?, width: Int, height: Int, stride: Int,
                       request: DetectionRequest) -> [DetectedBox] {
        detect(grey: grey, width: width, height: height, stride: stride, request: request)
    }
}

/// A Haar cascade with its tuning (the parameters of OpenCV's `detectMultiScale`).
public struct HaarDetector: FaceDetector {
    public let cascade: HaarCascade
    public var scaleFactor: Double
    public var minNeighbors: Int
    /// See `DetectionParameters.coarseStages`.
    public var coarseStages: Int

    public init(cascade: HaarCascade, scaleFactor: Double = 1.25, minNeighbors: Int = 3,
                coarseStages: Int = DetectionParameters().coarseStages) {
        self.cascade = cascade; self.scaleFactor = scaleFactor; self.minNeighbors = minNeighbors; self.coarseStages = coarseStages
    }

    public var summary: String {
        "Haar cascade \((cascade.path as NSString).lastPathComponent), \(cascade.stageCount) stages"
    }

    public func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, request: DetectionRequest) -> [DetectedBox] {
        var p = DetectionParameters()
        p.scaleFactor = scaleFactor; p.minNeighbors = minNeighbors; p.coarseStages = coarseStages
        p.minSize = request.minSize; p.maxSize = request.maxSize; p.plan = request.plan; p.threads = request.threads
        return cascade.detect(grey: grey, width: width, height: height, stride: stride, parameters: p)
    }
}
