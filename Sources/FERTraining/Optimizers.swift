import FERNet
import Foundation

/// An optimiser updates parameters from their accumulated gradients. Its state is a list of named
/// tensors so a checkpoint can save it and `--resume` can restore it exactly.
public protocol Optimizer: AnyObject {
    var step: Int { get }
    func update(_ params: [Parameter], lr: Float)
    func state() -> [String: [Float]]
    func restore(_ state: [String: [Float]], step: Int) throws
}

/// Adam (L2 weight decay added to the gradient, as `torch.optim.Adam`) or AdamW (decoupled decay,
/// as `torch.optim.AdamW`). Decay applies only to parameters marked `decay`.
public final class Adam: Optimizer {
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    public private(set) var step = 0
    private var m: [[Float]] = [], v: [[Float]] = []

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay; self.decoupled = decoupled
    }

    public func update(_ params: [Parameter], lr: Float) {
        if m.isEmpty { m = params.map { [Float](repeating: 0, count: $0.value.count) }; v = m }
        step += 1
        let bc1 = 1 - powf(beta1, Float(step)), bc2 = 1 - powf(beta2, Float(step))
        let stepSize = lr / bc1, bc2Sqrt = bc2.squareRoot()
        let b1 = beta1, b2 = beta2, e = eps
        for (k, p) in params.enumerated() {
            let wd = p.decay ? weightDecay : 0
            let decoupled = self.decoupled
            p.value.withUnsafeMutableBufferPointer { pv in p.grad.withUnsafeBufferPointer { g in
                m[k].withUnsafeMutableBufferPointer { mm in v[k].withUnsafeMutableBufferPointer { vv in
                    let pb = pv.baseAddress!, gb = g.baseAddress!, mb = mm.baseAddress!, vb = vv.baseAddress!
                    parallelFor(pv.count, minChunk: 1 << 15) { r in
                        for i in r {
                            var gi = gb[i]
                            if wd != 0 {
                                if decoupled { pb[i] *= 1 - lr * wd } else { gi += wd * pb[i] }
                            }
                            mb[i] = b1 * mb[i] + (1 - b1) * gi
                            vb[i] = b2 * vb[i] + (1 - b2) * gi * gi
                            pb[i] -= stepSize * mb[i] / (vb[i].squareRoot() / bc2Sqrt + e)
                        }
                    }
                } }
            } }
        }
    }

    public func state() -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for k in m.indices { s["m.\(k)"] = m[k]; s["v.\(k)"] = v[k] }
        return s
    }

    public func restore(_ state: [String: [Float]], step: Int) throws {
        let n = state.keys.filter { $0.hasPrefix("m.") }.count
        m = try (0..<n).map { try Adam.need(state, "m.\($0)") }
        v = try (0..<n).map { try Adam.need(state, "v.\($0)") }
        self.step = step
    }

    static func need(_ s: [String: [Float]], _ k: String) throws -> [Float] {
        guard let t = s[k] else { throw ModelFileError.mismatch("optimizer state lacks \(k)") }
        return t
    }
}

/// SGD with (optionally Nesterov) momentum and L2 weight decay, as `torch.optim.SGD`.
public final class SGD: Optimizer {
    public let momentum: Float, nesterov: Bool, weightDecay: Float
    public private(set) var step = 0
    private var buf: [[Float]] = []

    public init(momentum: Float = 0.9, nesterov: Bool = true, weightDecay: Float = 0) {
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }

    public func update(_ params: [Parameter], lr: Float) {
        let first = buf.isEmpty
        if first { buf = params.map { [Float](repeating: 0, count: $0.value.count) } }
        step += 1
        let mu = momentum, nest = nesterov
        for (k, p) in params.enumerated() {
            let wd = p.decay ? weightDecay : 0
            p.value.withUnsafeMutableBufferPointer { pv in p.grad.withUnsafeBufferPointer { g in buf[k].withUnsafeMutableBufferPointer { bb in
                for i in 0..<pv.count {
                    var gi = g[i] + wd * pv[i]
                    if mu != 0 {
                        bb[i] = first ? gi : mu * bb[i] + gi
                        gi = nest ? gi + mu * bb[i] : bb[i]
                    }
                    pv[i] -= lr * gi
                }
            } } }
        }
    }

    public func state() -> [String: [Float]] {
        var s: [String: [Float]] = [:]
        for k in buf.indices { s["buf.\(k)"] = buf[k] }
        return s
    }

    public func restore(_ state: [String: [Float]], step: Int) throws {
        let n = state.keys.filter { $0.hasPrefix("buf.") }.count
        buf = try (0..<n).map { try Adam.need(state, "buf.\($0)") }
        self.step = step
    }
}

/// Cosine decay from `base` to `minimum` after a linear warm-up, by optimiser step.
public struct CosineSchedule: Sendable {
    public let base: Float, minimum: Float, warmupSteps: Int, totalSteps: Int
    public init(base: Float, minimum: Float = 0, warmupSteps: Int, totalSteps: Int) {
        self.base = base; self.minimum = minimum; self.warmupSteps = warmupSteps; self.totalSteps = max(totalSteps, 1)
    }
    public func lr(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let t = min(Float(step - warmupSteps) / Float(span), 1)
        return minimum + 0.5 * (base - minimum) * (1 + cosf(.pi * t))
    }
}

/// Reduce-on-plateau on a metric to maximise (accuracy), as `ReduceLROnPlateau(mode="max")` with
/// relative threshold.
public struct PlateauSchedule: Codable, Sendable {
    public var lr: Float
    public let factor: Float, patience: Int, threshold: Float, minimum: Float
    public var best: Float = -.infinity
    public var badEpochs = 0

    public init(lr: Float, factor: Float = 0.5, patience: Int = 3, threshold: Float = 1e-4, minimum: Float = 1e-6) {
        self.lr = lr; self.factor = factor; self.patience = patience; self.threshold = threshold; self.minimum = minimum
    }

    /// Feeds one epoch's metric; returns the learning rate for the next epoch.
    public mutating func observe(_ metric: Float) -> Float {
        if metric > best * (1 + threshold) { best = metric; badEpochs = 0 } else { badEpochs += 1 }
        if badEpochs > patience { lr = max(lr * factor, minimum); badEpochs = 0 }
        return lr
    }
}
