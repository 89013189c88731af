import Foundation

/// Batch normalisation over channels: [C, N, H, W] (as BatchNorm2d) or [N, F] (as BatchNorm1d).
/// Training mode normalises with batch statistics and updates running statistics (PyTorch's
/// momentum convention, unbiased running variance); inference mode uses the running statistics.
///
/// With `relu` set the layer's output is max(BN(x), 0): a network fuses the ReLU that follows a
/// batch norm into it (`Network` then skips that ReLU), which saves two of the three passes over
/// the activations each way. Backward keeps the input, not the normalised values, and recomputes
/// them: one buffer less per layer.
public final class BatchNorm: Layer {
    public let kind = "batchnorm"
    public let features: Int
    public let eps: Float
    /// Weight of each new batch in the running statistics (PyTorch's momentum); `recomputeStatistics`
    /// sets it per batch to take a plain average.
    public var momentum: Float
    /// Apply max(·, 0) to the output (and its mask to the gradient).
    public var relu = false
    public let gamma: Parameter, beta: Parameter
    public let runningMean: Buffer, runningVar: Buffer
    private var input: [Float] = []     // the training forward's input, channel-major [C, M]
    private var batchMean: [Float] = []
    private var invStd: [Float] = []
    private var cachedShape: [Int] = []

    public init(features: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.features = features; self.eps = eps; self.momentum = momentum
        gamma = Parameter(name: "weight", shape: [features], value: [Float](repeating: 1, count: features), decay: false)
        beta = Parameter(name: "bias", shape: [features], value: [Float](repeating: 0, count: features), decay: false)
        runningMean = Buffer(name: "running_mean", shape: [features], value: [Float](repeating: 0, count: features))
        runningVar = Buffer(name: "running_var", shape: [features], value: [Float](repeating: 1, count: features))
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var buffers: [Buffer] { [runningMean, runningVar] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let is2D = x.shape.count == 2
        precondition((is2D ? x.shape[1] : x.shape[0]) == features, "batchnorm(\(features)) got \(x.shape)")
        // Channel-major view: [C, M]
        let cm = is2D ? transpose(x.data, rows: x.shape[0], cols: features) : x.data
        let m = cm.count / features
        var y = uninitializedFloats(cm.count)
        if training {
            var mean = [Float](repeating: 0, count: features), inv = [Float](repeating: 0, count: features)
            BatchNorm.forwardTrain(cm, channels: features, m: m, gamma: gamma.value, beta: beta.value, eps: eps,
                                   momentum: momentum, relu: relu, runningMean: &runningMean.value, runningVar: &runningVar.value,
                                   y: &y, mean: &mean, invStd: &inv)
            input = cm; batchMean = mean; invStd = inv; cachedShape = x.shape
        } else {
            BatchNorm.forwardInference(cm, channels: features, m: m, gamma: gamma.value, beta: beta.value, eps: eps, relu: relu,
                                       runningMean: runningMean.value, runningVar: runningVar.value, y: &y)
        }
        if is2D { y = transpose(y, rows: features, cols: x.shape[0]) }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!cachedShape.isEmpty, "batchnorm backward without a training forward")
        let is2D = dy.shape.count == 2
        let cm = is2D ? transpose(dy.data, rows: dy.shape[0], cols: features) : dy.data
        let m = cm.count / features
        var dx = uninitializedFloats(cm.count)
        BatchNorm.backward(dy: cm, x: input, mean: batchMean, invStd: invStd, gamma: gamma.value, beta: beta.value, relu: relu,
                           channels: features, m: m, dGamma: &gamma.grad, dBeta: &beta.grad, dx: &dx)
        if is2D { dx = transpose(dx, rows: features, cols: dy.shape[0]) }
        return Tensor(shape: cachedShape, data: dx)
    }

    // MARK: plain kernels over [C, M] buffers, eight lanes at a time

    typealias V = SIMD8<Float>
    static let block = 4096   // elements summed in float lanes before a double total

    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    /// Mean and (biased) variance of m values, summed about a pivot (the mean of the first few
    /// values) so that a large mean does not swamp the variance.
    static func moments(_ p: UnsafePointer<Float>, _ m: Int) -> (mean: Double, variance: Double) {
        let head = Swift.min(m, 64)
        var pv: Float = 0
        for i in 0..<head { pv += p[i] }
        pv /= Float(Swift.max(head, 1))
        let pivot = V(repeating: pv)
        var s = 0.0, s2 = 0.0, i = 0
        while i < m {
            let end = Swift.min(m, i + block)
            var a = V(), b = V()
            while i + 8 <= end { let d = load(p, i) - pivot; a += d; b += d * d; i += 8 }
            var ts = Double(a.sum()), ts2 = Double(b.sum())
            while i < end { let d = Double(p[i] - pv); ts += d; ts2 += d * d; i += 1 }
            s += ts; s2 += ts2
        }
        let mu = s / Double(m)
        return (Double(pv) + mu, Swift.max(s2 / Double(m) - mu * mu, 0))
    }

    /// y = x·scale + shift, then max(·, 0) if `relu`.
    @inline(__always) static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ m: Int,
                                         scale: Float, shift: Float, relu: Bool) {
        let sv = V(repeating: scale), tv = V(repeating: shift)
        var i = 0
        if relu {
            // (replacing, not pointwiseMax: the latter keeps IEEE maximum's NaN rules lane by lane)
            while i + 8 <= m { let v = load(x, i) * sv + tv; store(v.replacing(with: 0, where: v .<= 0), y, i); i += 8 }
            while i < m { y[i] = Swift.max(x[i] * scale + shift, 0); i += 1 }
        } else {
            while i + 8 <= m { store(load(x, i) * sv + tv, y, i); i += 8 }
            while i < m { y[i] = x[i] * scale + shift; i += 1 }
        }
    }

    public static func forwardTrain(_ x: [Float], channels: Int, m: Int, gamma: [Float], beta: [Float], eps: Float,
                                    momentum: Float, relu: Bool = false, runningMean: inout [Float], runningVar: inout [Float],
                                    y: inout [Float], mean: inout [Float], invStd: inout [Float]) {
        var vars = [Float](repeating: 0, count: channels)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            mean.withUnsafeMutableBufferPointer { mp in vars.withUnsafeMutableBufferPointer { vp in
                invStd.withUnsafeMutableBufferPointer { ip in
                    parallelFor(channels) { range in
                        for c in range {
                            let row = xp.baseAddress! + c * m
                            let (mu, variance) = moments(row, m)
                            let inv = Float(1.0 / (variance + Double(eps)).squareRoot())
                            let mf = Float(mu), scale = gamma[c] * inv
                            affine(row, yp.baseAddress! + c * m, m, scale: scale, shift: beta[c] - mf * scale, relu: relu)
                            mp[c] = mf; vp[c] = Float(variance); ip[c] = inv
                        }
                    }
                }
            } }
        } }
        for c in 0..<channels {
            let unbiased = m > 1 ? vars[c] * Float(m) / Float(m - 1) : vars[c]
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c]
            runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
        }
    }

    public static func forwardInference(_ x: [Float], channels: Int, m: Int, gamma: [Float], beta: [Float], eps: Float,
                                        relu: Bool = false, runningMean: [Float], runningVar: [Float], y: inout [Float]) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            parallelFor(channels, minChunk: max(1, 4096 / max(m, 1))) { range in
                for c in range {
                    let scale = gamma[c] / (runningVar[c] + eps).squareRoot()
                    affine(xp.baseAddress! + c * m, yp.baseAddress! + c * m, m, scale: scale,
                           shift: beta[c] - runningMean[c] * scale, relu: relu)
                }
            }
        } }
    }

    /// Gradients from the forward's input `x` and batch statistics: x̂ = (x − mean)·invStd is
    /// recomputed, and with `relu` the gradient is first masked where γ·x̂ + β ≤ 0 (computed as the
    /// forward computed it). dx = γ·invStd/m · (m·g − Σg − x̂·Σ(g·x̂)), dγ = Σ(g·x̂), dβ = Σg.
    public static func backward(dy: [Float], x: [Float], mean: [Float], invStd: [Float], gamma: [Float], beta: [Float],
                                relu: Bool = false, channels: Int, m: Int,
                                dGamma: inout [Float], dBeta: inout [Float], dx: inout [Float]) {
        var dg = [Float](repeating: 0, count: channels), db = [Float](repeating: 0, count: channels)
        dy.withUnsafeBufferPointer { dp in x.withUnsafeBufferPointer { xp in dx.withUnsafeMutableBufferPointer { op in
            dg.withUnsafeMutableBufferPointer { dgp in db.withUnsafeMutableBufferPointer { dbp in
                parallelFor(channels) { range in
                    for c in range {
                        let d = dp.baseAddress! + c * m, xr = xp.baseAddress! + c * m, o = op.baseAddress! + c * m
                        let mf = mean[c], inv = invStd[c]
                        let scale = gamma[c] * inv, shift = beta[c] - mf * scale
                        let mv = V(repeating: mf), iv = V(repeating: inv), sv = V(repeating: scale), tv = V(repeating: shift)
                        @inline(__always) func grad(_ i: Int) -> (g: V, h: V) {
                            let xv = load(xr, i), h = (xv - mv) * iv
                            let g = relu ? load(d, i).replacing(with: 0, where: xv * sv + tv .<= 0) : load(d, i)
                            return (g, h)
                        }
                        @inline(__always) func grad1(_ i: Int) -> (g: Float, h: Float) {
                            let h = (xr[i] - mf) * inv
                            return (relu && !(xr[i] * scale + shift > 0) ? 0 : d[i], h)
                        }
                        var sdy = 0.0, sdyh = 0.0, i = 0
                        while i < m {
                            let end = Swift.min(m, i + block)
                            var a = V(), b = V()
                            while i + 8 <= end { let (g, h) = grad(i); a += g; b += g * h; i += 8 }
                            var ts = Double(a.sum()), tsh = Double(b.sum())
                            while i < end { let (g, h) = grad1(i); ts += Double(g); tsh += Double(g * h); i += 1 }
                            sdy += ts; sdyh += tsh
                        }
                        dgp[c] = Float(sdyh); dbp[c] = Float(sdy)
                        let k = gamma[c] * inv / Float(m), fm = Float(m), a = Float(sdy), b = Float(sdyh)
                        let kv = V(repeating: k), fmv = V(repeating: fm), av = V(repeating: a), bv = V(repeating: b)
                        i = 0
                        while i + 8 <= m { let (g, h) = grad(i); store(kv * (fmv * g - av - h * bv), o, i); i += 8 }
                        while i < m { let (g, h) = grad1(i); o[i] = k * (fm * g - a - h * b); i += 1 }
                    }
                }
            } }
        } } }
        for c in 0..<channels { dGamma[c] += dg[c]; dBeta[c] += db[c] }
    }
}

/// Row-major transpose of a [rows, cols] buffer.
func transpose(_ a: [Float], rows: Int, cols: Int) -> [Float] {
    var out = [Float](repeating: 0, count: a.count)
    a.withUnsafeBufferPointer { ap in out.withUnsafeMutableBufferPointer { op in
        for r in 0..<rows { for c in 0..<cols { op[c * rows + r] = ap[r * cols + c] } }
    } }
    return out
}
