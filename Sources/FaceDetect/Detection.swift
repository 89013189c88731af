import Foundation

/// A face (or object) found in an image, in that image's pixel coordinates.
public struct DetectedBox: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    /// Raw detections merged into this one (a cascade's; 0 from a CNN detector).
    public var neighbors: Int
    /// The detector's confidence, 0...1 (a CNN detector's; 0 from a cascade).
    public var score: Double
    /// Five points, where the detector gives them: right eye, left eye (the person's), nose tip,
    /// right and left mouth corners, in the image's pixel coordinates. Empty from a cascade.
    public var landmarks: [Landmark]
    public init(x: Int, y: Int, width: Int, height: Int, neighbors: Int = 0, score: Double = 0, landmarks: [Landmark] = []) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.neighbors = neighbors
        self.score = score; self.landmarks = landmarks
    }
}

/// A point on a face, in image pixels.
public struct Landmark: Equatable, Sendable {
    public var x: Double, y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
}

/// Why a cascade file could not be used.
public struct CascadeError: Error, CustomStringConvertible {
    public let description: String
}

/// Parameters of one multi-scale detection pass (the names follow OpenCV's `detectMultiScale`).
public struct DetectionParameters: Sendable {
    public var scaleFactor: Double = 1.1
    public var minNeighbors: Int = 3
    public var minSize: Int = 30
    public var maxSize: Int = 0          // 0: no limit
    /// Drop a face whose box lies mostly (60%) inside a larger face's: the cascade also fires on
    /// parts of big faces and twice on one face at neighbouring scales.
    public var suppressNested = true
    /// Coarse-to-fine at the levels searched at every pixel (window scale above 2): windows on even
    /// rows and columns are evaluated first, and the three windows between them (to the right,
    /// below, diagonally) only where that window passes the first `coarseStages` stages of the
    /// cascade. A face gives many passing windows around it, so its neighbours pass those stages
    /// (measured: the same faces on the test and benchmark scenes). 0: every window, as OpenCV.
    /// (Doing the same at the levels below scale 2, searched at every other pixel, lost 6 of 15
    /// faces of 40 px in `testCoarseToFineKeepsTheFullScansFaces`: it is not done.)
    public var coarseStages = 4
    /// Pyramid levels evaluated at once: 1 runs on the calling thread only; 0: one per core.
    public var threads: Int = 0
    /// Which part of the pyramid to search (nil: all of it, over the whole image).
    public var plan: ScanPlan? = nil
    public init() {}
}

/// A partial search, for video: at every pyramid level, the `phase`-th of `period` bands of window
/// rows is searched (the bands of all phases tile the level), and each region at the levels whose
/// window size lies in its range (a face already tracked, searched for near where it is
/// expected). Over `period` frames with phases 0..<period, every level covers the whole image once.
public struct ScanPlan: Sendable, Equatable {
    public var period: Int
    public var phase: Int
    public var regions: [ScanRegion]
    public init(period: Int, phase: Int, regions: [ScanRegion] = []) { self.period = max(1, period); self.phase = phase; self.regions = regions }
}

/// An area of the image to search at the window sizes `minSize...maxSize` (pixels), turned by
/// `angle` degrees clockwise (a tracked face's tilt, so it is searched upright; YuNet only).
public struct ScanRegion: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public var minSize: Int, maxSize: Int
    public var angle: Double
    public init(x: Int, y: Int, width: Int, height: Int, minSize: Int, maxSize: Int, angle: Double = 0) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.minSize = minSize; self.maxSize = maxSize
        self.angle = angle
    }

    /// The region around a face box where the face can be on the next frame: the box grown by
    /// `margin` of its size on every side, windows from 0.7x to 1.45x its size.
    public static func around(x: Double, y: Double, width: Double, height: Double, margin: Double = 0.5, angle: Double = 0) -> ScanRegion {
        let side = max(width, height)
        let m = side * margin
        return ScanRegion(x: Int((x - m).rounded(.down)), y: Int((y - m).rounded(.down)),
                          width: Int((width + 2 * m).rounded(.up)), height: Int((height + 2 * m).rounded(.up)),
                          minSize: Int((side * 0.7).rounded(.down)), maxSize: Int((side * 1.45).rounded(.up)), angle: angle)
    }
}
