import Foundation

/// A network prepared for prediction: every convolution followed by batch normalisation has the
/// normalisation folded into its weights and bias (w·γ/σ, (b−μ)·γ/σ+β), and a ReLU right after is
/// applied to the product's output in the same pass. Dropout is dropped. Built from the weights
/// the network has when the plan is made; equal to `Network.forward(training: false)` up to
/// float rounding (tested).
public final class InferencePlan: @unchecked Sendable {
    enum Step {
        case conv(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, weight: [Float], bias: [Float], relu: Bool)
        case layer(Layer)
    }
    let steps: [Step]

    public init(_ network: Network) {
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
                steps.append(.conv(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel, stride: c.stride,
                                   padding: c.padding, weight: w, bias: b, relu: relu))
                i = next
            } else if l is Dropout {
                i += 1
            } else {
                steps.append(.layer(l))
                i += 1
            }
        }
        self.steps = steps
    }

    /// The network's output (logits) for x, [1, N, H, W] in.
    public func forward(_ x: Tensor) -> Tensor {
        var t = x
        for s in steps {
            switch s {
            case .layer(let l):
                t = l.forward(t, training: false)
            case let .conv(cin, cout, k, st, p, w, b, relu):
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
                t = Tensor(shape: [cout, n, ho, wo], data: y)
            }
        }
        return t
    }
}
