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
    public init(minSize: Int = 30, maxSize: Int = 0, plan: ScanPlan? = nil, threads: Int = 0) {
        self.minSize = minSize; self.maxSize = maxSize; self.plan = plan; self.threads = threads
    }
}

/// A face detector: an 8-bit grey frame in, face boxes out. The element, the web viewer and the
/// `fer` tool know detectors only through this.
public protocol FaceDetector: Sendable {
    /// What it is, for logs ("Haar cascade haarcascade_frontalface_default.xml, 25 stages").
    var summary: String { get }
    /// The faces in `grey` (rows `stride` bytes apart), in that frame's pixel coordinates.
    func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, request: DetectionRequest) -> [DetectedBox]
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
