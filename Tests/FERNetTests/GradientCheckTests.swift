import XCTest
@testable import FERNet

/// Finite-difference checks of every layer's backward pass at odd sizes, stride 2 and padding.
/// Loss L = Σ y·r for a fixed random r, so dL/dy = r.
final class GradientCheckTests: XCTestCase {
    func check(_ layer: Layer, input: Tensor, seed: UInt64 = 3, eps: Float = 1e-2, tol: Float = 2e-2,
               file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededGenerator(seed: seed)
        let y = layer.forward(input, training: true)
        let r = (0..<y.count).map { _ in rng.normal() }
        for p in layer.parameters { p.zeroGrad() }
        let dx = layer.backward(Tensor(shape: y.shape, data: r))
        func loss(_ x: Tensor) -> Double {
            let yy = layer.forward(x, training: true)
            return zip(yy.data, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        // input gradient at a spread of indices
        for i in stride(from: 0, to: input.count, by: max(1, input.count / 25)) {
            var plus = input, minus = input
            plus.data[i] += eps; minus.data[i] -= eps
            let n2 = Float((loss(plus) - loss(minus)) / Double(2 * eps))
            XCTAssertEqual(dx.data[i], n2, accuracy: tol * max(1, abs(n2)), "\(layer.kind) dx[\(i)]", file: file, line: line)
        }
        // parameter gradients
        for p in layer.parameters {
            let analytic = p.grad
            for i in stride(from: 0, to: p.value.count, by: max(1, p.value.count / 15)) {
                let old = p.value[i]
                p.value[i] = old + eps; let lp = loss(input)
                p.value[i] = old - eps; let lm = loss(input)
                p.value[i] = old
                let num = Float((lp - lm) / Double(2 * eps))
                XCTAssertEqual(analytic[i], num, accuracy: tol * max(1, abs(num)), "\(layer.kind) d\(p.name)[\(i)]", file: file, line: line)
            }
        }
    }

    func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() })
    }

    func testConvOddSizesStrideAndPadding() {
        for (k, s, p, h, w) in [(3, 1, 1, 7, 5), (3, 2, 1, 9, 7), (5, 2, 2, 11, 6), (2, 2, 0, 5, 7), (1, 1, 0, 3, 3)] {
            var rng = SeededGenerator(seed: UInt64(k * 10 + s))
            let conv = Conv2D(inChannels: 3, outChannels: 4, kernel: k, stride: s, padding: p, rng: &rng)
            for i in conv.bias.value.indices { conv.bias.value[i] = rng.normal() }
            check(conv, input: randomTensor([3, 2, h, w], seed: UInt64(h)))
        }
    }

    /// Without the input gradient (a network's first convolution in training) the weight and
    /// bias gradients are the same.
    func testConvWeightGradientsWithoutInputGradient() {
        var rng = SeededGenerator(seed: 31)
        let a = Conv2D(inChannels: 2, outChannels: 5, kernel: 3, stride: 1, padding: 1, rng: &rng)
        let x = randomTensor([2, 3, 9, 7], seed: 32), dy = randomTensor([5, 3, 9, 7], seed: 33)
        _ = a.forward(x, training: true)
        let full = a.backward(dy)
        let (w, b) = (a.weight.grad, a.bias.grad)
        a.weight.zeroGrad(); a.bias.zeroGrad()
        _ = a.forward(x, training: true)
        let none = a.backward(dy, inputGradient: false)
        XCTAssertEqual(a.weight.grad, w)
        XCTAssertEqual(a.bias.grad, b)
        XCTAssertEqual(none.shape, full.shape)
        XCTAssertTrue(none.data.allSatisfy { $0 == 0 } && full.data.contains { $0 != 0 })
    }

    func testBatchNorm2DAnd1D() {
        let bn = BatchNorm(features: 3)
        bn.gamma.value = [0.5, 1.5, -1]; bn.beta.value = [0.1, -0.2, 0.3]
        check(bn, input: randomTensor([3, 4, 3, 5], seed: 5), eps: 1e-2, tol: 3e-2)
        let bn1 = BatchNorm(features: 6)
        check(bn1, input: randomTensor([5, 6], seed: 6), eps: 1e-2, tol: 3e-2)
    }

    func testDense() {
        var rng = SeededGenerator(seed: 9)
        check(Dense(inFeatures: 7, outFeatures: 5, rng: &rng), input: randomTensor([3, 7], seed: 10))
    }

    func testMaxPoolOddSize() {
        // distinct values keep the argmax stable under the ±eps bumps
        var t = randomTensor([2, 2, 7, 9], seed: 11)
        for i in t.data.indices { t.data[i] = Float(i % 97) * 0.37 + t.data[i] * 0.01 }
        check(MaxPool(size: 2), input: t)
        check(MaxPool(size: 3, stride: 2), input: t)
    }

    func testFlattenAndGlobalAveragePool() {
        check(Flatten(), input: randomTensor([3, 2, 4, 5], seed: 12))
        check(GlobalAvgPool(), input: randomTensor([3, 2, 4, 5], seed: 13))
    }

    func testReLUAwayFromZero() {
        var t = randomTensor([2, 3, 4, 4], seed: 14)
        for i in t.data.indices where abs(t.data[i]) < 0.05 { t.data[i] = 0.5 }
        check(ReLU(), input: t)
    }

    func testWholeNetworkGradient() throws {
        let net = try Network(specs: [.conv(4, 3, stride: 2), .bn, .relu, .pool(2), .flatten, .dense(5), .bn, .relu, .dense(3)],
                              input: (1, 13, 11), seed: 4)
        var rng = SeededGenerator(seed: 8)
        let x = Tensor(shape: [1, 6, 13, 11], data: (0..<(6 * 143)).map { _ in rng.normal() })
        let labels = [0, 1, 2, 1, 0, 2]
        func loss() -> Float {
            let y = net.forward(x, training: true)
            return SoftmaxCrossEntropy.lossAndGradient(logits: y.data, labels: labels, classes: 3, smoothing: 0.1).loss
        }
        net.zeroGrad()
        let y = net.forward(x, training: true)
        let (_, g) = SoftmaxCrossEntropy.lossAndGradient(logits: y.data, labels: labels, classes: 3, smoothing: 0.1)
        net.backward(Tensor(shape: y.shape, data: g))
        for (li, layer) in net.layers.enumerated() { for p in layer.parameters {
            let a = p.grad
            for i in stride(from: 0, to: p.value.count, by: max(1, p.value.count / 6)) {
                let old = p.value[i]
                // a small step: batch norm followed by ReLU leaves kinks within ±1e-2 of some values
                p.value[i] = old + 2e-3; let lp = loss()
                p.value[i] = old - 2e-3; let lm = loss()
                p.value[i] = old
                XCTAssertEqual(a[i], (lp - lm) / 4e-3, accuracy: 3e-3 + 0.05 * abs(a[i]), "layer \(li) \(p.name)[\(i)]")
            }
        } }
    }
}

final class ConvChunkTests: XCTestCase {
    /// The layer unfolds a few images at a time; its output and gradients equal a direct
    /// convolution's, written as plain loops, for a batch that splits into uneven chunks
    /// (7 images, stride 2, padding 1: chunks of 4 and 3) and at 48x48 (5 images: 3 and 2); and
    /// with 64 channels or more each way, where forward and input gradient run by Winograd.
    func testChunkedConvolutionMatchesDirectLoops() {
        for (cin, cout, n, side, stride) in [(3, 5, 7, 9, 2), (4, 6, 5, 48, 1), (64, 65, 3, 13, 1)] {
            var rng = SeededGenerator(seed: UInt64(n))
            let conv = Conv2D(inChannels: cin, outChannels: cout, kernel: 3, stride: stride, padding: 1, rng: &rng)
            XCTAssertEqual(conv.usesWinograd(forInputGradient: false), cin == 64, "Winograd forward")
            XCTAssertEqual(conv.usesWinograd(forInputGradient: true), cin == 64, "Winograd input gradient")
            for i in conv.bias.value.indices { conv.bias.value[i] = rng.normal() }
            let x = (0..<(cin * n * side * side)).map { _ in rng.normal() }
            let y = conv.forward(Tensor(shape: [cin, n, side, side], data: x), training: true)
            let ho = y.shape[2], wo = y.shape[3]
            XCTAssertEqual(y.shape, [cout, n, ho, wo])
            let dy = (0..<y.count).map { _ in rng.normal() }
            let dx = conv.backward(Tensor(shape: y.shape, data: dy))
            let w = conv.weight.value
            var yRef = [Float](repeating: 0, count: y.count), dxRef = [Float](repeating: 0, count: x.count)
            var dwRef = [Float](repeating: 0, count: w.count)
            for o in 0..<cout { for b in 0..<n { for oy in 0..<ho { for ox in 0..<wo {
                let yi = ((o * n + b) * ho + oy) * wo + ox
                var s = conv.bias.value[o]
                for c in 0..<cin { for ky in 0..<3 { for kx in 0..<3 {
                    let iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx
                    guard iy >= 0, iy < side, ix >= 0, ix < side else { continue }
                    let xi = ((c * n + b) * side + iy) * side + ix, wi = ((o * cin + c) * 3 + ky) * 3 + kx
                    s += w[wi] * x[xi]
                    dxRef[xi] += w[wi] * dy[yi]
                    dwRef[wi] += x[xi] * dy[yi]
                } } }
                yRef[yi] = s
            } } } }
            for i in y.data.indices { XCTAssertEqual(y.data[i], yRef[i], accuracy: 1e-3) }
            for i in dx.data.indices { XCTAssertEqual(dx.data[i], dxRef[i], accuracy: 1e-3) }
            for i in dwRef.indices { XCTAssertEqual(conv.weight.grad[i], dwRef[i], accuracy: 2e-3 * max(1, abs(dwRef[i]) / 100)) }
        }
    }
}
