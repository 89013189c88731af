import Foundation

/// A network prepared for prediction: every convolution followed by batch normalisation has the
/// normalisation folded into its weights and bias (w·γ/σ, (b−μ)·γ/σ+β), and a ReLU right after is
/// applied to the product's output in the same pass. Dropout is dropped. 3×3 convolutions with
/// stride 1 and padding 1 over at least `winogradMinChannels` input channels run as Winograd
/// F(2×2, 3×3) (2.25 times fewer multiplications; 6% faster for one face, 20-25% for four to
/// eight, `fer bench`); the others as im2col and one product. Built from the weights the network
/// has when the plan is made; equal to `Network.forward(training: false)` up to float rounding
/// (tested).
public final class InferencePlan: @unchecked Sendable {
    enum Step {
        case conv(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, weight: [Float], bias: [Float], relu: Bool)
        /// `im2colWeight`, kept where the transformed weights are large: the folded weights for
        /// passes with fewer than `winogradMinTiles` blocks, which run as im2col instead.
        case winograd(inChannels: Int, outChannels: Int, u: [Float], bias: [Float], relu: Bool, im2colWeight: [Float]?)
        case layer(Layer)
    }
    let steps: [Step]

    /// Fewer input channels than this: im2col (a first layer over a grey image gains nothing).
    public static let winogradMinChannels = 8

    /// Winograd's 16 products each have one column per 2x2 block of output; with few blocks (one
    /// face at 6x6: 9) they are bound by reading the transformed weights, 16/9 the size of
    /// im2col's. Where those are large (more than `winogradLargeWeights` input·output channel
    /// pairs, 4 MB of floats) a pass with fewer blocks than this runs as im2col. Measured with
    /// one face on this project's Xeon, on one thread: `vgg48`'s 192->384 and 384->384 layers at
    /// 6x6 took 0.88 and 1.86 ms by Winograd against 0.69 and 1.38 by im2col, while `vgg`'s
    /// 256->256 at 6x6 took 0.51 against 0.66 and every layer at 12x12 (36 blocks) or larger was
    /// faster by Winograd.
    public static let winogradMinTiles = 16

    /// Largest transformed buffer (each of V and M) of a Winograd pass in inference, in floats
    /// (8 MB): a batch that needs more runs a group of faces at a time. Twelve crops through
    /// `vgg48`'s 64->64 layer at 48x48 would need 28 MB each; three faces at a time fit.
    /// `FERNET_WINOGRAD_WORKING_FLOATS` sets it, for measuring.
    public static let winogradWorkingFloats: Int = {
        Int(ProcessInfo.processInfo.environment["FERNET_WINOGRAD_WORKING_FLOATS"] ?? "") ?? 2 << 20
    }()
    public static let winogradLargeWeights = 65_536

    public init(_ network: Network, winograd: Bool = true) {
        var steps: [Step] = []
        let layers = network.layers
        var i = 0
        while i < layers.count {
            let l = layers[i]
            if let c = l as? Conv2D {
                var w = c.weight.value, b = c.bias.value
                var next = i + 1
                if next < layers.count, let bn = layers[next] as? BatchNorm, bn.features == c.outChannels {
                    let per = w.count / c.outChannels
                    for o in 0..<c.outChannels {
                        let scale = bn.gamma.value[o] / (bn.runningVar.value[o] + bn.eps).squareRoot()
                        for j in 0..<per { w[o * per + j] *= scale }
                        b[o] = (b[o] - bn.runningMean.value[o]) * scale + bn.beta.value[o]
                    }
                    next += 1
                }
                let relu = next < layers.count && layers[next] is ReLU
                if relu { next += 1 }
                if winograd && c.kernel == 3 && c.stride == 1 && c.padding == 1 && c.inChannels >= InferencePlan.winogradMinChannels {
                    let large = c.inChannels * c.outChannels > InferencePlan.winogradLargeWeights
                    steps.append(.winograd(inChannels: c.inChannels, outChannels: c.outChannels,
                                           u: Winograd.transformWeights(w, outChannels: c.outChannels, inChannels: c.inChannels),
                                           bias: b, relu: relu, im2colWeight: large ? w : nil))
                } else {
                    steps.append(.conv(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel, stride: c.stride,
                                       padding: c.padding, weight: w, bias: b, relu: relu))
                }
                i = next
            } else if l is Dropout || network.fusedIntoPrevious.contains(i) {
                i += 1   // dropout is off in inference; a fused ReLU runs inside its batch norm
            } else {
                steps.append(.layer(l))
                i += 1
            }
        }
        self.steps = steps
        self.macsPerSample = network.macsPerSample
    }

    /// What each step is, for profiles: "winograd 32->64", "conv 1->32 3x3", or a layer's kind.
    public var stepNames: [String] {
        steps.map { s in
            switch s {
            case .layer(let l): return l.kind
            case let .winograd(cin, cout, _, _, relu, fallback):
                return "winograd \(cin)->\(cout)" + (relu ? " +relu" : "") + (fallback == nil ? "" : " (im2col under \(InferencePlan.winogradMinTiles) blocks)")
            case let .conv(cin, cout, k, st, _, _, _, relu): return "conv \(cin)->\(cout) \(k)x\(k)/\(st)" + (relu ? " +relu" : "")
            }
        }
    }

    /// The network's output (logits) for x, [1, N, H, W] in; `onStep`, if given, gets each step's
    /// index and output after it runs (for a profile).
    public func forward(_ x: Tensor, onStep: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        // a forward pass too small to share (one face) runs on this thread alone
        if x.shape.count == 4 && x.shape[1] * macsPerSample < InferencePlan.parallelMinimumWork && !Parallelism.isSerialHere {
            return Parallelism.serial { forward(x, onStep: onStep) }
        }
        var t = x
        for (index, s) in steps.enumerated() {
            t = InferencePlan.run(s, t)
            onStep?(index, t)
        }
        return t
    }

    /// Multiply-adds per face of the network the plan was made from.
    public let macsPerSample: Int

    /// A forward pass over fewer faces than this many multiply-adds runs on one thread. With
    /// `WorkerPool`'s spinning helpers, handing a loop to the other core costs about a microsecond,
    /// so only tiny networks stay on one: one face of `tiny` (0.9 M) took 0.05-0.07 ms either way,
    /// while one face of `vgg` (118 M) took 1.2-2.2 ms on two threads against 2.8-3.8 ms on one,
    /// and of `vgg48` (264 M) 3.7-4.9 against 5.6-7.6 (`fer bench`). (Before the pool, woken
    /// through Dispatch, one thread was faster up to 200 M.) `FERNET_PARALLEL_MINIMUM_WORK` sets
    /// it, for measuring.
    public static let parallelMinimumWork: Int = {
        Int(ProcessInfo.processInfo.environment["FERNET_PARALLEL_MINIMUM_WORK"] ?? "") ?? 4_000_000
    }()

    static func run(_ s: Step, _ input: Tensor) -> Tensor {
        let t = input
        switch s {
        case .layer(let l):
            return l.forward(t, training: false)
        case let .winograd(cin, cout, u, b, relu, fallback):
            let n = t.shape[1], h = t.shape[2], wd = t.shape[3]
            if let w = fallback, n * ((h + 1) / 2) * ((wd + 1) / 2) < InferencePlan.winogradMinTiles {
                return InferencePlan.im2colConv(t, cin: cin, cout: cout, k: 3, stride: 1, padding: 1, weight: w, bias: b, relu: relu)
            }
            return Tensor(shape: [cout, n, h, wd],
                          data: Winograd.forward(t.data, inChannels: cin, n: n, h: h, w: wd, u: u, bias: b, outChannels: cout, relu: relu,
                                                 maxWorkingFloats: InferencePlan.winogradWorkingFloats))
        case let .conv(cin, cout, k, st, p, w, b, relu):
            return InferencePlan.im2colConv(t, cin: cin, cout: cout, k: k, stride: st, padding: p, weight: w, bias: b, relu: relu)
        }
    }

    /// y = conv(x) + b by im2col and one product, then max(·, 0) if `relu`.
    static func im2colConv(_ t: Tensor, cin: Int, cout: Int, k: Int, stride st: Int, padding p: Int,
                           weight w: [Float], bias b: [Float], relu: Bool) -> Tensor {
        let n = t.shape[1], h = t.shape[2], wd = t.shape[3]
        let ho = Conv2D.outputSize(h, kernel: k, stride: st, padding: p), wo = Conv2D.outputSize(wd, kernel: k, stride: st, padding: p)
        let ckk = cin * k * k, columns = n * ho * wo
        var cols = uninitializedFloats(ckk * columns)
        Conv2D.im2col(t.data, c: cin, n: n, h: h, w: wd, k: k, s: st, p: p, ho: ho, wo: wo, into: &cols)
        var y = uninitializedFloats(cout * columns)
        Conv2D.forward(cols: cols, weight: w, bias: b, outChannels: cout, ckk: ckk, columns: columns, into: &y)
        if relu {
            y.withUnsafeMutableBufferPointer { yp in
                for j in yp.indices { yp[j] = Swift.max(yp[j], 0) }
            }
        }
        return Tensor(shape: [cout, n, ho, wo], data: y)
    }
}
