import XCTest
@testable import FERNet
@testable import FERTraining

final class ModelFileTests: XCTestCase {
    func savedTiny() throws -> (URL, Network) {
        let net = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 3)
        let dir = tempDir()
        let url = try FacialExpressionModel.save(network: net, name: "t", directory: dir, labels: FERDataset.labels,
                                                 normalization: Normalization(mean: 0.5, std: 0.25), training: nil, card: nil)
        return (url, net)
    }

    func testRoundTripPredictsTheSame() throws {
        let (url, net) = try savedTiny()
        let m = try FacialExpressionModel(contentsOf: url)
        let face = (0..<2304).map { UInt8($0 % 251) }
        let p = m.predict(face: face)
        XCTAssertEqual(p.count, 7)
        XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-5)
        let x = Tensor(shape: [1, 1, 48, 48], data: face.map { (Float($0) / 255 - 0.5) / 0.25 })
        let direct = SoftmaxCrossEntropy.softmax(net.forward(x, training: false).data, classes: 7)
        assertClose(p, direct, atol: 1e-5, "reloaded model")
        let batch = m.predict(faces: [face, face.reversed()])
        assertClose(batch[0], p, atol: 1e-5, "batch vs single")
    }

    /// `shared` loads a model file once while an instance of it lives: the same instance again,
    /// gradients freed, predictions as a plain load's; a file rewritten on disk is loaded anew;
    /// the last user gone, the model is freed; a missing file still throws.
    func testSharedModelsAreLoadedOncePerFile() throws {
        let (url, _) = try savedTiny()
        let face = (0..<2304).map { UInt8($0 % 253) }
        let plain = try FacialExpressionModel(contentsOf: url)
        var a: FacialExpressionModel? = try FacialExpressionModel.shared(contentsOf: url)
        let b = try FacialExpressionModel.shared(contentsOf: URL(fileURLWithPath: url.deletingLastPathComponent().path + "/./t.json"))
        XCTAssertTrue(a === b, "one instance for one file")
        XCTAssertFalse(a === plain)
        XCTAssertTrue(a!.network.parameters.allSatisfy { $0.grad.isEmpty }, "a shared model keeps no gradients")
        XCTAssertFalse(plain.network.parameters.contains { $0.grad.isEmpty })
        assertClose(a!.predict(face: face), plain.predict(face: face), atol: 0, "same predictions")
        // the weights file rewritten (same bytes, a new file): loaded anew
        let weights = url.deletingLastPathComponent().appendingPathComponent("t.weights")
        let bytes = try Data(contentsOf: weights)
        try FileManager.default.removeItem(at: weights)
        try bytes.write(to: weights)
        let c = try FacialExpressionModel.shared(contentsOf: url)
        XCTAssertFalse(c === a, "a changed file is loaded again")
        // freed when its users are gone
        weak var gone = a
        a = nil
        XCTAssertNotNil(gone, "b still holds it")
        _ = b
        let id = ObjectIdentifier(c)
        XCTAssertEqual(ObjectIdentifier(try FacialExpressionModel.shared(contentsOf: url)), id)
        // gradients come back for training
        let p = c.network.parameters[0]
        p.zeroGrad()
        XCTAssertEqual(p.grad.count, p.value.count)
        try FileManager.default.removeItem(at: weights)
        XCTAssertThrowsError(try FacialExpressionModel.shared(contentsOf: url), "a missing weights file is an error, not the cached model")
    }

    func testSharedModelIsFreedWithItsLastUser() throws {
        let (url, _) = try savedTiny()
        weak var gone: FacialExpressionModel?
        do {
            let m = try FacialExpressionModel.shared(contentsOf: url)
            gone = m
            XCTAssertNotNil(gone)
        }
        XCTAssertNil(gone, "the cache holds no strong reference")
    }

    /// The inference plan (batch norm folded into the convolutions, ReLU fused) gives the
    /// network's own inference output, with running statistics far from the defaults.
    func testInferencePlanMatchesTheNetwork() throws {
        for arch in ["vgg", "vgg48", "seed", "tiny"] {
            let net = try Network(specs: Architecture.all[arch]!, input: (1, 48, 48), seed: 5)
            var rng = SeededGenerator(seed: 9)
            for l in net.layers {
                guard let bn = l as? BatchNorm else { continue }
                bn.runningMean.value = bn.runningMean.value.map { _ in rng.normal() * 0.5 }
                bn.runningVar.value = bn.runningVar.value.map { _ in 0.2 + abs(rng.normal()) }
                bn.gamma.value = bn.gamma.value.map { _ in 1 + 0.3 * rng.normal() }
                bn.beta.value = bn.beta.value.map { _ in 0.2 * rng.normal() }
            }
            let plan = InferencePlan(net)
            // one face: vgg48's 6x6 layers run as im2col (few Winograd blocks); three: Winograd
            for n in [1, 3] {
                let x = Tensor(shape: [1, n, 48, 48], data: (0..<(n * 2304)).map { _ in rng.normal() })
                let want = net.forward(x, training: false).data
                let got = plan.forward(x).data
                XCTAssertEqual(got.count, want.count)
                let scale = want.map { abs($0) }.max() ?? 1
                assertClose(got, want, atol: 1e-4 * max(1, scale), "\(arch), \(n) faces")
            }
            if arch == "vgg48" {
                XCTAssertEqual(plan.stepNames.filter { $0.contains("im2col under") }.count, 2, "vgg48's two 6x6 layers")
            }
        }
    }

    /// Flip test-time augmentation averages each face's probabilities with its mirror image's,
    /// for every face of a batch (the two halves run as one batch).
    func testFlipTTAAveragesEachFaceWithItsMirror() throws {
        let (url, _) = try savedTiny()
        let model = try FacialExpressionModel(contentsOf: url)
        var rng = SeededGenerator(seed: 11)
        let faces = (0..<3).map { _ in (0..<2304).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let mirrored: [[UInt8]] = faces.map { f in
            (0..<2304).map { (i: Int) -> UInt8 in let y = i / 48, x = i % 48; return f[y * 48 + 47 - x] }
        }
        let tta = model.predict(faces: faces, flipTTA: true)
        XCTAssertEqual(tta.count, 3)
        for i in 0..<3 {
            let a = model.predict(face: faces[i]), b = model.predict(face: mirrored[i])
            assertClose(tta[i], zip(a, b).map { 0.5 * ($0 + $1) }, atol: 1e-5, "face \(i)")
            XCTAssertNotEqual(a, b, "a random face differs from its mirror image")
        }
    }

    /// A weights file from another model of the same architecture (intact in itself) is refused:
    /// the description records the CRC of the weights it was saved with.
    func testWeightsOfAnotherModelAreRefused() throws {
        let (url, _) = try savedTiny()
        let other = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 4)
        let dir2 = tempDir()
        let url2 = try FacialExpressionModel.save(network: other, name: "t", directory: dir2, labels: FERDataset.labels,
                                                  normalization: Normalization(mean: 0.5, std: 0.25), training: nil, card: nil)
        XCTAssertNoThrow(try FacialExpressionModel(contentsOf: url2))
        let w = url.deletingLastPathComponent().appendingPathComponent("t.weights")
        try FileManager.default.removeItem(at: w)
        try FileManager.default.copyItem(at: url2.deletingLastPathComponent().appendingPathComponent("t.weights"), to: w)
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url)) { e in
            XCTAssertTrue("\(e)".contains("different models") && "\(e)".contains(w.path), "\(e)")
        }
    }

    func testDamagedWeightsGiveClearErrors() throws {
        let (url, _) = try savedTiny()
        let wurl = url.deletingLastPathComponent().appendingPathComponent("t.weights")
        let good = try Data(contentsOf: wurl)
        func expect(_ data: Data, _ text: String, line: UInt = #line) {
            try! data.write(to: wurl)
            XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url), line: line) { e in
                XCTAssertTrue("\(e)".contains(text), "\(e) should mention \(text)", line: line)
                XCTAssertTrue("\(e)".contains("t.weights"), "\(e) should name the file", line: line)
            }
        }
        expect(good.prefix(good.count / 2), "corrupt")              // truncated: checksum no longer matches
        expect(good.prefix(10), "truncated")
        expect(Data(), "truncated")
        var flipped = good; flipped[good.count / 3] ^= 0x10
        expect(flipped, "corrupt")
        var magic = good; magic[0] = 0x00
        expect(magic, "bad magic")
        var version = good; version[4] = 9
        expect(version, "version 9")
        try good.write(to: wurl)
        XCTAssertNoThrow(try FacialExpressionModel(contentsOf: url))
        try FileManager.default.removeItem(at: wurl)
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url)) { XCTAssertTrue("\($0)".contains("not found")) }
    }

    /// int8 storage: convolution and dense weights within half a step (their row's scale) of the
    /// float32 values, the rest as float16; the file about half float16's size; predictions close.
    func testInt8WeightsRoundTrip() throws {
        let net = try Network(specs: Architecture.vgg, input: (1, 48, 48), seed: 4)
        let dir = tempDir()
        var sizes: [WeightStorage: Int] = [:]
        var models: [WeightStorage: FacialExpressionModel] = [:]
        for storage in WeightStorage.allCases {
            let url = try FacialExpressionModel.save(network: net, name: storage.rawValue, directory: dir, labels: FERDataset.labels,
                                                     normalization: Normalization(mean: 0.5, std: 0.25), training: nil, card: nil,
                                                     storage: storage)
            models[storage] = try FacialExpressionModel(contentsOf: url)
            XCTAssertEqual(models[storage]!.description.weights.storage, storage.rawValue)
            sizes[storage] = models[storage]!.description.weights.bytes
        }
        XCTAssertLessThan(Double(sizes[.int8]!), 0.52 * Double(sizes[.float16]!))
        XCTAssertLessThan(Double(sizes[.float16]!), 0.51 * Double(sizes[.float32]!))
        let original = net.exportTensors(), stored = models[.int8]!.network.exportTensors()
        for (a, b) in zip(original, stored) {
            XCTAssertEqual(a.name, b.name)
            if a.shape.count >= 2 {
                let per = a.values.count / a.shape[0]
                for r in 0..<a.shape[0] {
                    let row = a.values[(r * per)..<((r + 1) * per)]
                    let step = row.reduce(0) { max($0, abs($1)) } / 127
                    for i in row.indices { XCTAssertEqual(b.values[i], a.values[i], accuracy: step / 2 * 1.001, "\(a.name)[\(i)]") }
                }
            } else {
                XCTAssertEqual(b.values, a.values.map { Float(Float16($0)) }, "\(a.name) as float16")
            }
        }
        var rng = SeededGenerator(seed: 8)
        let faces = (0..<4).map { _ in (0..<2304).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let p32 = models[.float32]!.predict(faces: faces), p8 = models[.int8]!.predict(faces: faces)
        for (a, b) in zip(p32, p8) { assertClose(b, a, atol: 0.02, "int8 probabilities") }
    }

    /// An int8 tensor whose scale is not a positive number is refused with the tensor's name.
    func testInt8BadScaleIsRefused() throws {
        let net = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 3)
        var data = WeightsFile.encode(net.exportTensors(), storage: .int8)
        // the first tensor, "0.weight" [8, 1, 3, 3]: header 12 bytes, name 4 + 8, rank 4 + 16, type 4; then its scales
        let scale = 12 + 4 + 8 + 4 + 16 + 4
        XCTAssertEqual(data[scale - 4], 2, "element type int8")
        for bad: Float in [0, -1, .nan] {
            var d = data
            withUnsafeBytes(of: bad.bitPattern.littleEndian) { d.replaceSubrange(scale..<(scale + 4), with: $0) }
            d = d.prefix(d.count - 4)
            withUnsafeBytes(of: WeightsFile.crc(d).littleEndian) { d.append(contentsOf: $0) }
            XCTAssertThrowsError(try WeightsFile.decode(d, file: "w.weights")) { e in
                XCTAssertTrue("\(e)".contains("0.weight") && "\(e)".contains("scale"), "\(e)")
            }
        }
        data = data.prefix(data.count - 4).prefix(scale + 20)
        withUnsafeBytes(of: WeightsFile.crc(data).littleEndian) { data.append(contentsOf: $0) }
        XCTAssertThrowsError(try WeightsFile.decode(data, file: "w.weights")) { e in
            XCTAssertTrue("\(e)".contains("truncated") && "\(e)".contains("0.weight"), "\(e)")
        }
    }

    func testMismatchedArchitectureAndBadJSON() throws {
        let (url, _) = try savedTiny()
        var d = try ModelDescription.load(url)
        d.architecture[0].filters = 9
        try d.write(url)
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url)) { XCTAssertTrue("\($0)".contains("shape"), "\($0)") }
        try "{\"format\": \"gstfer-model\"".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url)) { XCTAssertTrue("\($0)".contains("not a valid GstFER model"), "\($0)") }
        d.architecture[0].filters = 8; d.labels = ["a", "b"]
        try d.write(url)
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url)) { XCTAssertTrue("\($0)".contains("7 outputs for 2 labels"), "\($0)") }
        XCTAssertThrowsError(try FacialExpressionModel(contentsOf: URL(fileURLWithPath: "/nope/m.json"))) { XCTAssertTrue("\($0)".contains("not found")) }
    }

    /// Found by `fer fuzz`: a description asking for huge layers made the loader try to allocate
    /// terabytes and abort; a pooling stride of 0 divided by zero. Both are refused before any
    /// allocation, naming the file and the layer.
    func testHugeOrDegenerateArchitecturesAreRefusedBeforeAllocating() throws {
        let (url, _) = try savedTiny()
        let good = try ModelDescription.load(url)
        func refused(_ edit: (inout ModelDescription) -> Void, _ expect: String, line: UInt = #line) throws {
            var d = good
            edit(&d)
            try d.write(url)
            XCTAssertThrowsError(try FacialExpressionModel(contentsOf: url), line: line) { e in
                XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains(expect), "\(e)", line: line)
            }
        }
        try refused({ $0.architecture[9].units = 1_000_000_000 }, "too large")
        try refused({ $0.architecture[9].units = 60_000 }, "over the limit")            // 2304 x 60000 weights
        try refused({ $0.architecture[0].filters = 60_000 }, "over the limit")
        try refused({ $0.architecture[0].kernel = 4000; $0.architecture[0].padding = 2000 }, "over the limit")
        try refused({ $0.architecture[3].stride = 0 }, "stride must be positive")
        try refused({ $0.input.width = 100_000 }, "outside the supported sizes")
        try refused({ $0.architecture = Array(repeating: LayerSpec.relu, count: 5000) + $0.architecture }, "at most 1000")
    }

    func testPNGRoundTrip() throws {
        let img = Image(width: 5, height: 3, channels: 1, pixels: (0..<15).map { UInt8($0 * 17) })
        let p = tempDir().appendingPathComponent("a.png")
        try ImageCodec.encodePNG(img).write(to: p)
        let back = try ImageCodec.read(p.path)
        XCTAssertEqual(back.pixels, img.pixels)
        XCTAssertEqual(back.width, 5)
        try Data([0xFF, 0xD8, 0, 0]).write(to: p)
        XCTAssertThrowsError(try ImageCodec.read(p.path)) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
        try Data("GIF89a".utf8).write(to: p)
        XCTAssertThrowsError(try ImageCodec.read(p.path)) { XCTAssertTrue("\($0)".contains("unsupported"), "\($0)") }
    }
}
