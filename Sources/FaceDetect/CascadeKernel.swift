/// The inner loop of cascade detection on one pyramid level: plain pointers only, so nothing is
/// reference-counted per window.
///
/// Windows are evaluated eight at a time (consecutive integral values, or every other one at
/// step 2; the step-2 scans lay the integral images out so that theirs are consecutive) through the leading stump-only stages while at least
/// two of the eight are alive; a lone survivor then goes on by itself.
struct CascadeKernel {
    let sum: UnsafePointer<Int32>, squares: UnsafePointer<UInt32>
    let nodeRects: UnsafePointer<Int32>, nodeWeights: UnsafePointer<Float>, nodeThreshold: UnsafePointer<Float>
    let nodeLeft: UnsafePointer<Int32>, nodeRight: UnsafePointer<Int32>
    let weakRoot: UnsafePointer<Int32>, weakLeafBase: UnsafePointer<Int32>, leaves: UnsafePointer<Float>
    let stageEnd: UnsafePointer<Int32>, stageThreshold: UnsafePointer<Float>
    let stumpLeft: UnsafePointer<Float>, stumpRight: UnsafePointer<Float>, allStumps: Bool
    let stageCount: Int, vectorStages: Int, step: Int
    /// Corners of the variance rectangle (the window less a one-pixel border), and its area.
    let va: Int, vb: Int, vc: Int, vd: Int, normArea: Double

    /// The variance normaliser of the window at integral offset o.
    @inline(__always) func normaliser(_ o: Int) -> Float {
        let vs = Double(sum[o &+ va] &- sum[o &+ vb] &- sum[o &+ vc] &+ sum[o &+ vd])
        let vq = Double(squares[o &+ va] &- squares[o &+ vb] &- squares[o &+ vc] &+ squares[o &+ vd])
        let nf = normArea * vq - vs * vs
        return Float(nf > 0 ? nf.squareRoot() : 1)
    }

    @inline(__always) func rect(_ o: Int, _ rb: Int) -> Float {
        Float(sum[o &+ Int(nodeRects[rb])] &- sum[o &+ Int(nodeRects[rb &+ 1])] &- sum[o &+ Int(nodeRects[rb &+ 2])] &+ sum[o &+ Int(nodeRects[rb &+ 3])])
    }

    /// Whether the window at offset o passes stages `first..<last` (all the rest by default),
    /// evaluated on its own.
    @inline(__always) func passes(_ o: Int, from first: Int, to last: Int = .max, _ nf: Float) -> Bool {
        let end = Swift.min(last, stageCount)
        if first >= end { return true }
        return allStumps ? passesStumps(o, from: first, to: end, nf) : passesTrees(o, from: first, to: end, nf)
    }

    /// `passes` for a cascade of stumps (node i is weak classifier i), without branches per stump.
    @inline(__always) func passesStumps(_ o: Int, from first: Int, to last: Int, _ nf: Float) -> Bool {
        var wi = first == 0 ? 0 : Int(stageEnd[first - 1])
        for si in first..<last {
            var acc: Float = 0
            let end = Int(stageEnd[si])
            while wi < end {
                let rb = wi &* 12, wb = wi &* 3
                let v = nodeWeights[wb] * rect(o, rb) + nodeWeights[wb &+ 1] * rect(o, rb &+ 4) + nodeWeights[wb &+ 2] * rect(o, rb &+ 8)
                acc += v < nodeThreshold[wi] * nf ? stumpLeft[wi] : stumpRight[wi]
                wi &+= 1
            }
            if acc < stageThreshold[si] { return false }
        }
        return true
    }

    @inline(__always) func passesTrees(_ o: Int, from first: Int, to last: Int, _ nf: Float) -> Bool {
        var wi = first == 0 ? 0 : Int(stageEnd[first - 1])
        for si in first..<last {
            var acc: Float = 0
            let end = Int(stageEnd[si])
            while wi < end {
                var ni = Int(weakRoot[wi])
                let root = ni
                while true {
                    let rb = ni &* 12, wb = ni &* 3
                    var v = nodeWeights[wb] * rect(o, rb) + nodeWeights[wb &+ 1] * rect(o, rb &+ 4)
                    if nodeWeights[wb &+ 2] != 0 { v += nodeWeights[wb &+ 2] * rect(o, rb &+ 8) }
                    let next = v < nodeThreshold[ni] * nf ? nodeLeft[ni] : nodeRight[ni]
                    if next <= 0 { acc += leaves[Int(weakLeafBase[wi]) &- Int(next)]; break }
                    ni = root &+ Int(next)
                }
                wi &+= 1
            }
            if acc < stageThreshold[si] { return false }
        }
        return true
    }

    @inline(__always) func load8<T: SIMDScalar & FixedWidthInteger>(_ base: UnsafePointer<T>, _ o: Int) -> SIMD8<T> {
        step == 1 ? UnsafeRawPointer(base.advanced(by: o)).loadUnaligned(as: SIMD8<T>.self)
                  : UnsafeRawPointer(base.advanced(by: o)).loadUnaligned(as: SIMD16<T>.self).evenHalf
    }

    @inline(__always) func rect8(_ o: Int, _ rb: Int) -> SIMD8<Float> {
        SIMD8<Float>(load8(sum, o &+ Int(nodeRects[rb])) &- load8(sum, o &+ Int(nodeRects[rb &+ 1]))
                     &- load8(sum, o &+ Int(nodeRects[rb &+ 2])) &+ load8(sum, o &+ Int(nodeRects[rb &+ 3])))
    }

    /// The eight windows at o, o + step, ..., o + 7 * step: a bit per window that passes the whole
    /// cascade (`pass`), and a bit per window that passes the first `deepStages` stages (`deep`).
    /// The caller keeps every load in bounds.
    @inline(__always) func survivors(of o: Int, deepStages: Int = 0) -> (pass: UInt32, deep: UInt32) {
        let vs = SIMD8<Double>(load8(sum, o &+ va) &- load8(sum, o &+ vb) &- load8(sum, o &+ vc) &+ load8(sum, o &+ vd))
        let vq = SIMD8<Double>(load8(squares, o &+ va) &- load8(squares, o &+ vb) &- load8(squares, o &+ vc) &+ load8(squares, o &+ vd))
        var nf2 = normArea * vq - vs * vs
        nf2.replace(with: 1, where: nf2 .<= 0)
        let nf = SIMD8<Float>(nf2.squareRoot())
        var alive = SIMDMask<SIMD8<Int32>>(repeating: true)
        var wi = 0, si = 0, lanes = 8
        var deep: UInt32 = deepStages == 0 ? 0xFF : 0
        while si < vectorStages && lanes > 1 {
            var acc = SIMD8<Float>(repeating: 0)
            let end = Int(stageEnd[si])
            while wi < end {
                let ni = Int(weakRoot[wi]), rb = ni &* 12, wb = ni &* 3
                var v = nodeWeights[wb] * rect8(o, rb) + nodeWeights[wb &+ 1] * rect8(o, rb &+ 4)
                if nodeWeights[wb &+ 2] != 0 { v += nodeWeights[wb &+ 2] * rect8(o, rb &+ 8) }
                acc += SIMD8<Float>(repeating: stumpRight[wi]).replacing(with: stumpLeft[wi], where: v .< nodeThreshold[ni] * nf)
                wi &+= 1
            }
            alive = alive .& (acc .>= stageThreshold[si])
            si &+= 1
            lanes = 0
            for k in 0..<8 where alive[k] { lanes &+= 1 }
            if si == deepStages { for k in 0..<8 where alive[k] { deep |= 1 << UInt32(k) } }
        }
        var bits: UInt32 = 0
        if lanes > 0 {
            for k in 0..<8 where alive[k] {
                if si < deepStages {
                    // left the vector loop before the deep stage: this window's own depth
                    guard passes(o + k * step, from: si, to: deepStages, nf[k]) else { continue }
                    deep |= 1 << UInt32(k)
                    if passes(o + k * step, from: deepStages, nf[k]) { bits |= 1 << UInt32(k) }
                } else if si == stageCount || passes(o + k * step, from: si, nf[k]) {
                    bits |= 1 << UInt32(k)
                }
            }
        }
        return (bits, deep)
    }
}

extension HaarCascade.Compiled {
    /// Runs `body` with a kernel over these arrays and the given integral images (laid out as
    /// these arrays were compiled for). `step`: how far apart, in integral values, the eight
    /// windows of a block are (1 for consecutive values).
    func withKernel<R>(sum: UnsafePointer<Int32>, squares: UnsafePointer<UInt32>,
                       window: (width: Int, height: Int), step: Int, vectorStages: Int,
                       _ body: (CascadeKernel) -> R) -> R {
        nodeRects.withUnsafeBufferPointer { nr in nodeWeights.withUnsafeBufferPointer { nw in
        nodeThreshold.withUnsafeBufferPointer { nt in nodeLeft.withUnsafeBufferPointer { nl in
        nodeRight.withUnsafeBufferPointer { nrt in weakRoot.withUnsafeBufferPointer { wr in
        weakLeafBase.withUnsafeBufferPointer { wl in leaves.withUnsafeBufferPointer { lv in
        stageEnd.withUnsafeBufferPointer { se in stageThreshold.withUnsafeBufferPointer { sth in
        stumpLeft.withUnsafeBufferPointer { sl in stumpRight.withUnsafeBufferPointer { sr in
            let (va, vb, vc, vd) = variance
            return body(CascadeKernel(
                sum: sum, squares: squares, nodeRects: nr.baseAddress!, nodeWeights: nw.baseAddress!,
                nodeThreshold: nt.baseAddress!, nodeLeft: nl.baseAddress!, nodeRight: nrt.baseAddress!,
                weakRoot: wr.baseAddress!, weakLeafBase: wl.baseAddress!, leaves: lv.baseAddress!,
                stageEnd: se.baseAddress!, stageThreshold: sth.baseAddress!,
                stumpLeft: sl.baseAddress!, stumpRight: sr.baseAddress!, allStumps: allStumps, stageCount: stageEnd.count,
                vectorStages: vectorStages, step: step, va: va, vb: vb, vc: vc, vd: vd,
                normArea: Double((window.width - 2) * (window.height - 2))))
        } } } } } } } } } } } }
    }
}
