import Foundation

/// A face (or object) found in an image, in that image's pixel coordinates.
public struct DetectedBox: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    /// Raw detections merged into this one.
    public var neighbors: Int
    public init(x: Int, y: Int, width: Int, height: Int, neighbors: Int = 0) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.neighbors = neighbors
    }
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

/// An area of the image to search at the window sizes `minSize...maxSize` (pixels).
public struct ScanRegion: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int
    public var minSize: Int, maxSize: Int
    public init(x: Int, y: Int, width: Int, height: Int, minSize: Int, maxSize: Int) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.minSize = minSize; self.maxSize = maxSize
    }

    /// The region around a face box where the face can be on the next frame: the box grown by
    /// `margin` of its size on every side, windows from 0.7x to 1.45x its size.
    public static func around(x: Double, y: Double, width: Double, height: Double, margin: Double = 0.5) -> ScanRegion {
        let side = max(width, height)
        let m = side * margin
        return ScanRegion(x: Int((x - m).rounded(.down)), y: Int((y - m).rounded(.down)),
                          width: Int((width + 2 * m).rounded(.up)), height: Int((height + 2 * m).rounded(.up)),
                          minSize: Int((side * 0.7).rounded(.down)), maxSize: Int((side * 1.45).rounded(.up)))
    }
}

/// A boosted Haar cascade (OpenCV's XML format, stump or tree weak classifiers, upright features)
/// evaluated on integral images over an image pyramid, with OpenCV's neighbour grouping.
public final class HaarCascade: @unchecked Sendable {
    struct Rect { var x: Int32, y: Int32, w: Int32, h: Int32, weight: Float }
    struct Node { var feature: Int32, threshold: Float, left: Int32, right: Int32 }   // child <= 0: leaf -child
    struct Weak { var nodes: [Node]; var leaves: [Float] }
    struct Stage { var threshold: Float; var weak: [Weak] }

    public let windowWidth: Int, windowHeight: Int
    let stages: [Stage]
    /// How many leading stages can be evaluated eight windows at a time (those made of stumps).
    /// Windows are evaluated in blocks of eight while at least two of a block are alive, then
    /// a lone survivor continues by itself.
    let vectorStages: Int
    let features: [[Rect]]
    public let path: String

    public var stageCount: Int { stages.count }

    public init(contentsOf path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CascadeError(description: "cascade file not found or unreadable: \(path)")
        }
        let root: XMLNode
        do { root = try MiniXML.parse([UInt8](data)) } catch { throw CascadeError(description: "\(path) is not valid XML: \(error)") }
        func fail(_ why: String) -> CascadeError { CascadeError(description: "\(path) is not an OpenCV Haar cascade: \(why)") }
        guard let storage = root.child("opencv_storage"), let cascade = storage.children.first(where: { $0.name != "" && $0.child("stages") != nil }) else {
            throw fail("no <opencv_storage> with a cascade holding <stages>")
        }
        guard cascade.child("featureType").map({ $0.text.trimmingCharacters(in: " \n\r\t") }) == "HAAR" else {
            throw fail("featureType must be HAAR")
        }
        guard let w = cascade.child("width").flatMap({ Int($0.text.trimmingCharacters(in: " \n\r\t")) }),
              let h = cascade.child("height").flatMap({ Int($0.text.trimmingCharacters(in: " \n\r\t")) }), w > 2, h > 2, w < 256, h < 256 else {
            throw fail("missing or bad <width>/<height>")
        }
        windowWidth = w; windowHeight = h
        func numbers(_ n: XMLNode?, _ what: String) throws -> [Double] {
            guard let n else { throw fail("missing <\(what)>") }
            let parts = n.text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" })
            return try parts.map { p in
                guard let v = Double(p) else { throw fail("\"\(p)\" in <\(what)> is not a number") }
                return v
            }
        }
        guard let fnode = cascade.child("features") else { throw fail("missing <features>") }
        var feats: [[Rect]] = []
        for (fi, f) in fnode.all("_").enumerated() {
            if let t = f.child("tilted"), t.text.trimmingCharacters(in: " \n\r\t") == "1" {
                throw CascadeError(description: "\(path): feature \(fi) is tilted; tilted Haar features are not supported")
            }
            guard let rects = f.child("rects") else { throw fail("feature \(fi) has no <rects>") }
            var rs: [Rect] = []
            for r in rects.all("_") {
                let v = try numbers(r, "rects")
                guard v.count == 5 else { throw fail("feature \(fi): a rect needs 5 numbers") }
                let x = Int(v[0]), y = Int(v[1]), rw = Int(v[2]), rh = Int(v[3])
                guard x >= 0, y >= 0, rw > 0, rh > 0, x + rw <= w, y + rh <= h else { throw fail("feature \(fi): rect outside the \(w)x\(h) window") }
                rs.append(Rect(x: Int32(x), y: Int32(y), w: Int32(rw), h: Int32(rh), weight: Float(v[4])))
            }
            guard !rs.isEmpty, rs.count <= 3 else { throw fail("feature \(fi) has \(rs.count) rects") }
            feats.append(rs)
        }
        guard let snode = cascade.child("stages"), !snode.all("_").isEmpty else { throw fail("no stages") }
        var stages: [Stage] = []
        for (si, s) in snode.all("_").enumerated() {
            let thr = try numbers(s.child("stageThreshold"), "stageThreshold")
            guard thr.count == 1, let wc = s.child("weakClassifiers") else { throw fail("stage \(si) lacks a threshold or weak classifiers") }
            var weak: [Weak] = []
            for c in wc.all("_") {
                let nodeValues = try numbers(c.child("internalNodes"), "internalNodes")
                let leaves = try numbers(c.child("leafValues"), "leafValues")
                guard nodeValues.count % 4 == 0, !nodeValues.isEmpty, leaves.count == nodeValues.count / 4 + 1 else {
                    throw fail("stage \(si): weak classifier with \(nodeValues.count) node values and \(leaves.count) leaves")
                }
                var nodes: [Node] = []
                for k in stride(from: 0, to: nodeValues.count, by: 4) {
                    let fi = Int(nodeValues[k + 2])
                    guard fi >= 0, fi < feats.count else { throw fail("stage \(si): feature index \(fi) out of range") }
                    let l = Int(nodeValues[k]), r = Int(nodeValues[k + 1])
                    guard l > -leaves.count - 1, r > -leaves.count - 1, l < nodeValues.count / 4, r < nodeValues.count / 4 else {
                        throw fail("stage \(si): node child out of range")
                    }
                    nodes.append(Node(feature: Int32(fi), threshold: Float(nodeValues[k + 3]), left: Int32(l), right: Int32(r)))
                }
                weak.append(Weak(nodes: nodes, leaves: leaves.map(Float.init)))
            }
            guard !weak.isEmpty else { throw fail("stage \(si) has no weak classifiers") }
            stages.append(Stage(threshold: Float(thr[0]), weak: weak))
        }
        self.stages = stages
        self.vectorStages = stages.prefix { st in st.weak.allSatisfy { $0.nodes.count == 1 } }.count
        self.features = feats
    }

    /// Detects objects in an 8-bit grey image (any row stride).
    public func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                       parameters p: DetectionParameters = DetectionParameters()) -> [DetectedBox] {
        let raw = detectRaw(grey: grey, width: width, height: height, stride: stride, parameters: p)
        let grouped = HaarCascade.group(raw, minNeighbors: p.minNeighbors, eps: 0.2)
        return p.suppressNested ? HaarCascade.suppressNested(grouped, overlap: 0.6) : grouped
    }

    /// Keeps the larger of two boxes when the smaller has more than `overlap` of its area inside it.
    public static func suppressNested(_ boxes: [DetectedBox], overlap: Double) -> [DetectedBox] {
        var kept: [DetectedBox] = []
        for b in boxes.sorted(by: { $0.width * $0.height > $1.width * $1.height }) {
            let inside = kept.contains { k in
                let ix = max(0, min(b.x + b.width, k.x + k.width) - max(b.x, k.x))
                let iy = max(0, min(b.y + b.height, k.y + k.height) - max(b.y, k.y))
                return Double(ix * iy) > overlap * Double(b.width * b.height)
            }
            if !inside { kept.append(b) }
        }
        return kept
    }

    /// The cascade flattened for one integral-image width: every rectangle as four corner
    /// offsets, every node with its rectangles, so a window is evaluated with no indirection.
    struct Compiled {
        var nodeRects: [Int32]      // per node: 3 rects x 4 corner offsets (unused rects: zero weight)
        var nodeWeights: [Float]    // per node: 3 weights
        var nodeThreshold: [Float]
        var nodeLeft: [Int32], nodeRight: [Int32]
        var weakRoot: [Int32]       // first node of each weak classifier (nodes of one classifier are consecutive)
        var weakLeafBase: [Int32]   // first leaf of each weak classifier in `leaves`
        var leaves: [Float]
        var stageEnd: [Int32]       // end index into weakRoot for each stage
        var stageThreshold: [Float]
        /// Per weak classifier, when every one is a stump: the leaf for "below threshold" and "above".
        var stumpLeft: [Float], stumpRight: [Float]
        var allStumps: Bool
        /// Offsets of the variance rectangle's corners (the window less a one-pixel border).
        var variance: (a: Int, b: Int, c: Int, d: Int)
    }

    /// How an integral image is laid out in memory: each row holds its columns split `ways` ways
    /// by column mod `ways` (the columns 0, w, 2w, ..., then 1, w+1, ..., each part padded to the
    /// same length), so windows `ways` pixels apart are consecutive values and eight of them are
    /// one plain vector load (1 way: plain rows). A window's corner offsets depend on its column
    /// mod `ways`, its `phase`; the window at (x, y) is at index `origin(x, y)`.
    struct Layout: Hashable {
        var ways: Int
        var phase: Int
        static let rows = Layout(ways: 1, phase: 0)

        /// Values per row of an integral image `iw` values wide.
        func pitch(_ iw: Int) -> Int { (iw + ways - 1) / ways * ways }

        /// Index, from a window's origin, of the integral value `dx` columns right and `dy` rows below.
        func offset(dx: Int, dy: Int, width iw: Int) -> Int {
            let c = dx + phase
            return dy * pitch(iw) + (c % ways) * (pitch(iw) / ways) + c / ways
        }

        /// Index of the window at (x, y) (x mod ways must be this layout's phase).
        func origin(x: Int, y: Int, width iw: Int) -> Int { y * pitch(iw) + x / ways }
    }

    private struct CompiledKey: Hashable { var width: Int; var layout: Layout }
    private var compiledCache: [CompiledKey: Compiled] = [:]
    private let cacheLock = NSLock()

    /// The cascade compiled for one integral-image width and layout, kept for the next frames.
    func compiled(integralWidth iw: Int, layout: Layout = .rows) -> Compiled {
        cacheLock.lock(); defer { cacheLock.unlock() }
        let key = CompiledKey(width: iw, layout: layout)
        if let c = compiledCache[key] { return c }
        if compiledCache.count > 96 { compiledCache.removeAll() }   // frame sizes changed many times
        let c = compile(integralWidth: iw, layout: layout)
        compiledCache[key] = c
        return c
    }

    func compile(integralWidth iw: Int, layout: Layout = .rows) -> Compiled {
        func at(_ dx: Int, _ dy: Int) -> Int { layout.offset(dx: dx, dy: dy, width: iw) }
        let (ww, wh) = (windowWidth, windowHeight)
        var c = Compiled(nodeRects: [], nodeWeights: [], nodeThreshold: [], nodeLeft: [], nodeRight: [], weakRoot: [],
                         weakLeafBase: [], leaves: [], stageEnd: [], stageThreshold: [],
                         stumpLeft: [], stumpRight: [], allStumps: vectorStages == stages.count,
                         variance: (at(1, 1), at(ww - 1, 1), at(1, wh - 1), at(ww - 1, wh - 1)))
        for st in stages {
            for wk in st.weak {
                if wk.nodes.count == 1 {
                    c.stumpLeft.append(wk.leaves[Int(-wk.nodes[0].left)]); c.stumpRight.append(wk.leaves[Int(-wk.nodes[0].right)])
                } else {
                    c.stumpLeft.append(0); c.stumpRight.append(0)
                }
                c.weakRoot.append(Int32(c.nodeThreshold.count))
                c.weakLeafBase.append(Int32(c.leaves.count))
                c.leaves += wk.leaves
                for n in wk.nodes {
                    let rects = features[Int(n.feature)]
                    for k in 0..<3 {
                        if k < rects.count {
                            let r = rects[k], x = Int(r.x), y = Int(r.y), x1 = x + Int(r.w), y1 = y + Int(r.h)
                            c.nodeRects += [Int32(at(x, y)), Int32(at(x1, y)), Int32(at(x, y1)), Int32(at(x1, y1))]
                            c.nodeWeights.append(r.weight)
                        } else {
                            c.nodeRects += [0, 0, 0, 0]; c.nodeWeights.append(0)
                        }
                    }
                    c.nodeThreshold.append(n.threshold); c.nodeLeft.append(n.left); c.nodeRight.append(n.right)
                }
            }
            c.stageEnd.append(Int32(c.weakRoot.count))
            c.stageThreshold.append(st.threshold)
        }
        return c
    }


    /// One pyramid level: the image scaled down by `factor`, every window at step 1 or 2 (raw
    /// detections, before grouping). `vectorized: false` evaluates every window on its own.
    /// Window origins to evaluate at one pyramid level, in that level's pixels (half-open).
    struct LevelArea: Equatable { var x0: Int, y0: Int, x1: Int, y1: Int }

    /// Every window that passes the cascade, before grouping. A plan limits the windows evaluated
    /// (a band of rows of every level, and regions at chosen levels) without changing any
    /// window's result: each is evaluated on exactly the pixels the full scan would use.
    func detectRaw(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, parameters p: DetectionParameters) -> [DetectedBox] {
        guard width >= windowWidth, height >= windowHeight, p.scaleFactor > 1 else { return [] }
        var levels: [Double] = []
        var factor = 1.0
        while true {
            let ww = Int((Double(windowWidth) * factor).rounded()), wh = Int((Double(windowHeight) * factor).rounded())
            let sw = Int((Double(width) / factor).rounded()), sh = Int((Double(height) / factor).rounded())
            if sw < windowWidth || sh < windowHeight || ww > width || wh > height { break }
            if p.maxSize > 0 && (ww > p.maxSize || wh > p.maxSize) { break }
            if ww >= p.minSize && wh >= p.minSize { levels.append(factor) }
            factor *= p.scaleFactor
        }
        struct Task { var factor: Double; var area: LevelArea? }
        var tasks: [Task] = []
        for f in levels {
            guard let plan = p.plan else { tasks.append(Task(factor: f, area: nil)); continue }
            let sw = Int((Double(width) / f).rounded()), sh = Int((Double(height) / f).rounded())
            let step = HaarCascade.originGrid(factor: f, coarseStages: p.coarseStages)
            let originsX = sw - windowWidth + 1, originsY = sh - windowHeight + 1
            guard originsX > 0, originsY > 0 else { continue }
            // this phase's band of window rows (the bands of all phases tile the level)
            let period = plan.period, phase = plan.phase % plan.period
            func bound(_ k: Int) -> Int { k >= period ? originsY : (k * originsY / period) / step * step }
            let band = bound(phase)..<bound(phase + 1)
            if !band.isEmpty { tasks.append(Task(factor: f, area: LevelArea(x0: 0, y0: band.lowerBound, x1: originsX, y1: band.upperBound))) }
            // regions whose size range holds this level: the windows inside them, outside the band
            var rects: [LevelArea] = []
            let win = Double(windowWidth) * f
            for r in plan.regions where win >= Double(r.minSize) && win <= Double(r.maxSize) {
                var a = LevelArea(x0: max(0, Int((Double(r.x) / f).rounded(.down))) / step * step,
                                  y0: max(0, Int((Double(r.y) / f).rounded(.down))) / step * step,
                                  x1: min(originsX, Int((Double(r.x + r.width) / f).rounded(.up)) - windowWidth + 1),
                                  y1: min(originsY, Int((Double(r.y + r.height) / f).rounded(.up)) - windowHeight + 1))
                // the compiled cascade is kept per integral-image width: widen regions to a multiple of 32
                let cw = (a.x1 - a.x0 + windowWidth - 1 + 31) / 32 * 32
                a.x1 = min(originsX, a.x0 + cw - windowWidth + 1)
                if a.x1 - a.x0 + windowWidth - 1 < cw { a.x0 = max(0, (a.x1 + windowWidth - 1 - cw) / step * step) }
                if a.x0 < a.x1 && a.y0 < a.y1 { rects.append(a) }
            }
            // overlapping regions become one, so no window is evaluated (and counted) twice
            var merged = true
            while merged {
                merged = false
                outer: for i in rects.indices { for j in rects.indices where j > i {
                    let a = rects[i], b = rects[j]
                    if a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 {
                        rects[i] = LevelArea(x0: min(a.x0, b.x0), y0: min(a.y0, b.y0), x1: max(a.x1, b.x1), y1: max(a.y1, b.y1))
                        rects.remove(at: j); merged = true; break outer
                    }
                } }
            }
            for a in rects {
                for (y0, y1) in [(a.y0, min(a.y1, band.lowerBound)), (max(a.y0, band.upperBound), a.y1)] where y0 < y1 {
                    tasks.append(Task(factor: f, area: LevelArea(x0: a.x0, y0: y0, x1: a.x1, y1: y1)))
                }
            }
        }
        var raw: [DetectedBox] = []
        let lock = NSLock()
        if p.threads == 1 || tasks.count < 2 {
            for t in tasks {
                raw += detectLevel(grey: grey, width: width, height: height, stride: stride, factor: t.factor, area: t.area,
                                   coarseStages: p.coarseStages)
            }
        } else {
            DispatchQueue.concurrentPerform(iterations: tasks.count) { i in
                let found = detectLevel(grey: grey, width: width, height: height, stride: stride, factor: tasks[i].factor,
                                        area: tasks[i].area, coarseStages: p.coarseStages)
                lock.lock(); raw += found; lock.unlock()
            }
        }
        return raw
    }

    /// The grid window origins of a level are aligned to (areas, bands): OpenCV's step, 1 above
    /// scale 2 and 2 below, except that coarse-to-fine levels (above scale 2) scan blocks of 2x2.
    static func originGrid(factor: Double, coarseStages: Int) -> Int {
        factor > 2 && coarseStages == 0 ? 1 : 2
    }

    /// Calls `body` with the index of each set bit of `bits` (a lane of the eight-window kernel).
    @inline(__always) static func forEachLane(_ bits: UInt32, _ body: (Int) -> Void) {
        var b = bits
        while b != 0 {
            body(b.trailingZeroBitCount)
            b &= b - 1
        }
    }

    /// The windows of one pyramid level (or of `area` of it) that pass the cascade, as boxes in
    /// image pixels. Only the part of the level under the area is resized and integrated.
    /// `coarseStages` > 0: coarse-to-fine (DetectionParameters). `splitColumns`: lay the integral
    /// images out so the windows of a vector block are consecutive (`Layout`; the default), or
    /// row-major.
    func detectLevel(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, factor: Double,
                     vectorized: Bool = true, area: LevelArea? = nil, coarseStages: Int = 0,
                     splitColumns: Bool = true) -> [DetectedBox] {
        let fullW = Int((Double(width) / factor).rounded()), fullH = Int((Double(height) / factor).rounded())
        let coarse = factor > 2 && coarseStages > 0
        let step = factor > 2 ? 1 : 2              // OpenCV's: the windows of the full scan
        let grid = HaarCascade.originGrid(factor: factor, coarseStages: coarseStages)   // those evaluated first
        guard fullW >= windowWidth, fullH >= windowHeight else { return [] }
        var a = area ?? LevelArea(x0: 0, y0: 0, x1: fullW - windowWidth + 1, y1: fullH - windowHeight + 1)
        a.x0 = max(0, a.x0) / grid * grid; a.y0 = max(0, a.y0) / grid * grid
        a.x1 = min(a.x1, fullW - windowWidth + 1); a.y1 = min(a.y1, fullH - windowHeight + 1)
        guard a.x0 < a.x1, a.y0 < a.y1 else { return [] }
        // the sub-image under the area's windows
        let sw = a.x1 - a.x0 + windowWidth - 1, sh = a.y1 - a.y0 + windowHeight - 1
        var img = [UInt8](repeating: 0, count: sw * sh)
        resizeBilinear(grey, width, height, stride, &img, fullW, fullH, x0: a.x0, y0: a.y0, cw: sw, ch: sh)
        let iw = sw + 1
        let ways = splitColumns ? grid : 1
        let layout = Layout(ways: ways, phase: 0), pitch = layout.pitch(iw)
        // Integral images of values and squares, both wrapping 32-bit: a window's sums are exact
        // because they are far below 2^32 (a 24x24 window of 255s squared is 3.7e7). A spare row
        // keeps the vector loads of any window inside (up to 32 values wide in row-major). Each
        // row's running sums go to a row buffer, then to the image one part of the row at a time.
        let count = pitch * (sh + 2) + 64, plane = pitch / ways
        var sum = [Int32](repeating: 0, count: count)
        var sq = [UInt32](repeating: 0, count: count)
        var rowSum = [Int32](repeating: 0, count: iw), rowSq = [UInt32](repeating: 0, count: iw)
        img.withUnsafeBufferPointer { ip in sum.withUnsafeMutableBufferPointer { sp in sq.withUnsafeMutableBufferPointer { qp in
        rowSum.withUnsafeMutableBufferPointer { rsb in rowSq.withUnsafeMutableBufferPointer { rqb in
            for y in 0..<sh {
                var rs: Int32 = 0, rq: UInt32 = 0
                let row = ip.baseAddress! + y * sw
                for x in 0..<sw {
                    let v = UInt32(row[x]); rs &+= Int32(v); rq &+= v &* v
                    rsb[x + 1] = rs; rqb[x + 1] = rq
                }
                let above = y * pitch, here = (y + 1) * pitch
                for part in 0..<ways {
                    // columns part, part + ways, ... of this row, stored one after another
                    var c = part, i = part * plane
                    while c <= sw {
                        sp[here + i] = sp[above + i] &+ rsb[c]
                        qp[here + i] = qp[above + i] &+ rqb[c]
                        c += ways; i += 1
                    }
                }
            }
        } } } } }
        let ww = windowWidth, wh = windowHeight
        @inline(__always) func origin(_ x: Int, _ y: Int) -> Int { layout.origin(x: x, y: y, width: iw) }
        // integral values between the eight windows of a block
        let kstep = splitColumns ? 1 : grid
        var out: [DetectedBox] = []
        sum.withUnsafeBufferPointer { sp in sq.withUnsafeBufferPointer { qp in
            compiled(integralWidth: iw, layout: layout).withKernel(sum: sp.baseAddress!, squares: qp.baseAddress!, window: (ww, wh),
                                                                   step: kstep, vectorStages: vectorStages) { k in
                if coarse {
                    let between = Layout(ways: ways, phase: step % ways)
                    compiled(integralWidth: iw, layout: between).withKernel(sum: sp.baseAddress!, squares: qp.baseAddress!, window: (ww, wh),
                                                                            step: kstep, vectorStages: vectorStages) { kBetween in
                        out = HaarCascade.coarseToFine(first: k, between: kBetween, step: step, origin: origin, sw: sw, sh: sh,
                                                       ww: ww, wh: wh, vectorized: vectorized, deepStages: coarseStages)
                    }
                    return
                }
                let blockSpan = 7 * step + ww   // the columns a block of eight windows spans
                var y = 0
                while y + wh <= sh {
                    var x = 0
                    if vectorized && k.vectorStages > 0 {
                        while x + blockSpan <= sw {
                            HaarCascade.forEachLane(k.survivors(of: origin(x, y)).pass) { lane in
                                out.append(DetectedBox(x: x + lane * step, y: y, width: 0, height: 0))
                            }
                            x += 8 * step
                        }
                    }
                    while x + ww <= sw {
                        let o = origin(x, y)
                        if k.passes(o, from: 0, k.normaliser(o)) { out.append(DetectedBox(x: x, y: y, width: 0, height: 0)) }
                        x += step
                    }
                    y += step
                }
            }
        } }
        let bw = Int((Double(ww) * factor).rounded()), bh = Int((Double(wh) * factor).rounded())
        return out.map { DetectedBox(x: Int((Double($0.x + a.x0) * factor).rounded()), y: Int((Double($0.y + a.y0) * factor).rounded()), width: bw, height: bh) }
    }

    /// The coarse-to-fine scan of a level's sub-image (sw x sh) whose full scan has windows
    /// `step` pixels apart: the windows at multiples of 2 * step in x and y first, then the three
    /// at (x+step, y), (x, y+step), (x+step, y+step) where that one passes `deepStages` stages. Each
    /// window's outcome depends only on its own pixels and its block's first window, not on where
    /// the scan started, so bands and regions of a level give the full scan's windows. Eight
    /// first windows at a time when `vectorized`. `first`/`between`: kernels for the windows in
    /// the columns of the first pass and in those between (`Layout` phases); `origin(x, y)`: a
    /// window's index.
    static func coarseToFine(first k: CascadeKernel, between kb: CascadeKernel, step: Int, origin: (Int, Int) -> Int,
                             sw: Int, sh: Int, ww: Int, wh: Int, vectorized: Bool, deepStages: Int) -> [DetectedBox] {
        var out: [DetectedBox] = []
        let grid = 2 * step
        @inline(__always) func refine(_ x: Int, _ y: Int) {
            for d in 1...3 {   // (step, 0), (0, step), (step, step)
                let X = x + (d & 1) * step, Y = y + (d >> 1) * step
                guard X + ww <= sw, Y + wh <= sh else { continue }
                let kk = X % grid == 0 ? k : kb, o = origin(X, Y)
                if kk.passes(o, from: 0, kk.normaliser(o)) { out.append(DetectedBox(x: X, y: Y, width: 0, height: 0)) }
            }
        }
        let blockSpan = 7 * grid + ww
        var y = 0
        while y + wh <= sh {
            var x = 0
            if vectorized && k.vectorStages > 0 {
                while x + blockSpan <= sw {
                    let r = k.survivors(of: origin(x, y), deepStages: deepStages)
                    func report(_ bits: UInt32, dx: Int, dy: Int) {
                        HaarCascade.forEachLane(bits) { out.append(DetectedBox(x: x + dx + $0 * grid, y: y + dy, width: 0, height: 0)) }
                    }
                    report(r.pass, dx: 0, dy: 0)
                    if r.deep != 0 {
                        // the windows between, eight at a time where they all fit
                        if x + step + blockSpan <= sw && y + step + wh <= sh {
                            report(kb.survivors(of: origin(x + step, y)).pass & r.deep, dx: step, dy: 0)
                            report(k.survivors(of: origin(x, y + step)).pass & r.deep, dx: 0, dy: step)
                            report(kb.survivors(of: origin(x + step, y + step)).pass & r.deep, dx: step, dy: step)
                        } else {
                            HaarCascade.forEachLane(r.deep) { refine(x + $0 * grid, y) }
                        }
                    }
                    x += 8 * grid
                }
            }
            while x + ww <= sw {
                let o = origin(x, y), nf = k.normaliser(o)
                if k.passes(o, from: 0, to: deepStages, nf) {
                    if k.passes(o, from: deepStages, nf) { out.append(DetectedBox(x: x, y: y, width: 0, height: 0)) }
                    refine(x, y)
                }
                x += grid
            }
            y += grid
        }
        return out
    }

    /// Bilinear downscaling with 11-bit fixed-point weights.
    /// Bilinear downscaling of the whole image to `dw` x `dh`, computing only the `cw` x `ch`
    /// pixels from (`x0`, `y0`) of the result (each one exactly as in the whole result).
    func resizeBilinear(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ stride: Int, _ dst: inout [UInt8], _ dw: Int, _ dh: Int,
                        x0 ox: Int = 0, y0 oy: Int = 0, cw: Int? = nil, ch: Int? = nil) {
        let cw = cw ?? dw, ch = ch ?? dh
        let sx = Double(w) / Double(dw), sy = Double(h) / Double(dh)
        var xs0 = [Int](repeating: 0, count: cw), xs1 = xs0, ax = xs0
        for i in 0..<cw {
            let fx = max(0, (Double(ox + i) + 0.5) * sx - 0.5)
            xs0[i] = min(Int(fx), w - 1); xs1[i] = min(xs0[i] + 1, w - 1)
            ax[i] = Int((fx - Double(xs0[i])) * 2048)
        }
        dst.withUnsafeMutableBufferPointer { d in xs0.withUnsafeBufferPointer { x0 in xs1.withUnsafeBufferPointer { x1 in ax.withUnsafeBufferPointer { a in
            for j in 0..<ch {
                let fy = max(0, (Double(oy + j) + 0.5) * sy - 0.5)
                let y0 = min(Int(fy), h - 1), y1 = min(y0 + 1, h - 1)
                let ay = Int((fy - Double(y0)) * 2048)
                let r0 = src + y0 * stride, r1 = src + y1 * stride
                for x in 0..<cw {
                    let top = Int(r0[x0[x]]) * (2048 - a[x]) + Int(r0[x1[x]]) * a[x]
                    let bot = Int(r1[x0[x]]) * (2048 - a[x]) + Int(r1[x1[x]]) * a[x]
                    d[j * cw + x] = UInt8((top * (2048 - ay) + bot * ay + (1 << 21)) >> 22)
                }
            }
        } } } }
    }

    /// OpenCV's `groupRectangles`: clusters of similar boxes averaged; clusters with no more than
    /// `minNeighbors` members dropped, as are boxes inside a stronger one.
    public static func group(_ rects: [DetectedBox], minNeighbors: Int, eps: Double) -> [DetectedBox] {
        if minNeighbors <= 0 { return rects.map { var r = $0; r.neighbors = 1; return r } }
        let n = rects.count
        var parent = Array(0..<n)
        func find(_ i: Int) -> Int { var i = i; while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }; return i }
        func similar(_ a: DetectedBox, _ b: DetectedBox) -> Bool {
            let delta = eps * Double(min(a.width, b.width) + min(a.height, b.height)) * 0.5
            return Double(abs(a.x - b.x)) <= delta && Double(abs(a.y - b.y)) <= delta
                && Double(abs(a.x + a.width - b.x - b.width)) <= delta && Double(abs(a.y + a.height - b.y - b.height)) <= delta
        }
        for i in 0..<n { for j in (i + 1)..<max(n, i + 1) where similar(rects[i], rects[j]) {
            let a = find(i), b = find(j); if a != b { parent[a] = b }
        } }
        var sums: [Int: (x: Int, y: Int, w: Int, h: Int, n: Int)] = [:]
        for i in 0..<n {
            let r = find(i), b = rects[i]
            let s = sums[r] ?? (0, 0, 0, 0, 0)
            sums[r] = (s.x + b.x, s.y + b.y, s.w + b.width, s.h + b.height, s.n + 1)
        }
        var avg: [DetectedBox] = []
        for (_, s) in sums.sorted(by: { $0.key < $1.key }) where s.n > minNeighbors {
            let k = 1.0 / Double(s.n)
            avg.append(DetectedBox(x: Int((Double(s.x) * k).rounded()), y: Int((Double(s.y) * k).rounded()),
                                   width: Int((Double(s.w) * k).rounded()), height: Int((Double(s.h) * k).rounded()), neighbors: s.n))
        }
        return avg.enumerated().filter { (i, r1) in
            !avg.enumerated().contains { (j, r2) in
                guard i != j else { return false }
                let dx = Int(Double(r2.width) * eps), dy = Int(Double(r2.height) * eps)
                return r1.x >= r2.x - dx && r1.y >= r2.y - dy && r1.x + r1.width <= r2.x + r2.width + dx
                    && r1.y + r1.height <= r2.y + r2.height + dy && (r2.neighbors > max(3, r1.neighbors) || r1.neighbors < 3)
            }
        }.map { $0.1 }
    }
}
