import COpenBLAS
import Foundation

/// 2-D convolution (cross-correlation, as PyTorch) over [C, N, H, W] activations, by im2col and
/// `cblas_sgemm`, a chunk of images at a time. Square kernel, stride and zero padding, any sizes.
public final class Conv2D: Layer {
    public let kind = "conv2d"
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: Parameter   // [Cout, Cin, k, k]
    public let bias: Parameter     // [Cout]
    private var input: [Float] = []   // the training forward's input, for backward
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

    /// Images per chunk: each worker unfolds a chunk of images at a time into a buffer of about
    /// `chunkFloats` floats that stays in cache, multiplies it and moves on, instead of unfolding
    /// the whole batch (170 MB for the first stage of `vgg` at batch 64) through main memory.
    /// Backward unfolds each chunk again rather than keeping the forward's buffer.
    public static let chunkFloats = 1 << 19

    /// Chunks no narrower than this many columns, so the products stay efficient.
    public static let minimumChunkColumns = 4096

    /// Images per chunk for `n` images: about `chunkFloats` of unfolded input, at least
    /// `minimumChunkColumns` columns, and as many chunks as can be shared evenly by the workers.
    func imagesPerChunk(n: Int, ckk: Int, outPlane: Int) -> Int {
        let plane = Swift.max(1, outPlane)
        let per = Swift.max(1, Conv2D.chunkFloats / Swift.max(1, ckk * plane), (Conv2D.minimumChunkColumns + plane - 1) / plane)
        let t = Parallelism.threads
        let chunks = Swift.min(n, ((n + per - 1) / per + t - 1) / t * t)
        return Swift.max(1, (n + Swift.max(chunks, 1) - 1) / Swift.max(chunks, 1))
    }

    /// 3x3 convolutions with stride 1 and padding 1 train by Winograd's F(2×2, 3×3) too, from
    /// this many channels going in (the input's for the forward pass, the output's for the input
    /// gradient: the adjoint of such a convolution is one too, with the kernels turned and
    /// transposed); the weight gradient stays im2col and a product. Winograd needs 2.25 times
    /// fewer multiplications, but its transforms move memory in proportion to the channels: on this
    /// project's 2-core Xeon a threshold of 32 made `vgg` training 0.83-0.88 times as fast as
    /// im2col alone; with 64, `vgg` runs about even (0.93-1.09) and `vgg48` 1.01-1.15 times as
    /// fast (mostly 1.08-1.10). `Int.max` turns it off
    /// (`fer bench` compares the two; tests lower it to reach the Winograd path at small sizes).
    nonisolated(unsafe) public static var winogradTrainingMinChannels = 64

    /// Whether this layer's forward (`forInputGradient` false) or input gradient (true) runs by
    /// Winograd: 3x3, stride 1, padding 1, and at least `winogradTrainingMinChannels` going in.
    func usesWinograd(forInputGradient: Bool) -> Bool {
        kernel == 3 && stride == 1 && padding == 1
            && (forInputGradient ? outChannels : inChannels) >= Conv2D.winogradTrainingMinChannels
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[0] == inChannels, "conv2d expects [\(inChannels), N, H, W], got \(x.shape)")
        let n = x.shape[1], h = x.shape[2], w = x.shape[3]
        if usesWinograd(forInputGradient: false) {
            let u = Winograd.transformWeights(weight.value, outChannels: outChannels, inChannels: inChannels)
            let y = Winograd.forward(x.data, inChannels: inChannels, n: n, h: h, w: w, u: u, bias: bias.value,
                                     outChannels: outChannels, relu: false)
            if training { input = x.data; inShape = x.shape } else { input = []; inShape = [] }
            return Tensor(shape: [outChannels, n, h, w], data: y)
        }
        let ho = Conv2D.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let wo = Conv2D.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        let ckk = inChannels * kernel * kernel, plane = ho * wo, columns = n * plane
        let per = imagesPerChunk(n: n, ckk: ckk, outPlane: plane), chunks = (n + per - 1) / per
        var y = uninitializedFloats(outChannels * columns)   // bias, then the products, fill it
        let (cin, cout, k, st, p) = (inChannels, outChannels, kernel, stride, padding)
        x.data.withUnsafeBufferPointer { xp in weight.value.withUnsafeBufferPointer { wp in bias.value.withUnsafeBufferPointer { bp in
            y.withUnsafeMutableBufferPointer { yp in
                let yb = yp.baseAddress!
                parallelFor(chunks) { range in
                    var cols = uninitializedFloats(ckk * per * plane)
                    for chunk in range {
                        let first = chunk * per, count = Swift.min(per, n - first), width = count * plane
                        cols.withUnsafeMutableBufferPointer { cp in
                            Conv2D.im2colImages(xp.baseAddress!, c: cin, n: n, h: h, w: w, k: k, s: st, p: p, ho: ho, wo: wo,
                                                first: first, count: count, into: cp.baseAddress!)
                            for o in 0..<cout {
                                let row = yb + o * columns + first * plane, b = bp[o]
                                for i in 0..<width { row[i] = b }
                            }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(cout), Int32(width), Int32(ckk), 1,
                                        wp.baseAddress!, Int32(ckk), cp.baseAddress!, Int32(width), 1,
                                        yb + first * plane, Int32(columns))
                        }
                    }
                }
            }
        } } }
        if training { input = x.data; inShape = x.shape } else { input = []; inShape = [] }
        return Tensor(shape: [outChannels, n, ho, wo], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor { backward(dy, inputGradient: true) }

    /// Backward; with `inputGradient: false` only the weight and bias gradients are computed (the
    /// first layer of a network: nothing needs the gradient of the image) and the result is zeros.
    public func backward(_ dy: Tensor, inputGradient: Bool) -> Tensor {
        precondition(!inShape.isEmpty, "conv2d backward without a training forward")
        let n = inShape[1], h = inShape[2], w = inShape[3]
        let ho = dy.shape[2], wo = dy.shape[3]
        let ckk = inChannels * kernel * kernel, plane = ho * wo, columns = n * plane
        let per = imagesPerChunk(n: n, ckk: ckk, outPlane: plane), chunks = (n + per - 1) / per
        let workers = Swift.min(Parallelism.threads, chunks), wsize = outChannels * ckk
        // the input gradient by Winograd (then the loop below makes the weight gradient only)
        let winogradDx = inputGradient && usesWinograd(forInputGradient: true)
        var dx: [Float]
        if winogradDx {
            let u = Winograd.transformWeights(weight.value, outChannels: outChannels, inChannels: inChannels, flipped: true)
            dx = Winograd.forward(dy.data, inChannels: outChannels, n: n, h: ho, w: wo, u: u,
                                  bias: [Float](repeating: 0, count: inChannels), outChannels: inChannels, relu: false)
        } else {
            dx = [Float](repeating: 0, count: inShape.reduce(1, *))
        }
        let foldInputGradient = inputGradient && !winogradDx
        var partial = [Float](repeating: 0, count: workers * wsize)   // each worker's dW
        let (cin, cout, k, st, p) = (inChannels, outChannels, kernel, stride, padding)
        input.withUnsafeBufferPointer { xp in dy.data.withUnsafeBufferPointer { dyp in weight.value.withUnsafeBufferPointer { wp in
            dx.withUnsafeMutableBufferPointer { dxp in partial.withUnsafeMutableBufferPointer { pp in
                let dxb = dxp.baseAddress!, pb = pp.baseAddress!
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    var cols = uninitializedFloats(ckk * per * plane), dcols = uninitializedFloats(foldInputGradient ? ckk * per * plane : 0)
                    let dW = pb + worker * wsize
                    for chunk in (chunks * worker / workers)..<(chunks * (worker + 1) / workers) {
                        let first = chunk * per, count = Swift.min(per, n - first), width = count * plane
                        let dyChunk = dyp.baseAddress! + first * plane
                        cols.withUnsafeMutableBufferPointer { cp in dcols.withUnsafeMutableBufferPointer { dcp in
                            Conv2D.im2colImages(xp.baseAddress!, c: cin, n: n, h: h, w: w, k: k, s: st, p: p, ho: ho, wo: wo,
                                                first: first, count: count, into: cp.baseAddress!)
                            // dW += dy · colsᵀ
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(cout), Int32(ckk), Int32(width), 1,
                                        dyChunk, Int32(columns), cp.baseAddress!, Int32(width), 1, dW, Int32(ckk))
                            guard foldInputGradient else { return }
                            // dcols = Wᵀ · dy, folded back into the chunk's images
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(ckk), Int32(width), Int32(cout), 1,
                                        wp.baseAddress!, Int32(ckk), dyChunk, Int32(columns), 0, dcp.baseAddress!, Int32(width))
                            Conv2D.col2imImages(dcp.baseAddress!, c: cin, n: n, h: h, w: w, k: k, s: st, p: p, ho: ho, wo: wo,
                                                first: first, count: count, into: dxb)
                        } }
                    }
                }
            } }
            weight.grad.withUnsafeMutableBufferPointer { gp in
                for wk in 0..<workers { for i in 0..<wsize { gp[i] += partial[wk * wsize + i] } }
            }
            bias.grad.withUnsafeMutableBufferPointer { gp in
                for o in 0..<cout {
                    var s: Float = 0; let row = dyp.baseAddress! + o * columns
                    for i in 0..<columns { s += row[i] }
                    gp[o] += s
                }
            }
        } } }
        return Tensor(shape: inShape, data: dx)
    }

    /// im2col of images `first..<first+count` of a [C, N, H, W] buffer into [C·k·k, count·Ho·Wo]
    /// (row = (c, ky, kx), column = (image, oy, ox)); `rows` limits it to some rows.
    static func im2colImages(_ xb: UnsafePointer<Float>, c: Int, n: Int, h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int,
                             first: Int, count: Int, rows: Range<Int>? = nil, into cb: UnsafeMutablePointer<Float>) {
        let width = count * ho * wo
        for r in rows ?? 0..<(c * k * k) {
            let ci = r / (k * k), ky = (r / k) % k, kx = r % k
            var dst = cb + r * width
            for ni in first..<(first + count) {
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

    /// The adjoint of `im2colImages`: adds [C·k·k, count·Ho·Wo] into images `first..<first+count`.
    static func col2imImages(_ cb: UnsafePointer<Float>, c: Int, n: Int, h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int,
                             first: Int, count: Int, into xb: UnsafeMutablePointer<Float>) {
        let width = count * ho * wo
        for ci in 0..<c {
            for ky in 0..<k { for kx in 0..<k {
                var src = cb + ((ci * k + ky) * k + kx) * width
                for ni in first..<(first + count) {
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

    /// Unfolds [C, N, H, W] into [C·k·k, N·Ho·Wo] (row = (c, ky, kx), column = (n, oy, ox)),
    /// rows split over the worker threads.
    public static func im2col(_ x: [Float], c: Int, n: Int, h: Int, w: Int, k: Int, s: Int, p: Int, ho: Int, wo: Int,
                              into cols: inout [Float]) {
        x.withUnsafeBufferPointer { xp in cols.withUnsafeMutableBufferPointer { cp in
            parallelFor(c * k * k) { rows in
                im2colImages(xp.baseAddress!, c: c, n: n, h: h, w: w, k: k, s: s, p: p, ho: ho, wo: wo,
                             first: 0, count: n, rows: rows, into: cp.baseAddress!)
            }
        } }
    }
}

/// A float array whose contents the caller overwrites completely (skips zero-filling).
@inline(__always)
func uninitializedFloats(_ n: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: n) { _, count in count = n }
}
