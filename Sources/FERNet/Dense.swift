/// Fully connected layer on [N, in] → [N, out], weight [out, in] as PyTorch's `nn.Linear`.
public final class Dense: Layer {
    public let kind = "dense"
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter, bias: Parameter
    private var input: [Float] = []
    private var batchSize = 0

    public init(inFeatures: Int, outFeatures: Int, rng: inout SeededGenerator) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        let std = (2.0 / Float(inFeatures)).squareRoot()
        weight = Parameter(name: "weight", shape: [outFeatures, inFeatures],
                           value: (0..<(inFeatures * outFeatures)).map { _ in rng.normal() * std }, decay: true)
        bias = Parameter(name: "bias", shape: [outFeatures], value: [Float](repeating: 0, count: outFeatures), decay: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        precondition(x.shape.count == 2 && x.shape[1] == inFeatures, "dense(\(inFeatures)) got \(x.shape)")
        let n = x.shape[0]
        var y = [Float](repeating: 0, count: n * outFeatures)
        Dense.forward(x.data, n: n, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight.value, bias: bias.value, y: &y)
        if training { input = x.data; batchSize = n }
        return Tensor(shape: [n, outFeatures], data: y)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        var dx = [Float](repeating: 0, count: batchSize * inFeatures)
        Dense.backward(dy.data, x: input, n: batchSize, inFeatures: inFeatures, outFeatures: outFeatures, weight: weight.value,
                       dWeight: &weight.grad, dBias: &bias.grad, dx: &dx)
        return Tensor(shape: [batchSize, inFeatures], data: dx)
    }

    /// y[N, out] = x[N, in] · Wᵀ + b
    public static func forward(_ x: [Float], n: Int, inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float],
                               y: inout [Float]) {
        x.withUnsafeBufferPointer { xp in weight.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            for r in 0..<n { for o in 0..<outFeatures { yp[r * outFeatures + o] = bias[o] } }
            BLAS.gemm(transA: false, transB: true, m: n, n: outFeatures, k: inFeatures, a: xp.baseAddress!, lda: inFeatures,
                      b: wp.baseAddress!, ldb: inFeatures, beta: 1, c: yp.baseAddress!, ldc: outFeatures)
        } } }
    }

    /// dW += dyᵀ · x, db += Σ dy, dx = dy · W
    public static func backward(_ dy: [Float], x: [Float], n: Int, inFeatures: Int, outFeatures: Int, weight: [Float],
                                dWeight: inout [Float], dBias: inout [Float], dx: inout [Float]) {
        dy.withUnsafeBufferPointer { dp in x.withUnsafeBufferPointer { xp in weight.withUnsafeBufferPointer { wp in
            dWeight.withUnsafeMutableBufferPointer { dwp in
                BLAS.gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: n, a: dp.baseAddress!, lda: outFeatures,
                          b: xp.baseAddress!, ldb: inFeatures, beta: 1, c: dwp.baseAddress!, ldc: inFeatures)
            }
            dx.withUnsafeMutableBufferPointer { dxp in
                BLAS.gemm(transA: false, transB: false, m: n, n: inFeatures, k: outFeatures, a: dp.baseAddress!, lda: outFeatures,
                          b: wp.baseAddress!, ldb: inFeatures, beta: 0, c: dxp.baseAddress!, ldc: inFeatures)
            }
            for r in 0..<n { for o in 0..<outFeatures { dBias[o] += dp[r * outFeatures + o] } }
        } } }
    }
}
