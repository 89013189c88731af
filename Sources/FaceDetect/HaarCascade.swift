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
    public init() {}
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
        self.features = feats
    }

    /// Detects objects in an 8-bit grey image (any row stride).
    public func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                       parameters p: DetectionParameters = DetectionParameters()) -> [DetectedBox] {
        guard width >= windowWidth, height >= windowHeight, p.scaleFactor > 1 else { return [] }
        var raw: [DetectedBox] = []
        let lock = NSLock()
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
        // Largest levels first: they are the most work, so the pool stays balanced.
        DispatchQueue.concurrentPerform(iterations: levels.count) { li in
            let found = detectLevel(grey: grey, width: width, height: height, stride: stride, factor: levels[li])
            lock.lock(); raw += found; lock.unlock()
        }
        return HaarCascade.group(raw, minNeighbors: p.minNeighbors, eps: 0.2)
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
    }

    func compile(integralWidth iw: Int) -> Compiled {
        var c = Compiled(nodeRects: [], nodeWeights: [], nodeThreshold: [], nodeLeft: [], nodeRight: [], weakRoot: [],
                         weakLeafBase: [], leaves: [], stageEnd: [], stageThreshold: [])
        for st in stages {
            for wk in st.weak {
                c.weakRoot.append(Int32(c.nodeThreshold.count))
                c.weakLeafBase.append(Int32(c.leaves.count))
                c.leaves += wk.leaves
                for n in wk.nodes {
                    let rects = features[Int(n.feature)]
                    for k in 0..<3 {
                        if k < rects.count {
                            let r = rects[k]
                            let a = Int(r.y) * iw + Int(r.x)
                            c.nodeRects += [Int32(a), Int32(a + Int(r.w)), Int32(a + Int(r.h) * iw), Int32(a + Int(r.h) * iw + Int(r.w))]
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

    /// One pyramid level: the image scaled down by `factor`, every window at step 1 or 2.
    func detectLevel(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, factor: Double) -> [DetectedBox] {
        let sw = Int((Double(width) / factor).rounded()), sh = Int((Double(height) / factor).rounded())
        var img = [UInt8](repeating: 0, count: sw * sh)
        resizeBilinear(grey, width, height, stride, &img, sw, sh)
        let iw = sw + 1
        var sum = [Int32](repeating: 0, count: iw * (sh + 1))
        var sq = [Double](repeating: 0, count: iw * (sh + 1))
        for y in 0..<sh {
            var rs: Int32 = 0, rq: Double = 0
            for x in 0..<sw {
                let v = Int32(img[y * sw + x]); rs &+= v; rq += Double(v * v)
                sum[(y + 1) * iw + x + 1] = sum[y * iw + x + 1] &+ rs
                sq[(y + 1) * iw + x + 1] = sq[y * iw + x + 1] + rq
            }
        }
        let c = compile(integralWidth: iw)
        let step = factor > 2 ? 1 : 2
        let ww = windowWidth, wh = windowHeight
        let normArea = Double((ww - 2) * (wh - 2))
        let nStages = c.stageEnd.count
        var out: [DetectedBox] = []
        sum.withUnsafeBufferPointer { sp in sq.withUnsafeBufferPointer { qp in
        c.nodeRects.withUnsafeBufferPointer { nr in c.nodeWeights.withUnsafeBufferPointer { nw in
        c.nodeThreshold.withUnsafeBufferPointer { nt in c.nodeLeft.withUnsafeBufferPointer { nl in
        c.nodeRight.withUnsafeBufferPointer { nrt in c.weakRoot.withUnsafeBufferPointer { wr in
        c.weakLeafBase.withUnsafeBufferPointer { wl in c.leaves.withUnsafeBufferPointer { lv in
        c.stageEnd.withUnsafeBufferPointer { se in c.stageThreshold.withUnsafeBufferPointer { sth in
            let s = sp.baseAddress!, q = qp.baseAddress!
            var y = 0
            while y + wh <= sh {
                var x = 0
                while x + ww <= sw {
                    let o = y * iw + x
                    let a = o + iw + 1, b = a + (ww - 2), cc = a + (wh - 2) * iw, d = cc + (ww - 2)
                    let vs = Double(s[a] &- s[b] &- s[cc] &+ s[d])
                    let vq = q[a] - q[b] - q[cc] + q[d]
                    var nf = normArea * vq - vs * vs
                    nf = nf > 0 ? nf.squareRoot() : 1
                    let nff = Float(nf)
                    var pass = true, rejectedFirst = false
                    var wi = 0
                    for si in 0..<nStages {
                        var acc: Float = 0
                        let end = Int(se[si])
                        while wi < end {
                            var ni = Int(wr[wi])
                            let root = ni
                            while true {
                                let rb = ni * 12, wb = ni * 3
                                var v = nw[wb] * Float(s[o + Int(nr[rb])] &- s[o + Int(nr[rb + 1])] &- s[o + Int(nr[rb + 2])] &+ s[o + Int(nr[rb + 3])])
                                v += nw[wb + 1] * Float(s[o + Int(nr[rb + 4])] &- s[o + Int(nr[rb + 5])] &- s[o + Int(nr[rb + 6])] &+ s[o + Int(nr[rb + 7])])
                                if nw[wb + 2] != 0 {
                                    v += nw[wb + 2] * Float(s[o + Int(nr[rb + 8])] &- s[o + Int(nr[rb + 9])] &- s[o + Int(nr[rb + 10])] &+ s[o + Int(nr[rb + 11])])
                                }
                                let next = v < nt[ni] * nff ? nl[ni] : nrt[ni]
                                if next <= 0 { acc += lv[Int(wl[wi]) + Int(-next)]; break }
                                ni = root + Int(next)
                            }
                            wi += 1
                        }
                        if acc < sth[si] { pass = false; rejectedFirst = si == 0; break }
                    }
                    if pass {
                        out.append(DetectedBox(x: Int((Double(x) * factor).rounded()), y: Int((Double(y) * factor).rounded()),
                                               width: Int((Double(ww) * factor).rounded()), height: Int((Double(wh) * factor).rounded())))
                    }
                    // as OpenCV: a window the first stage rejects lets the next one be skipped too
                    x += rejectedFirst ? 2 * step : step
                }
                y += step
            }
        } } } } } } } } } } } }
        return out
    }

    func resizeBilinear(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ stride: Int, _ dst: inout [UInt8], _ dw: Int, _ dh: Int) {
        let sx = Double(w) / Double(dw), sy = Double(h) / Double(dh)
        dst.withUnsafeMutableBufferPointer { d in
            for y in 0..<dh {
                let fy = max(0, (Double(y) + 0.5) * sy - 0.5)
                let y0 = min(Int(fy), h - 1), y1 = min(y0 + 1, h - 1)
                let ay = Int((fy - Double(y0)) * 2048)
                let r0 = src + y0 * stride, r1 = src + y1 * stride
                for x in 0..<dw {
                    let fx = max(0, (Double(x) + 0.5) * sx - 0.5)
                    let x0 = min(Int(fx), w - 1), x1 = min(x0 + 1, w - 1)
                    let ax = Int((fx - Double(x0)) * 2048)
                    let top = Int(r0[x0]) * (2048 - ax) + Int(r0[x1]) * ax
                    let bot = Int(r1[x0]) * (2048 - ax) + Int(r1[x1]) * ax
                    d[y * dw + x] = UInt8((top * (2048 - ay) + bot * ay + (1 << 21)) >> 22)
                }
            }
        }
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
