import COpenBLAS

/// Winograd F(2×2, 3×3) convolution for inference (Lavin & Gray, "Fast Algorithms for
/// Convolutional Neural Networks", 2015): 3×3 kernels, stride 1, padding 1.
///
/// Each 2×2 block of outputs comes from a 4×4 block of inputs: the input block is transformed
/// (V = Bᵀ·d·B), multiplied element by element with the transformed kernel (U = G·g·Gᵀ) and summed
/// over input channels, which for all blocks at once is 16 matrix products U[ξ]·V[ξ] of
/// [Cout × Cin]·[Cin × blocks]; then the 4×4 products become the 2×2 outputs (Aᵀ·m·A). That is 16
/// multiplications per 4 outputs instead of 36: 2.25 times fewer than im2col's product.
/// Activations are [C, N, H, W], as everywhere in FERNet; any H and W (a block hanging over the
/// edge reads zeros and writes only the outputs that exist).
public enum Winograd {
    /// U[16][Cout][Cin] = G·g·Gᵀ for every kernel g of weights [Cout, Cin, 3, 3]. With
    /// `flipped`, the kernels of the adjoint convolution instead: U[16][Cin][Cout] from
    /// g'[c][o] = g[o][c] turned by 180°, so that `forward` over a gradient [Cout, N, H, W] gives
    /// the gradient of the input (stride 1, padding 1: the transposed convolution is a convolution).
    public static func transformWeights(_ w: [Float], outChannels cout: Int, inChannels cin: Int, flipped: Bool = false) -> [Float] {
        precondition(w.count == cout * cin * 9, "winograd weights: \(w.count) values for \(cout)x\(cin)x3x3")
        var u = uninitializedFloats(16 * cout * cin)
        let (rowsOut, colsIn) = flipped ? (cin, cout) : (cout, cin)
        w.withUnsafeBufferPointer { wp in u.withUnsafeMutableBufferPointer { up in
            let wb = wp.baseAddress!, ub = up.baseAddress!
            parallelFor(cout) { range in
                for o in range {
                    for c in 0..<cin {
                        let g = wb + (o * cin + c) * 9
                        // the kernel, turned by 180° for the adjoint
                        @inline(__always) func k(_ i: Int, _ j: Int) -> Float { flipped ? g[(2 - i) * 3 + (2 - j)] : g[i * 3 + j] }
                        // t = G·g (4x3), then U = t·Gᵀ (4x4); G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
                        var t = SIMD16<Float>()   // 4 rows of 3 (lane 4·i + j)
                        for j in 0..<3 {
                            let g0 = k(0, j), g1 = k(1, j), g2 = k(2, j)
                            t[j] = g0
                            t[4 + j] = 0.5 * (g0 + g1 + g2)
                            t[8 + j] = 0.5 * (g0 - g1 + g2)
                            t[12 + j] = g2
                        }
                        let (r, q) = flipped ? (c, o) : (o, c)
                        let dst = ub + r * colsIn + q
                        for i in 0..<4 {
                            let t0 = t[4 * i], t1 = t[4 * i + 1], t2 = t[4 * i + 2]
                            let plane = (i * 4) * rowsOut * colsIn
                            dst[plane] = t0
                            dst[plane + rowsOut * colsIn] = 0.5 * (t0 + t1 + t2)
                            dst[plane + 2 * rowsOut * colsIn] = 0.5 * (t0 - t1 + t2)
                            dst[plane + 3 * rowsOut * colsIn] = t2
                        }
                    }
                }
            }
        } }
        return u
    }

    /// y[Cout, N, H, W] = conv3x3(x[Cin, N, H, W], padding 1) + bias, then max(·, 0) if `relu`,
    /// with U from `transformWeights`.
    ///
    /// The transforms take eight neighbouring blocks at a time (SIMD lanes) from zero-padded copies
    /// of the four input rows they need; the 16 planes of V and M are padded apart so that their
    /// streams do not fall on the same cache sets.
    ///
    /// `maxWorkingFloats` bounds each of the two transformed buffers (V and M, 16 planes of
    /// channels × blocks): a batch whose buffers would be larger runs a group of images at a time
    /// through the same buffers, written straight into place in y. Each output is the same sum
    /// either way. Inference bounds it (`InferencePlan.winogradWorkingFloats`), so that an element
    /// classifying a frame's faces does not keep 60 MB of buffers for the first layers.
    public static func forward(_ x: [Float], inChannels cin: Int, n: Int, h: Int, w: Int,
                               u: [Float], bias: [Float], outChannels cout: Int, relu: Bool,
                               maxWorkingFloats: Int = .max) -> [Float] {
        precondition(x.count == cin * n * h * w && u.count == 16 * cout * cin && bias.count == cout)
        let th = (h + 1) / 2, tw = (w + 1) / 2
        let perImage = 16 * Swift.max(cin, cout) * th * tw
        let group = Swift.max(1, Swift.min(n, maxWorkingFloats / Swift.max(perImage, 1)))
        var v = uninitializedFloats(16 * (cin * group * th * tw + 24))
        var m = uninitializedFloats(16 * (cout * group * th * tw + 24))
        var y = uninitializedFloats(cout * n * h * w)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            v.withUnsafeMutableBufferPointer { vp in m.withUnsafeMutableBufferPointer { mp in
                var first = 0
                while first < n {
                    let images = first..<Swift.min(first + group, n)
                    forward(xp.baseAddress!, inChannels: cin, n: n, images: images, h: h, w: w, u: u, bias: bias,
                            outChannels: cout, relu: relu, v: vp.baseAddress!, m: mp.baseAddress!, into: yp.baseAddress!)
                    first = images.upperBound
                }
            } }
        } }
        return y
    }

    /// One group of images (`images` of the batch of `n` in x) through the transforms, with V and
    /// M buffers big enough for the group, into their places in y.
    static func forward(_ xb: UnsafePointer<Float>, inChannels cin: Int, n: Int, images: Range<Int>, h: Int, w: Int,
                        u: [Float], bias: [Float], outChannels cout: Int, relu: Bool,
                        v vb: UnsafeMutablePointer<Float>, m mb: UnsafeMutablePointer<Float>, into yb: UnsafeMutablePointer<Float>) {
        let th = (h + 1) / 2, tw = (w + 1) / 2, tiles = images.count * th * tw
        let vStride = cin * tiles + 24, mStride = cout * tiles + 24
        // input transform, a channel per task: V[ξ][c][tile] = (Bᵀ·d·B)[ξ], Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
        do {
            let padW = 2 * tw + 4
            parallelFor(cin) { range in
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: 4 * padW + 16)
                defer { rows.deallocate() }
                let scratch = rows + 4 * padW
                for c in range {
                    for (slot, img) in images.enumerated() {
                        let plane = xb + (c * n + img) * h * w
                        for ty in 0..<th {
                            // rows[i][q] = x[2ty - 1 + i][q - 1], zero outside the image
                            for i in 0..<4 {
                                let yy = 2 * ty - 1 + i, r = rows + i * padW
                                r.update(repeating: 0, count: padW)
                                if yy >= 0 && yy < h { (r + 1).update(from: plane + yy * w, count: w) }
                            }
                            let r0 = rows, r1 = rows + padW, r2 = rows + 2 * padW, r3 = rows + 3 * padW
                            let out = vb + c * tiles + (slot * th + ty) * tw
                            var tx = 0
                            while tx + 8 <= tw {
                                let q = 2 * tx
                                @inline(__always) func cols(_ r: UnsafeMutablePointer<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                                    let a = UnsafeRawPointer(r + q).loadUnaligned(as: SIMD16<Float>.self)
                                    let b = UnsafeRawPointer(r + q + 2).loadUnaligned(as: SIMD16<Float>.self)
                                    return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
                                }
                                let d0 = cols(r0), d1 = cols(r1), d2 = cols(r2), d3 = cols(r3)
                                // Bᵀ·d, row by row
                                let t0 = (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
                                let t1 = (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
                                let t2 = (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
                                let t3 = (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
                                // ·B, and out
                                @inline(__always) func put(_ i: Int, _ t: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
                                    let o = out + tx + 4 * i * vStride
                                    UnsafeMutableRawPointer(o).storeBytes(of: t.0 - t.2, as: SIMD8<Float>.self)
                                    UnsafeMutableRawPointer(o + vStride).storeBytes(of: t.1 + t.2, as: SIMD8<Float>.self)
                                    UnsafeMutableRawPointer(o + 2 * vStride).storeBytes(of: t.2 - t.1, as: SIMD8<Float>.self)
                                    UnsafeMutableRawPointer(o + 3 * vStride).storeBytes(of: t.1 - t.3, as: SIMD8<Float>.self)
                                }
                                put(0, t0); put(1, t1); put(2, t2); put(3, t3)
                                tx += 8
                            }
                            while tx < tw {
                                let q = 2 * tx
                                for j in 0..<4 {
                                    let a0 = r0[q + j], a1 = r1[q + j], a2 = r2[q + j], a3 = r3[q + j]
                                    // column j of Bᵀ·d
                                    scratch[j] = a0 - a2; scratch[4 + j] = a1 + a2; scratch[8 + j] = a2 - a1; scratch[12 + j] = a1 - a3
                                }
                                for i in 0..<4 {
                                    let a0 = scratch[4 * i], a1 = scratch[4 * i + 1], a2 = scratch[4 * i + 2], a3 = scratch[4 * i + 3]
                                    let o = out + tx + 4 * i * vStride
                                    o[0] = a0 - a2; o[vStride] = a1 + a2; o[2 * vStride] = a2 - a1; o[3 * vStride] = a1 - a3
                                }
                                tx += 1
                            }
                        }
                    }
                }
            }
        }
        // 16 products M[ξ] = U[ξ]·V[ξ], [Cout × tiles], shared out over the threads
        u.withUnsafeBufferPointer { up in
            let ub = up.baseAddress!
            parallelFor(16) { range in
                for xi in range {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(tiles), Int32(cin), 1,
                                ub + xi * cout * cin, Int32(cin), vb + xi * vStride, Int32(tiles), 0,
                                mb + xi * mStride, Int32(tiles))
                }
            }
        }
        // output transform, an output channel per task: y = Aᵀ·m·A + bias, Aᵀ = [1 1 1 0; 0 1 -1 -1]
        do {
            parallelFor(cout) { range in
                for o in range {
                    let b = bias[o]
                    for (slot, img) in images.enumerated() {
                        let plane = yb + (o * n + img) * h * w
                        for ty in 0..<th {
                            let src = mb + o * tiles + (slot * th + ty) * tw
                            let line0 = plane + 2 * ty * w, second = 2 * ty + 1 < h
                            var tx = 0
                            while tx + 8 <= tw && 2 * tx + 16 <= w {
                                @inline(__always) func e(_ k: Int) -> SIMD8<Float> {
                                    UnsafeRawPointer(src + k * mStride + tx).loadUnaligned(as: SIMD8<Float>.self)
                                }
                                let r0 = (e(0) + e(4) + e(8), e(1) + e(5) + e(9), e(2) + e(6) + e(10), e(3) + e(7) + e(11))
                                let r1 = (e(4) - e(8) - e(12), e(5) - e(9) - e(13), e(6) - e(10) - e(14), e(7) - e(11) - e(15))
                                let bv = SIMD8<Float>(repeating: b)
                                var o00 = r0.0 + r0.1 + r0.2 + bv, o01 = r0.1 - r0.2 - r0.3 + bv
                                var o10 = r1.0 + r1.1 + r1.2 + bv, o11 = r1.1 - r1.2 - r1.3 + bv
                                if relu {
                                    o00.replace(with: 0, where: o00 .< 0); o01.replace(with: 0, where: o01 .< 0)
                                    o10.replace(with: 0, where: o10 .< 0); o11.replace(with: 0, where: o11 .< 0)
                                }
                                let p0 = line0 + 2 * tx
                                for k in 0..<8 { p0[2 * k] = o00[k]; p0[2 * k + 1] = o01[k] }
                                if second {
                                    let p1 = p0 + w
                                    for k in 0..<8 { p1[2 * k] = o10[k]; p1[2 * k + 1] = o11[k] }
                                }
                                tx += 8
                            }
                            while tx < tw {
                                @inline(__always) func e(_ k: Int) -> Float { src[k * mStride + tx] }
                                let r00 = e(0) + e(4) + e(8), r01 = e(1) + e(5) + e(9), r02 = e(2) + e(6) + e(10), r03 = e(3) + e(7) + e(11)
                                let r10 = e(4) - e(8) - e(12), r11 = e(5) - e(9) - e(13), r12 = e(6) - e(10) - e(14), r13 = e(7) - e(11) - e(15)
                                var o00 = r00 + r01 + r02 + b, o01 = r01 - r02 - r03 + b
                                var o10 = r10 + r11 + r12 + b, o11 = r11 - r12 - r13 + b
                                if relu { o00 = Swift.max(o00, 0); o01 = Swift.max(o01, 0); o10 = Swift.max(o10, 0); o11 = Swift.max(o11, 0) }
                                let xx = 2 * tx, p0 = line0 + xx
                                p0[0] = o00
                                if xx + 1 < w { p0[1] = o01 }
                                if second {
                                    p0[w] = o10
                                    if xx + 1 < w { p0[w + 1] = o11 }
                                }
                                tx += 1
                            }
                        }
                    }
                }
            }
        }
    }
}
