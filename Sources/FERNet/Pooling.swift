/// Max pooling over [C, N, H, W] with a square window, stride and no padding (floor mode).
public final class MaxPool: Layer {
    public let kind = "maxpool"
    public let size: Int, stride: Int
    private var argmax: [Int32] = []
    private var inShape: [Int] = []

    public init(size: Int, stride: Int? = nil) {
        self.size = size
        self.stride = stride ?? size
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let c = x.shape[0], n = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ho = (h - size) / stride + 1, wo = (w - size) / stride + 1
        precondition(ho > 0 && wo > 0, "maxpool(\(size)) on a \(h)x\(w) input")
        var y = uninitializedFloats(c * n * ho * wo)   // every output is written
        var idx = [Int32](repeating: 0, count: training ? y.count : 0)
        idx.withUnsafeMutableBufferPointer { ip in
            MaxPool.forward(x.data, planes: c * n, h: h, w: w, k: size, s: stride, ho: ho, wo: wo, y: &y,
                            argmax: training ? ip.baseAddress : nil)
        }
        if training { argmax = idx; inShape = x.shape }
        return Tensor(shape: [c, n, ho, wo], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = [Float](repeating: 0, count: inShape.reduce(1, *))
        let plane = inShape[2] * inShape[3], oplane = dy.shape[2] * dy.shape[3]
        MaxPool.backward(dy.data, argmax: argmax, planes: inShape[0] * inShape[1], plane: plane, outPlane: oplane, dx: &dx)
        return Tensor(shape: inShape, data: dx)
    }

    public static func forward(_ x: [Float], planes: Int, h: Int, w: Int, k: Int, s: Int, ho: Int, wo: Int,
                               y: inout [Float], argmax ap: UnsafeMutablePointer<Int32>?) {
        if ap == nil && k == 2 && s == 2 {
            forward2x2(x, planes: planes, h: h, w: w, ho: ho, wo: wo, y: &y)
            return
        }
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            parallelFor(planes) { range in
                for pl in range {
                    let src = xp.baseAddress! + pl * h * w, dst = yp.baseAddress! + pl * ho * wo
                    for oy in 0..<ho { for ox in 0..<wo {
                        var best = -Float.infinity, bi = 0
                        for ky in 0..<k { for kx in 0..<k {
                            let i = (oy * s + ky) * w + ox * s + kx
                            if src[i] > best { best = src[i]; bi = i }
                        } }
                        dst[oy * wo + ox] = best
                        if let ap { ap[pl * ho * wo + oy * wo + ox] = Int32(bi) }
                    } }
                }
            }
        } }
    }

    /// Inference's 2×2, stride-2 pooling (no argmax kept): eight outputs at a time from two
    /// sixteen-wide loads of each input row pair. The maximum of each window is the same value
    /// the general loop picks.
    static func forward2x2(_ x: [Float], planes: Int, h: Int, w: Int, ho: Int, wo: Int, y: inout [Float]) {
        typealias V16 = SIMD16<Float>
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            parallelFor(planes, minChunk: Swift.max(1, 2048 / Swift.max(1, ho * wo))) { range in
                for pl in range {
                    let src = xp.baseAddress! + pl * h * w, dst = yp.baseAddress! + pl * ho * wo
                    for oy in 0..<ho {
                        let r0 = src + 2 * oy * w, r1 = r0 + w, out = dst + oy * wo
                        var ox = 0
                        while ox + 8 <= wo {
                            let a = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: V16.self)
                            let b = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: V16.self)
                            let m = a.replacing(with: b, where: b .> a)
                            let e = m.evenHalf, o = m.oddHalf
                            UnsafeMutableRawPointer(out + ox).storeBytes(of: e.replacing(with: o, where: o .> e), as: SIMD8<Float>.self)
                            ox += 8
                        }
                        while ox < wo {
                            let i = 2 * ox
                            out[ox] = Swift.max(Swift.max(r0[i], r0[i + 1]), Swift.max(r1[i], r1[i + 1]))
                            ox += 1
                        }
                    }
                }
            }
        } }
    }

    public static func backward(_ dy: [Float], argmax: [Int32], planes: Int, plane: Int, outPlane: Int, dx: inout [Float]) {
        dy.withUnsafeBufferPointer { dp in argmax.withUnsafeBufferPointer { ap in dx.withUnsafeMutableBufferPointer { xp in
            parallelFor(planes) { range in
                for pl in range {
                    let d = dp.baseAddress! + pl * outPlane, a = ap.baseAddress! + pl * outPlane, o = xp.baseAddress! + pl * plane
                    for i in 0..<outPlane { o[Int(a[i])] += d[i] }
                }
            }
        } } }
    }
}
