import COpenBLAS

/// 2-D convolution (cross-correlation, as PyTorch) over [C, N, H, W] activations, by im2col and
/// one `cblas_sgemm` for the whole batch. Square kernel, stride and zero padding, any sizes.
public final class Conv2D: Layer {
    public let kind = "conv2d"
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: Parameter   // [Cout, Cin, k, k]
    public let bias: Parameter     // [Cout]
    private var cols: [Float] = []
    private var inShape: [Int] = []

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                rng: inout SeededGenerator) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        let fanIn = inChannels * kernel * kernel
        let std = (2.0 / Float(fanIn)).squareRoot()   // He initialisation for ReLU networks
        let n = outChannels * fanIn
        weight = Parameter(name: "weight", shape: [outChannels, inChannels, kernel, kernel],
                           value: (0..<n).map { _ in rng.normal() * std }, decay: true)
        bias = Parameter(name: "bias", shape: [outChannels], value: [Float](repeating: 0, count: outChannels), decay: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[0] == inChannels, "conv2d expects [\(inChannels), N, H, W], got \(x.shape)")
        let n = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ho = Conv2D.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let wo = Conv2D.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        let ckk = inChannels * kernel * kernel, cols_n = n * ho * wo
        var colBuf = uninitializedFloats(ckk * cols_n)   // im2col writes every element
        Conv2D.im2col(x.data, c: inChannels, n: n, h: h, w: w, k: kernel, s: stride, p: padding, ho: ho, wo: wo, into: &colBuf)
        var y = uninitializedFloats(outChannels * cols_n)   // bias, then the product, fill it
        Conv2D.forward(cols: colBuf, weight: weight.value, bias: bias.value, outChannels: outChannels, ckk: ckk, columns: cols_n, into: &y)
        if training { cols = colBuf; inShape = x.shape } else { cols = []; inShape = [] }
        return Tensor(shape: [outChannels, n, ho, wo], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        precondition(!inShape.isEmpty, "conv2d backward without a training forward")
        let n = inShape[1], h = inShape[2], w = inShape[3]
        let ho = dy.shape[2], wo = dy.shape[3]
        let ckk = inChannels * kernel * kernel, colsN = n * ho * wo
        var dcols = uninitializedFloats(ckk * colsN)   // written by the product (beta 0)
        Conv2D.backward(dy: dy.data, cols: cols, weight: weight.value, outChannels: outChannels, ckk: ckk, columns: colsN,
                        dWeight: &weight.grad, dBias: &bias.grad, dCols: &dcols)
        var dx = [Float](repeating: 0, count: inShape.reduce(1, *))
        Conv2D.col2im(dcols, c: inChannels, n: n, h: h, w: w, k: kernel, s: stride, p: padding, ho: ho, wo: wo, into: &dx)
        return Tensor(shape: inShape, data: dx)
    }

    // MARK: plain kernels over flat buffers

    /// y[Cout, cols] = W[Cout, ckk] · cols[ckk, cols] + b
    public static func forward(cols: [Float], weight: [Float], bias: [Float], outChannels: Int, ckk: Int, columns: Int,
                               into y: inout [Float]) {
        cols.withUnsafeBufferPointer { cp in weight.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            for o in 0..<outChannels {
                let b = bias[o]; let row = yp.baseAddress! + o * columns
                for i in 0..<columns { row[i] = b }
            }
            BLAS.gemm(transA: false, transB: false, m: outChannels, n: columns, k: ckk, a: wp.baseAddress!, lda: ckk,
                      b: cp.baseAddress!, ldb: columns, beta: 1, c: yp.baseAddress!, ldc: columns)
        } } }
    }

    /// dW += dy · colsᵀ, db += Σ dy, dcols = Wᵀ · dy
    public static func backward(dy: [Float], cols: [Float], weight: [Float], outChannels: Int, ckk: Int, columns: Int,
                                dWeight: inout [Float], dBias: inout [Float], dCols: inout [Float]) {
        dy.withUnsafeBufferPointer { dyp in cols.withUnsafeBufferPointer { cp in weight.withUnsafeBufferPointer { wp in
            dWeight.withUnsafeMutableBufferPointer { dwp in
                BLAS.gemm(transA: false, transB: true, m: outChannels, n: ckk, k: columns, a: dyp.baseAddress!, lda: columns,
                          b: cp.baseAddress!, ldb: columns, beta: 1, c: dwp.baseAddress!, ldc: ckk)
            }
            dCols.withUnsafeMutableBufferPointer { dcp in
                BLAS.gemm(transA: true, transB: false, m: ckk, n: columns, k: outChannels, a: wp.baseAddress!, lda: ckk,
                          b: dyp.baseAddress!, ldb: columns, beta: 0, c: dcp.baseAddress!, ldc: columns)
            }
            dBias.withUnsafeMutableBufferPointer { dbp in
                for o in 0..<outChannels {
                    var s: Float = 0; let row = dyp.baseAddress! + o * columns
                    for i in 0..<columns { s += row[i] }
                    dbp[o] += s
                }
            }
        } } }
    }

    /// Unfolds [C, N, H, W] into [C·k·k, N·Ho·Wo] (row = (c, ky, kx), column = (n, oy, ox)).
    public static func im2col(_ x: [Float], c: Int, n: Int, h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int,
                              into cols: inout [Float]) {
        let rows = c * k * k, colsN = n * ho * wo
        x.withUnsafeBufferPointer { xp in cols.withUnsafeMutableBufferPointer { cp in
            let xb = xp.baseAddress!, cb = cp.baseAddress!
            parallelFor(rows) { range in
                for r in range {
                    let ci = r / (k * k), ky = (r / k) % k, kx = r % k
                    var dst = cb + r * colsN
                    for ni in 0..<n {
                        let plane = xb + (ci * n + ni) * h * w
                        for oy in 0..<ho {
                            let iy = oy * s - p + ky
                            if iy < 0 || iy >= h {
                                for ox in 0..<wo { dst[ox] = 0 }
                            } else {
                                let line = plane + iy * w
                                if s == 1 {
                                    // valid columns: 0 <= ox - p + kx < w
                                    let lo = Swift.min(wo, Swift.max(0, p - kx)), hi = Swift.max(lo, Swift.min(wo, w + p - kx))
                                    for ox in 0..<lo { dst[ox] = 0 }
                                    let src = line + (kx - p)
                                    for ox in lo..<hi { dst[ox] = src[ox] }
                                    for ox in hi..<wo { dst[ox] = 0 }
                                } else {
                                    for ox in 0..<wo {
                                        let ix = ox * s - p + kx
                                        dst[ox] = (ix >= 0 && ix < w) ? line[ix] : 0
                                    }
                                }
                            }
                            dst += wo
                        }
                    }
                }
            }
        } }
    }

    /// Folds [C·k·k, N·Ho·Wo] back into [C, N, H, W], summing overlaps (the adjoint of im2col).
    public static func col2im(_ cols: [Float], c: Int, n: Int, h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int,
                              into x: inout [Float]) {
        let colsN = n * ho * wo
        cols.withUnsafeBufferPointer { cp in x.withUnsafeMutableBufferPointer { xp in
            let xb = xp.baseAddress!, cb = cp.baseAddress!
            parallelFor(c) { range in   // each channel owns its rows and its output planes: no races
                for ci in range {
                    for ky in 0..<k { for kx in 0..<k {
                        var src = cb + ((ci * k + ky) * k + kx) * colsN
                        for ni in 0..<n {
                            let plane = xb + (ci * n + ni) * h * w
                            for oy in 0..<ho {
                                let iy = oy * s - p + ky
                                if iy >= 0 && iy < h {
                                    let line = plane + iy * w
                                    if s == 1 {
                                        let lo = Swift.min(wo, Swift.max(0, p - kx)), hi = Swift.max(lo, Swift.min(wo, w + p - kx))
                                        let dst = line + (kx - p)
                                        for ox in lo..<hi { dst[ox] += src[ox] }
                                    } else {
                                        for ox in 0..<wo {
                                            let ix = ox * s - p + kx
                                            if ix >= 0 && ix < w { line[ix] += src[ox] }
                                        }
                                    }
                                }
                                src += wo
                            }
                        }
                    } }
                }
            }
        } }
    }
}

/// A float array whose contents the caller overwrites completely (skips zero-filling).
@inline(__always)
func uninitializedFloats(_ n: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: n) { _, count in count = n }
}
