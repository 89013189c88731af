/// Rectified linear unit, elementwise on any shape.
public final class ReLU: Layer {
    public let kind = "relu"
    private var output: [Float] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let y = ReLU.forward(x.data)
        if training { output = y }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        Tensor(shape: dy.shape, data: ReLU.backward(output: output, dy: dy.data))
    }

    /// max(x, 0), one pass into a new buffer.
    public static func forward(_ x: [Float]) -> [Float] {
        var y = uninitializedFloats(x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { p in
            let s = xp.baseAddress!, b = p.baseAddress!
            // branch-free, so it vectorises (half the signs are negative: a branch mispredicts)
            parallelFor(p.count, minChunk: 1 << 16) { r in for i in r { b[i] = Swift.max(s[i], 0) } }
        } }
        return y
    }

    /// dy where the output was positive, else 0, one pass into a new buffer.
    public static func backward(output: [Float], dy: [Float]) -> [Float] {
        var dx = uninitializedFloats(dy.count)
        output.withUnsafeBufferPointer { op in dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            let o = op.baseAddress!, g = gp.baseAddress!, d = dp.baseAddress!
            // eight lanes at a time, masked without a branch (a sign branch mispredicts half the time)
            parallelFor(dp.count, minChunk: 1 << 16) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let ov = UnsafeRawPointer(o + i).loadUnaligned(as: SIMD8<Float>.self)
                    let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(d + i).storeBytes(of: gv.replacing(with: 0, where: ov .<= 0), as: SIMD8<Float>.self)
                    i += 8
                }
                while i < r.upperBound { d[i] = o[i] > 0 ? g[i] : 0; i += 1 }
            }
        } } }
        return dx
    }
}

/// Inverted dropout: in training, zeroes each value with probability `rate` and scales the rest
/// by 1/(1-rate); identity at inference.
public final class Dropout: Layer {
    public let kind = "dropout"
    public let rate: Float
    private var mask: [Float] = []
    private var rng: SeededGenerator

    public init(rate: Float, seed: UInt64) {
        precondition(rate >= 0 && rate < 1, "dropout rate must be in [0, 1)")
        self.rate = rate
        self.rng = SeededGenerator(seed: seed)
    }

    public func reseed(_ seed: UInt64) { rng = SeededGenerator(seed: seed) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard training && rate > 0 else { mask = []; return x }
        let keep = 1 / (1 - rate)
        mask = [Float](repeating: 0, count: x.count)
        for i in 0..<mask.count { mask[i] = rng.uniform() < rate ? 0 : keep }
        var y = x.data
        for i in 0..<y.count { y[i] *= mask[i] }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard !mask.isEmpty else { return dy }
        var dx = dy.data
        for i in 0..<dx.count { dx[i] *= mask[i] }
        return Tensor(shape: dy.shape, data: dx)
    }
}

/// [C, N, H, W] → [N, C·H·W], each sample's features in PyTorch's (c, h, w) order.
public final class Flatten: Layer {
    public let kind = "flatten"
    private var inShape: [Int] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard x.shape.count == 4 else { return x }
        if training { inShape = x.shape }   // inference writes nothing: a plan may run on several threads
        let c = x.shape[0], n = x.shape[1], plane = x.shape[2] * x.shape[3]
        var y = [Float](repeating: 0, count: x.count)
        x.data.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            for ci in 0..<c { for ni in 0..<n {
                let src = xp.baseAddress! + (ci * n + ni) * plane, dst = yp.baseAddress! + ni * c * plane + ci * plane
                for i in 0..<plane { dst[i] = src[i] }
            } }
        } }
        return Tensor(shape: [n, c * plane], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard inShape.count == 4 else { return dy }
        let c = inShape[0], n = inShape[1], plane = inShape[2] * inShape[3]
        var dx = [Float](repeating: 0, count: dy.count)
        dy.data.withUnsafeBufferPointer { dp in dx.withUnsafeMutableBufferPointer { xp in
            for ci in 0..<c { for ni in 0..<n {
                let dst = xp.baseAddress! + (ci * n + ni) * plane, src = dp.baseAddress! + ni * c * plane + ci * plane
                for i in 0..<plane { dst[i] = src[i] }
            } }
        } }
        return Tensor(shape: inShape, data: dx)
    }
}

/// Global average pooling: [C, N, H, W] → [N, C].
public final class GlobalAvgPool: Layer {
    public let kind = "gap"
    private var inShape: [Int] = []
    public init() {}

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        if training { inShape = x.shape }
        let c = x.shape[0], n = x.shape[1], plane = x.shape[2] * x.shape[3]
        var y = [Float](repeating: 0, count: n * c)
        for ci in 0..<c { for ni in 0..<n {
            var s: Float = 0
            let base = (ci * n + ni) * plane
            for i in 0..<plane { s += x.data[base + i] }
            y[ni * c + ci] = s / Float(plane)
        } }
        return Tensor(shape: [n, c], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let c = inShape[0], n = inShape[1], plane = inShape[2] * inShape[3]
        var dx = [Float](repeating: 0, count: inShape.reduce(1, *))
        for ci in 0..<c { for ni in 0..<n {
            let g = dy.data[ni * c + ci] / Float(plane), base = (ci * n + ni) * plane
            for i in 0..<plane { dx[base + i] = g }
        } }
        return Tensor(shape: inShape, data: dx)
    }
}
