import Foundation

/// One layer of an architecture as written in the model JSON, e.g.
/// `{"type": "conv2d", "filters": 64, "kernel": 3, "padding": 1}`.
public struct LayerSpec: Codable, Equatable, Sendable {
    public var type: String
    public var filters: Int?
    public var kernel: Int?
    public var stride: Int?
    public var padding: Int?
    public var units: Int?
    public var rate: Float?
    public var size: Int?

    public init(type: String, filters: Int? = nil, kernel: Int? = nil, stride: Int? = nil, padding: Int? = nil,
                units: Int? = nil, rate: Float? = nil, size: Int? = nil) {
        self.type = type; self.filters = filters; self.kernel = kernel; self.stride = stride; self.padding = padding
        self.units = units; self.rate = rate; self.size = size
    }

    public static func conv(_ f: Int, _ k: Int = 3, stride: Int = 1, padding: Int? = nil) -> LayerSpec {
        LayerSpec(type: "conv2d", filters: f, kernel: k, stride: stride, padding: padding ?? k / 2)
    }
    public static let bn = LayerSpec(type: "batchnorm")
    public static let relu = LayerSpec(type: "relu")
    public static let flatten = LayerSpec(type: "flatten")
    public static let gap = LayerSpec(type: "gap")
    public static func pool(_ s: Int = 2) -> LayerSpec { LayerSpec(type: "maxpool", size: s) }
    public static func dropout(_ r: Float) -> LayerSpec { LayerSpec(type: "dropout", rate: r) }
    public static func dense(_ u: Int) -> LayerSpec { LayerSpec(type: "dense", units: u) }
}

/// A feed-forward stack of layers. Parameter and buffer names follow PyTorch's `nn.Sequential`
/// (`"<index>.weight"`, `"<index>.running_mean"`), so weights map one to one.
public final class Network {
    public let layers: [Layer]
    public let specs: [LayerSpec]
    /// Input shape per sample: channels, height, width.
    public let inputShape: (c: Int, h: Int, w: Int)
    /// Multiply-accumulates per sample for one forward pass.
    public let macsPerSample: Int

    public init(specs: [LayerSpec], input: (c: Int, h: Int, w: Int), seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var c = input.c, h = input.h, w = input.w
        guard (1...Network.maxSide).contains(c), (1...Network.maxSide).contains(h), (1...Network.maxSide).contains(w),
              c * h * w <= Network.maxActivation else { throw ShapeError("input \(c)x\(h)x\(w) is outside the supported sizes") }
        guard specs.count <= Network.maxLayers else { throw ShapeError("\(specs.count) layers: at most \(Network.maxLayers)") }
        var flat: Int? = nil
        var layers: [Layer] = []
        var macs = 0
        var parameters = 0
        for (i, s) in specs.enumerated() {
            func need(_ v: Int?, _ what: String) throws -> Int {
                guard let v, v > 0 else { throw ShapeError("layer \(i) (\(s.type)) needs a positive \(what)") }
                guard v <= Network.maxSide * 16 else { throw ShapeError("layer \(i) (\(s.type)): \(what) \(v) is too large") }
                return v
            }
            /// Checks a product of sizes against a limit before anything is allocated.
            func within(_ factors: [Int], _ limit: Int, _ what: String) throws -> Int {
                var n = 1
                for f in factors {
                    let (m, o) = n.multipliedReportingOverflow(by: f)
                    guard !o, m <= limit else { throw ShapeError("layer \(i) (\(s.type)): \(what) over the limit of \(limit)") }
                    n = m
                }
                return n
            }
            func addParameters(_ n: Int) throws {
                parameters += n
                guard parameters <= Network.maxParameters else {
                    throw ShapeError("layer \(i) (\(s.type)): more than \(Network.maxParameters) parameters in all")
                }
            }
            switch s.type {
            case "conv2d":
                guard flat == nil else { throw ShapeError("layer \(i): conv2d after flatten") }
                let f = try need(s.filters, "filters"), k = try need(s.kernel, "kernel")
                let st = s.stride ?? 1, p = s.padding ?? 0
                guard st > 0, p >= 0, st <= Network.maxSide, p <= Network.maxSide else { throw ShapeError("layer \(i): bad stride or padding") }
                let ho = Conv2D.outputSize(h, kernel: k, stride: st, padding: p), wo = Conv2D.outputSize(w, kernel: k, stride: st, padding: p)
                guard ho > 0, wo > 0 else { throw ShapeError("layer \(i): conv2d \(k)x\(k) does not fit a \(h)x\(w) input") }
                try addParameters(try within([f, c, k, k], Network.maxParameters, "weights"))
                _ = try within([f, ho, wo], Network.maxActivation, "output")
                _ = try within([c, k, k, ho, wo], Network.maxActivation * 4, "im2col buffer")
                layers.append(Conv2D(inChannels: c, outChannels: f, kernel: k, stride: st, padding: p, rng: &rng))
                macs += f * c * k * k * ho * wo
                c = f; h = ho; w = wo
            case "batchnorm":
                layers.append(BatchNorm(features: flat ?? c))
            case "relu":
                layers.append(ReLU())
            case "maxpool":
                guard flat == nil else { throw ShapeError("layer \(i): maxpool after flatten") }
                let k = try need(s.size, "size"), st = s.stride ?? k
                guard st > 0 else { throw ShapeError("layer \(i): maxpool stride must be positive") }
                guard h >= k, w >= k else { throw ShapeError("layer \(i): maxpool \(k) on a \(h)x\(w) input") }
                layers.append(MaxPool(size: k, stride: st))
                h = (h - k) / st + 1; w = (w - k) / st + 1
            case "dropout":
                let r = s.rate ?? 0.5
                guard r >= 0, r < 1 else { throw ShapeError("layer \(i): dropout rate \(r) outside [0, 1)") }
                layers.append(Dropout(rate: r, seed: seed &+ UInt64(i) &* 7919))
            case "flatten":
                layers.append(Flatten()); flat = c * h * w
            case "gap":
                layers.append(GlobalAvgPool()); flat = c
            case "dense":
                guard let inF = flat else { throw ShapeError("layer \(i): dense before flatten") }
                let u = try need(s.units, "units")
                try addParameters(try within([inF, u], Network.maxParameters, "weights"))
                layers.append(Dense(inFeatures: inF, outFeatures: u, rng: &rng))
                macs += inF * u
                flat = u
            default:
                throw ShapeError("layer \(i): unknown layer type \"\(s.type)\"")
            }
        }
        guard flat != nil else { throw ShapeError("the architecture must end in flatten/gap and dense layers") }
        // a ReLU right after a batch norm runs inside it (one pass over the activations, not three)
        var fused = Set<Int>()
        for i in 1..<Swift.max(layers.count, 1) where layers[i] is ReLU {
            if let bn = layers[i - 1] as? BatchNorm { bn.relu = true; fused.insert(i) }
        }
        self.fusedIntoPrevious = fused
        self.layers = layers
        self.specs = specs
        self.inputShape = input
        self.macsPerSample = macs
        self.outputSize = flat!
    }

    /// Number of outputs per sample (classes).
    public let outputSize: Int

    /// Indices of the ReLU layers that run inside the batch norm before them (`BatchNorm.relu`);
    /// `forward` and `backward` skip them.
    public let fusedIntoPrevious: Set<Int>

    /// Limits a description must keep to (checked before anything is allocated, so a corrupt or
    /// hostile model file is refused instead of exhausting memory).
    public static let maxParameters = 64_000_000
    public static let maxActivation = 16_000_000
    public static let maxSide = 4096
    public static let maxLayers = 1000

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var t = x
        for (i, l) in layers.enumerated() where !fusedIntoPrevious.contains(i) { t = l.forward(t, training: training) }
        return t
    }

    /// Backpropagates the loss gradient `dy`, adding into every parameter's gradient; returns the
    /// gradient with respect to the input. Training passes `inputGradient: false`: a first
    /// convolution then computes only its weight gradients (and the result is zeros).
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true) -> Tensor {
        var g = dy
        for i in layers.indices.reversed() where !fusedIntoPrevious.contains(i) { g = backward(layer: i, g, inputGradient: inputGradient) }
        return g
    }

    /// Layer `i`'s backward as `backward` runs it (a first convolution skips its input gradient
    /// unless `inputGradient`).
    public func backward(layer i: Int, _ dy: Tensor, inputGradient: Bool) -> Tensor {
        if i == 0, !inputGradient, let conv = layers[i] as? Conv2D { return conv.backward(dy, inputGradient: false) }
        return layers[i].backward(dy)
    }

    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Frees every parameter's gradient (a network that only predicts); `zeroGrad` allocates them
    /// again before training.
    public func releaseGradients() { for p in parameters { p.releaseGradient() } }

    /// Every saved tensor by PyTorch-style name, in a stable order.
    public var namedTensors: [(name: String, shape: [Int], get: () -> [Float], set: ([Float]) -> Void)] {
        var out: [(String, [Int], () -> [Float], ([Float]) -> Void)] = []
        for (i, l) in layers.enumerated() {
            for p in l.parameters { out.append(("\(i).\(p.name)", p.shape, { p.value }, { p.value = $0 })) }
            for b in l.buffers { out.append(("\(i).\(b.name)", b.shape, { b.value }, { b.value = $0 })) }
        }
        return out
    }

    /// Recomputes every batch-norm layer's running statistics as the plain average over `batches`
    /// (PyTorch's `torch.optim.swa_utils.update_bn`): training-mode forward passes, the k-th batch
    /// weighted 1/k, so equal batches count equally. Weights are untouched; needed after the
    /// weights of several networks are averaged, whose statistics do not average.
    public func recomputeBatchNormStatistics(_ batches: [Tensor]) {
        let norms = layers.compactMap { $0 as? BatchNorm }
        guard !norms.isEmpty, !batches.isEmpty else { return }
        let kept = norms.map(\.momentum)
        for (k, x) in batches.enumerated() {
            for b in norms { b.momentum = 1 / Float(k + 1) }
            _ = forward(x, training: true)
        }
        for (b, m) in zip(norms, kept) { b.momentum = m }
    }

    /// Sets this network's weights to the mean of its own and those of `others` (the same
    /// architecture): a "model soup" (Wortsman et al. 2022) of runs fine-tuned from one model.
    /// Batch-norm statistics are averaged too, which is not what the averaged weights produce:
    /// recompute them afterwards (`recomputeBatchNormStatistics`).
    public func averageWeights(with others: [Network]) throws {
        guard !others.isEmpty else { return }
        var sums = exportTensors()
        for other in others {
            guard other.specs == specs, other.inputShape == inputShape else {
                throw ShapeError("only networks of the same architecture and input size can be averaged")
            }
            for (i, t) in other.exportTensors().enumerated() {
                sums[i].values.withUnsafeMutableBufferPointer { s in for j in s.indices { s[j] += t.values[j] } }
            }
        }
        let k = Float(others.count + 1)
        try importTensors(sums.map { ($0.name, $0.shape, $0.values.map { $0 / k }) }, file: "the average")
    }

    /// Reseeds every dropout layer (for reproducible resumed runs).
    public func reseedDropout(_ seed: UInt64) {
        for (i, l) in layers.enumerated() { (l as? Dropout)?.reseed(seed &+ UInt64(i) &* 7919) }
    }
}

/// The named architectures `fer train --arch` knows.
public enum Architecture {
    /// The original project's network: 4 conv blocks (64, 128 with 5x5, 512, 512) and two dense
    /// layers (256, 512), batch norm and dropout 0.25 throughout.
    public static let seed: [LayerSpec] = {
        var s: [LayerSpec] = []
        for (f, k) in [(64, 3), (128, 5), (512, 3), (512, 3)] {
            s += [.conv(f, k), .bn, .relu, .pool(2), .dropout(0.25)]
        }
        s += [.flatten]
        for u in [256, 512] { s += [.dense(u), .bn, .relu, .dropout(0.25)] }
        s += [.dense(7)]
        return s
    }()

    /// VGG-style, four stages of two 3x3 conv + BN + ReLU (32, 64, 128, 256 filters), max pooling,
    /// then dropout and a 256-unit dense layer (the default until the wider `vgg48` scored better).
    public static let vgg: [LayerSpec] = vgg(width: 32)

    /// The `vgg` shape with `width` filters in the first stage, doubling at each of the four
    /// stages (`vgg` is width 32). Multiply-adds grow with the square of the width: width 48 is
    /// 2.25 times `vgg`'s 118 M per face, width 64 four times.
    public static func vgg(width: Int) -> [LayerSpec] {
        var s: [LayerSpec] = []
        for f in [width, 2 * width, 4 * width, 8 * width] {
            s += [.conv(f), .bn, .relu, .conv(f), .bn, .relu, .pool(2)]
        }
        s += [.flatten, .dropout(0.5), .dense(256), .bn, .relu, .dropout(0.5), .dense(7)]
        return s
    }

    /// A small network for tests and quick experiments.
    public static let tiny: [LayerSpec] = [.conv(8), .bn, .relu, .pool(2), .conv(16), .bn, .relu, .pool(2),
                                           .flatten, .dense(32), .relu, .dense(7)]

    public static let all: [String: [LayerSpec]] = [
        "seed": seed, "vgg": vgg, "vgg48": vgg(width: 48), "vgg64": vgg(width: 64), "tiny": tiny,
    ]
    /// The default: `vgg48`, the shipped model's (chosen on PublicTest over `vgg`, see the README).
    public static let defaultName = "vgg48"
}
