import Foundation

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

    /// Reads an OpenCV Haar cascade file (`HaarCascadeFile`); what is wrong with it is a
    /// `CascadeError` naming the file.
    public convenience init(contentsOf path: String) throws {
        let file = try HaarCascadeFile(contentsOf: path)
        self.init(path: path, windowWidth: file.windowWidth, windowHeight: file.windowHeight, stages: file.stages, features: file.features)
    }

    init(path: String, windowWidth: Int, windowHeight: Int, stages: [Stage], features: [[Rect]]) {
        self.path = path; self.windowWidth = windowWidth; self.windowHeight = windowHeight
        self.stages = stages; self.features = features
        self.vectorStages = stages.prefix { st in st.weak.allSatisfy { $0.nodes.count == 1 } }.count
    }

    /// Detects objects in an 8-bit grey image (any row stride).
    public func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                       parameters p: DetectionParameters = DetectionParameters()) -> [DetectedBox] {
        let raw = detectRaw(grey: grey, width: width, height: height, stride: stride, parameters: p)
        let grouped = HaarCascade.group(raw, minNeighbors: p.minNeighbors, eps: 0.2)
        return p.suppressNested ? HaarCascade.suppressNested(grouped, overlap: 0.6) : grouped
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
                // wrapping index arithmetic: every index is below `count`, checked once by the sizes above
                for x in 0..<sw {
                    let v = UInt32(row[x]); rs &+= Int32(v); rq &+= v &* v
                    rsb[x &+ 1] = rs; rqb[x &+ 1] = rq
                }
                let above = y &* pitch, here = (y &+ 1) &* pitch
                for part in 0..<ways {
                    // columns part, part + ways, ... of this row, stored one after another
                    var c = part, i = part &* plane
                    while c <= sw {
                        sp[here &+ i] = sp[above &+ i] &+ rsb[c]
                        qp[here &+ i] = qp[above &+ i] &+ rqb[c]
                        c &+= ways; i &+= 1
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
                let row = j &* cw
                for x in 0..<cw {   // weights in 0...2048: every product fits, the result is 0...255
                    let top = Int(r0[x0[x]]) &* (2048 &- a[x]) &+ Int(r0[x1[x]]) &* a[x]
                    let bot = Int(r1[x0[x]]) &* (2048 &- a[x]) &+ Int(r1[x1[x]]) &* a[x]
                    d[row &+ x] = UInt8(truncatingIfNeeded: (top &* (2048 &- ay) &+ bot &* ay &+ (1 << 21)) >> 22)
                }
            }
        } } } }
    }
}
