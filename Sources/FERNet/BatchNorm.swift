import Foundation

/// Batch normalisation over channels: [C, N, H, W] (as BatchNorm2d) or [N, F] (as BatchNorm1d).
/// Training mode normalises with batch statistics and updates running statistics (PyTorch's
/// momentum convention, unbiased running variance); inference mode uses the running statistics.
public final class BatchNorm: Layer {
    public let kind = "batchnorm"
    public let features: Int
    public let eps: Float
    /// Weight of each new batch in the running statistics (PyTorch's momentum); `recomputeStatistics`
    /// sets it per batch to take a plain average.
    public var momentum: Float
    public let gamma: Parameter, beta: Parameter
    public let runningMean: Buffer, runningVar: Buffer
    private var xhat: [Float] = []
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
        var y = [Float](repeating: 0, count: cm.count)
        if training {
            var xh = [Float](repeating: 0, count: cm.count)
            var inv = [Float](repeating: 0, count: features)
            BatchNorm.forwardTrain(cm, channels: features, m: m, gamma: gamma.value, beta: beta.value, eps: eps,
                                   momentum: momentum, runningMean: &runningMean.value, runningVar: &runningVar.value,
                                   y: &y, xhat: &xh, invStd: &inv)
            xhat = xh; invStd = inv; cachedShape = x.shape
        } else {
            BatchNorm.forwardInference(cm, channels: features, m: m, gamma: gamma.value, beta: beta.value, eps: eps,
                                       runningMean: runningMean.value, runningVar: runningVar.value, y: &y)
        }
        if is2D { y = transpose(y, rows: features, cols: x.shape[0]) }
        return Tensor(shape: x.shape, data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let is2D = dy.shape.count == 2
        let cm = is2D ? transpose(dy.data, rows: dy.shape[0], cols: features) : dy.data
        let m = cm.count / features
        var dx = [Float](repeating: 0, count: cm.count)
        BatchNorm.backward(dy: cm, xhat: xhat, invStd: invStd, gamma: gamma.value, channels: features, m: m,
                           dGamma: &gamma.grad, dBeta: &beta.grad, dx: &dx)
        if is2D { dx = transpose(dx, rows: features, cols: dy.shape[0]) }
        return Tensor(shape: cachedShape, data: dx)
    }

    // MARK: plain kernels over [C, M] buffers

    public static func forwardTrain(_ x: [Float], channels: Int, m: Int, gamma: [Float], beta: [Float], eps: Float,
                                    momentum: Float, runningMean: inout [Float], runningVar: inout [Float],
                                    y: inout [Float], xhat: inout [Float], invStd: inout [Float]) {
        var means = [Float](repeating: 0, count: channels), vars = [Float](repeating: 0, count: channels)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in xhat.withUnsafeMutableBufferPointer { hp in
            means.withUnsafeMutableBufferPointer { mp in vars.withUnsafeMutableBufferPointer { vp in
                invStd.withUnsafeMutableBufferPointer { ip in
                    parallelFor(channels) { range in
                        for c in range {
                            let row = xp.baseAddress! + c * m
                            var s = 0.0
                            for i in 0..<m { s += Double(row[i]) }
                            let mean = s / Double(m)
                            var v = 0.0
                            for i in 0..<m { let d = Double(row[i]) - mean; v += d * d }
                            let variance = v / Double(m)
                            let inv = Float(1.0 / (variance + Double(eps)).squareRoot())
                            let mf = Float(mean), g = gamma[c], b = beta[c]
                            let hr = hp.baseAddress! + c * m, yr = yp.baseAddress! + c * m
                            for i in 0..<m { let h = (row[i] - mf) * inv; hr[i] = h; yr[i] = g * h + b }
                            mp[c] = mf; vp[c] = Float(variance); ip[c] = inv
                        }
                    }
                }
            } }
        } } }
        for c in 0..<channels {
            let unbiased = m > 1 ? vars[c] * Float(m) / Float(m - 1) : vars[c]
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * means[c]
            runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
        }
    }

    public static func forwardInference(_ x: [Float], channels: Int, m: Int, gamma: [Float], beta: [Float], eps: Float,
                                        runningMean: [Float], runningVar: [Float], y: inout [Float]) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            parallelFor(channels, minChunk: max(1, 4096 / max(m, 1))) { range in
                for c in range {
                    let scale = gamma[c] / (runningVar[c] + eps).squareRoot()
                    let shift = beta[c] - runningMean[c] * scale
                    let row = xp.baseAddress! + c * m, yr = yp.baseAddress! + c * m
                    for i in 0..<m { yr[i] = row[i] * scale + shift }
                }
            }
        } }
    }

    public static func backward(dy: [Float], xhat: [Float], invStd: [Float], gamma: [Float], channels: Int, m: Int,
                                dGamma: inout [Float], dBeta: inout [Float], dx: inout [Float]) {
        var dg = [Float](repeating: 0, count: channels), db = [Float](repeating: 0, count: channels)
        dy.withUnsafeBufferPointer { dp in xhat.withUnsafeBufferPointer { hp in dx.withUnsafeMutableBufferPointer { xp in
            dg.withUnsafeMutableBufferPointer { dgp in db.withUnsafeMutableBufferPointer { dbp in
                parallelFor(channels) { range in
                    for c in range {
                        let d = dp.baseAddress! + c * m, h = hp.baseAddress! + c * m, o = xp.baseAddress! + c * m
                        var sdy = 0.0, sdyh = 0.0
                        for i in 0..<m { sdy += Double(d[i]); sdyh += Double(d[i] * h[i]) }
                        dgp[c] = Float(sdyh); dbp[c] = Float(sdy)
                        let k = gamma[c] * invStd[c] / Float(m)
                        let a = Float(sdy), b = Float(sdyh), fm = Float(m)
                        for i in 0..<m { o[i] = k * (fm * d[i] - a - h[i] * b) }
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
