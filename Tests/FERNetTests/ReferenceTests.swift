import XCTest
@testable import FERNet
@testable import FERTraining

/// Every layer's forward output and gradients against PyTorch's numbers (tools/make_fixtures.py).
final class ReferenceTests: XCTestCase {
    /// All sizes by im2col; the 3x3 stride-1 padding-1 cases with 8 channels or more each way
    /// (`conv2d_winograd`) train by Winograd, forward and input gradient, with the threshold
    /// lowered to 8.
    func testConv2DMatchesPyTorch() throws {
        let threshold = Conv2D.winogradTrainingMinChannels
        defer { Conv2D.winogradTrainingMinChannels = threshold }
        Conv2D.winogradTrainingMinChannels = 8   // the fixtures' sizes
        for name in ["conv2d", "conv2d_winograd"] {
            try checkConv2D(fixture: name)
        }
    }

    func checkConv2D(fixture name: String) throws {
        for case let c as [String: Any] in try fixture(name) as! [Any] {
            let n = c.int("n"), ch = c.int("c"), h = c.int("h"), w = c.int("w"), o = c.int("out")
            var rng = SeededGenerator(seed: 1)
            let conv = Conv2D(inChannels: ch, outChannels: o, kernel: c.int("k"), stride: c.int("stride"), padding: c.int("padding"), rng: &rng)
            conv.weight.value = c.floats("weight"); conv.bias.value = c.floats("bias")
            XCTAssertEqual(conv.usesWinograd(forInputGradient: false), name == "conv2d_winograd", "\(name): Winograd forward")
            XCTAssertEqual(conv.usesWinograd(forInputGradient: true), name == "conv2d_winograd", "\(name): Winograd input gradient")
            let x = Tensor.fromNCHW(c.floats("x"), n: n, c: ch, h: h, w: w)
            let y = conv.forward(x, training: true)
            let ys = c.ints("yshape")
            XCTAssertEqual(y.shape, [ys[1], ys[0], ys[2], ys[3]])
            assertClose(y.toNCHW(), c.floats("y"), "conv y k\(c.int("k")) s\(c.int("stride"))")
            let dy = Tensor.fromNCHW(c.floats("dy"), n: ys[0], c: ys[1], h: ys[2], w: ys[3])
            let dx = conv.backward(dy)
            assertClose(dx.toNCHW(), c.floats("dx"), "conv dx")
            assertClose(conv.weight.grad, c.floats("dweight"), "conv dW")
            assertClose(conv.bias.grad, c.floats("dbias"), "conv db")
        }
    }

    /// The Winograd F(2x2, 3x3) inference convolution gives PyTorch's output on the 3x3 fixtures
    /// (odd height and width: edge blocks hang over), with and without the fused ReLU.
    func testWinogradMatchesPyTorch() throws {
        var tested = 0
        for case let c as [String: Any] in try fixture("conv2d") as! [Any] where c.int("k") == 3 && c.int("stride") == 1 && c.int("padding") == 1 {
            let n = c.int("n"), ch = c.int("c"), h = c.int("h"), w = c.int("w"), o = c.int("out")
            let x = Tensor.fromNCHW(c.floats("x"), n: n, c: ch, h: h, w: w)
            let u = Winograd.transformWeights(c.floats("weight"), outChannels: o, inChannels: ch)
            for relu in [false, true] {
                let y = Winograd.forward(x.data, inChannels: ch, n: n, h: h, w: w, u: u, bias: c.floats("bias"), outChannels: o, relu: relu)
                let want = c.floats("y").map { relu ? max($0, 0) : $0 }
                assertClose(Tensor(shape: [o, n, h, w], data: y).toNCHW(), want, "winograd \(h)x\(w) relu \(relu)")
            }
            tested += 1
        }
        XCTAssertGreaterThan(tested, 0, "a 3x3 stride-1 padding-1 fixture")
        // and at sizes the fixtures lack (1x1, 2x3, a 4x4 block exactly), against im2col
        var rng = SeededGenerator(seed: 3)
        let threshold = Conv2D.winogradTrainingMinChannels
        Conv2D.winogradTrainingMinChannels = .max   // the layer's own forward as im2col, for reference
        defer { Conv2D.winogradTrainingMinChannels = threshold }
        for (n, ch, h, w, o) in [(1, 8, 1, 1, 3), (2, 9, 2, 3, 4), (1, 16, 4, 4, 8), (3, 5, 6, 11, 7)] {
            let conv = Conv2D(inChannels: ch, outChannels: o, kernel: 3, stride: 1, padding: 1, rng: &rng)
            conv.bias.value = conv.bias.value.map { _ in rng.normal() }
            let x = Tensor(shape: [ch, n, h, w], data: (0..<(ch * n * h * w)).map { _ in rng.normal() })
            let want = conv.forward(x, training: false).data
            let y = Winograd.forward(x.data, inChannels: ch, n: n, h: h, w: w,
                                     u: Winograd.transformWeights(conv.weight.value, outChannels: o, inChannels: ch),
                                     bias: conv.bias.value, outChannels: o, relu: false)
            assertClose(y, want, "winograd \(n)x\(ch)x\(h)x\(w) -> \(o)")
            // a few images at a time through buffers bounded for one, two or three: each output the same
            let perImage = 16 * max(ch, o) * ((h + 1) / 2) * ((w + 1) / 2)
            for group in 1...3 {
                let grouped = Winograd.forward(x.data, inChannels: ch, n: n, h: h, w: w,
                                               u: Winograd.transformWeights(conv.weight.value, outChannels: o, inChannels: ch),
                                               bias: conv.bias.value, outChannels: o, relu: true, maxWorkingFloats: group * perImage)
                assertClose(grouped, want.map { max($0, 0) }, "winograd \(n)x\(ch)x\(h)x\(w) -> \(o), \(group) image(s) at a time")
            }
        }
    }

    func testBatchNormMatchesPyTorch() throws {
        for case let c as [String: Any] in try fixture("batchnorm") as! [Any] {
            let shape = c.ints("shape"), f = shape[1]
            let bn = BatchNorm(features: f)
            bn.gamma.value = c.floats("gamma"); bn.beta.value = c.floats("beta")
            let conv4 = shape.count == 4
            func toOurs(_ v: [Float]) -> Tensor {
                conv4 ? Tensor.fromNCHW(v, n: shape[0], c: f, h: shape[2], w: shape[3]) : Tensor(shape: shape, data: v)
            }
            func toTorch(_ t: Tensor) -> [Float] { conv4 ? t.toNCHW() : t.data }
            let y = bn.forward(toOurs(c.floats("x")), training: true)
            assertClose(toTorch(y), c.floats("y"), "bn\(shape.count) y")
            let dx = bn.backward(toOurs(c.floats("dy")))
            assertClose(toTorch(dx), c.floats("dx"), "bn dx")
            assertClose(bn.gamma.grad, c.floats("dgamma"), "bn dgamma")
            assertClose(bn.beta.grad, c.floats("dbeta"), "bn dbeta")
            assertClose(bn.runningMean.value, c.floats("running_mean"), "bn running mean")
            assertClose(bn.runningVar.value, c.floats("running_var"), "bn running var")
            let ye = bn.forward(toOurs(c.floats("x_eval")), training: false)
            assertClose(toTorch(ye), c.floats("y_eval"), "bn eval y")
        }
    }

    func testMaxPoolMatchesPyTorch() throws {
        for case let c as [String: Any] in try fixture("maxpool") as! [Any] {
            let n = c.int("n"), ch = c.int("c"), h = c.int("h"), w = c.int("w"), ys = c.ints("yshape")
            let pool = MaxPool(size: c.int("k"), stride: c.int("stride"))
            let y = pool.forward(Tensor.fromNCHW(c.floats("x"), n: n, c: ch, h: h, w: w), training: true)
            assertClose(y.toNCHW(), c.floats("y"), "pool y")
            let dx = pool.backward(Tensor.fromNCHW(c.floats("dy"), n: ys[0], c: ys[1], h: ys[2], w: ys[3]))
            assertClose(dx.toNCHW(), c.floats("dx"), "pool dx")
            let yi = pool.forward(Tensor.fromNCHW(c.floats("x"), n: n, c: ch, h: h, w: w), training: false)
            assertClose(yi.toNCHW(), c.floats("y"), "pool y, inference")
        }
    }

    /// Inference's 2x2 pooling (eight outputs at a time) picks what the training loop picks, at
    /// widths with and without a remainder and odd heights.
    func testInferencePoolingEqualsTrainingPooling() {
        var rng = SeededGenerator(seed: 21)
        for (h, w) in [(48, 48), (47, 33), (6, 6), (9, 40), (3, 17)] {
            let x = Tensor(shape: [3, 2, h, w], data: (0..<(6 * h * w)).map { _ in rng.normal() })
            let pool = MaxPool(size: 2)
            XCTAssertEqual(pool.forward(x, training: false).data, pool.forward(x, training: true).data, "\(h)x\(w)")
        }
    }

    func testDenseMatchesPyTorch() throws {
        for case let c as [String: Any] in try fixture("dense") as! [Any] {
            var rng = SeededGenerator(seed: 1)
            let d = Dense(inFeatures: c.int("inF"), outFeatures: c.int("outF"), rng: &rng)
            d.weight.value = c.floats("weight"); d.bias.value = c.floats("bias")
            let y = d.forward(Tensor(shape: [c.int("n"), c.int("inF")], data: c.floats("x")), training: true)
            assertClose(y.data, c.floats("y"), "dense y")
            let dx = d.backward(Tensor(shape: y.shape, data: c.floats("dy")))
            assertClose(dx.data, c.floats("dx"), "dense dx")
            assertClose(d.weight.grad, c.floats("dweight"), "dense dW")
            assertClose(d.bias.grad, c.floats("dbias"), "dense db")
        }
    }

    /// Each case of a cross-entropy fixture: `lossAndGradient` of the case against PyTorch's loss and gradient.
    func assertCrossEntropyMatches(_ name: String, _ lossAndGradient: ([String: Any]) -> (loss: Float, grad: [Float])) throws {
        for case let c as [String: Any] in try fixture(name) as! [Any] {
            let (loss, grad) = lossAndGradient(c)
            XCTAssertEqual(loss, c.float("loss"), accuracy: 1e-5)
            assertClose(grad, c.floats("grad"), atol: 1e-6, "\(name) grad ε=\(c.float("smoothing"))")
        }
    }

    func testCrossEntropyWithLabelSmoothingMatchesPyTorch() throws {
        try assertCrossEntropyMatches("loss") { c in
            SoftmaxCrossEntropy.lossAndGradient(logits: c.floats("logits"), labels: c.ints("labels"), classes: c.int("k"),
                                                smoothing: c.float("smoothing"))
        }
    }

    /// Probability targets (FER+ vote blends), as `F.cross_entropy` with a target distribution.
    func testSoftTargetCrossEntropyMatchesPyTorch() throws {
        try assertCrossEntropyMatches("loss_soft") { c in
            SoftmaxCrossEntropy.lossAndGradient(logits: c.floats("logits"), targets: c.floats("targets"), classes: c.int("k"),
                                                smoothing: c.float("smoothing"))
        }
    }

    func testOptimizersMatchPyTorch() throws {
        for case let c as [String: Any] in try fixture("optimizers") as! [Any] {
            let name = c["name"] as! String
            let w = Parameter(name: "w", shape: [4, 3], value: c.floats("w0"), decay: true)
            let b = Parameter(name: "b", shape: [3], value: c.floats("b0"), decay: false)
            let wd = c.float("weight_decay")
            let opt: Optimizer = name == "sgd" ? SGD(momentum: 0.9, nesterov: true, weightDecay: wd)
                : Adam(weightDecay: wd, decoupled: name == "adamw")
            for case let g as [String: Any] in c["grads"] as! [Any] {
                w.grad = g.floats("w"); b.grad = g.floats("b")
                opt.update([w, b], lr: c.float("lr"))
            }
            assertClose(w.value, c.floats("w"), atol: 1e-5, "\(name) w")
            assertClose(b.value, c.floats("b"), atol: 1e-5, "\(name) b")
        }
    }

    /// Five AdamW steps of the tiny network from PyTorch's initial weights, each `Trainer`'s own
    /// optimisation step, reproduce PyTorch's loss sequence, and the trained network's
    /// probabilities match.
    func testTrainingRunReproducesPyTorchLossSequence() throws {
        let c = try fixture("training_run") as! [String: Any]
        let net = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 99)
        let state = c["state"] as! [String: [NSNumber]], shapes = c["shapes"] as! [String: [NSNumber]]
        try net.importTensors(state.keys.map { k in (k, shapes[k]!.map { $0.intValue }, state[k]!.map { $0.floatValue }) }, file: "fixture")
        let x = Tensor(shape: [1, 16, 48, 48], data: c.floats("x"))
        let labels = c.ints("labels")
        let opt = Adam(weightDecay: c.float("weight_decay"), decoupled: true)
        var losses: [Float] = []
        var oneHot = [Float](repeating: 0, count: labels.count * 7)
        for (i, l) in labels.enumerated() { oneHot[i * 7 + l] = 1 }
        for _ in 0..<5 {   // the trainer's own step
            let (l, _) = Trainer.optimisationStep(network: net, optimizer: opt, input: x, targets: oneHot,
                                                  labelSmoothing: c.float("smoothing"), lr: c.float("lr"))
            losses.append(l)
        }
        assertClose(losses, c.floats("losses"), atol: 2e-4, rtol: 1e-4, "loss sequence")
        let probs = SoftmaxCrossEntropy.softmax(net.forward(Tensor(shape: [1, 4, 48, 48], data: Array(x.data.prefix(4 * 2304))), training: false).data, classes: 7)
        // Looser than the loss: Adam moves parameters whose true gradient is ~0 (conv biases before
        // batch norm) by ±lr according to the sign of rounding noise, which differs between the two
        // implementations; training-mode BN cancels that, inference with running statistics does not.
        assertClose(probs, c.floats("eval_probs"), atol: 5e-3, "eval probabilities after training")
    }
}
