import XCTest
@testable import FERNet

/// A batch norm with its ReLU fused (`BatchNorm.relu`, set by `Network` when a ReLU follows)
/// computes what the two layers compute one after the other. The unfused batch norm is checked
/// against PyTorch (ReferenceTests) and by finite differences (GradientCheckTests).
final class BatchNormReLUTests: XCTestCase {
    func random(_ shape: [Int], seed: UInt64, mean: Float = 0.3) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() * 1.7 + mean })
    }

    func testFusedEqualsBatchNormThenReLU() {
        // odd sizes (a tail after the eight-lane loops), 4-D and 2-D, and a large mean
        for (shape, mean) in [([5, 3, 7, 9], Float(0.3)), ([3, 2, 5, 5], Float(40)), ([9, 6], Float(-0.5)), ([16, 4, 48, 48], Float(1))] {
            let f = shape.count == 4 ? shape[0] : shape[1]
            let plain = BatchNorm(features: f), fused = BatchNorm(features: f), relu = ReLU()
            fused.relu = true
            var rng = SeededGenerator(seed: UInt64(f))
            for bn in [plain, fused] {
                bn.gamma.value = (0..<f).map { _ in rng.normal() }
                bn.beta.value = (0..<f).map { _ in rng.normal() * 0.5 }
                rng = SeededGenerator(seed: UInt64(f))   // both get the same γ, β
            }
            let x = random(shape, seed: 7, mean: mean)
            let want = relu.forward(plain.forward(x, training: true), training: true)
            let got = fused.forward(x, training: true)
            assertClose(got.data, want.data, atol: 1e-5, rtol: 1e-5, "fused forward \(shape)")
            XCTAssertEqual(got.data.filter { $0 == 0 }.count, want.data.filter { $0 == 0 }.count, "same zeros \(shape)")
            let dy = random(shape, seed: 8)
            let wantDx = plain.backward(relu.backward(dy))
            let gotDx = fused.backward(dy)
            assertClose(gotDx.data, wantDx.data, atol: 1e-5, rtol: 1e-4, "fused dx \(shape)")
            assertClose(fused.gamma.grad, plain.gamma.grad, atol: 1e-4, rtol: 1e-4, "fused dγ \(shape)")
            assertClose(fused.beta.grad, plain.beta.grad, atol: 1e-4, rtol: 1e-4, "fused dβ \(shape)")
            assertClose(fused.runningMean.value, plain.runningMean.value, atol: 1e-5, "running mean \(shape)")
            assertClose(fused.runningVar.value, plain.runningVar.value, atol: 1e-5, rtol: 1e-4, "running var \(shape)")
            let xe = random(shape, seed: 9, mean: mean)
            assertClose(fused.forward(xe, training: false).data,
                        relu.forward(plain.forward(xe, training: false), training: false).data, atol: 1e-5, "fused inference \(shape)")
        }
    }

    /// The network fuses every ReLU that follows a batch norm, and only those, and its forward and
    /// backward equal running the layers one by one without fusion.
    func testNetworkFusesReLUsAfterBatchNorms() throws {
        let specs: [LayerSpec] = [.conv(4), .bn, .relu, .pool(2), .conv(6), .relu, .flatten, .dense(8), .bn, .relu, .dense(3)]
        let net = try Network(specs: specs, input: (1, 10, 12), seed: 2)
        XCTAssertEqual(net.fusedIntoPrevious, [2, 9])
        let ref = try Network(specs: specs, input: (1, 10, 12), seed: 2)
        for l in ref.layers { (l as? BatchNorm)?.relu = false }
        let x = random([1, 5, 10, 12], seed: 3)
        let y = net.forward(x, training: true)
        var t = x
        for l in ref.layers { t = l.forward(t, training: true) }
        assertClose(y.data, t.data, atol: 1e-5, "network forward")
        let g = random(y.shape, seed: 4)
        let dx = net.backward(g)
        var d = g
        for l in ref.layers.reversed() { d = l.backward(d) }
        assertClose(dx.data, d.data, atol: 1e-5, "network dx")
        for (a, b) in zip(net.parameters, ref.parameters) { assertClose(a.grad, b.grad, atol: 1e-4, "d\(a.name)") }
    }
}
