import ArgumentParser
import FERNet
import FERTraining
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Training throughput and inference latency of an architecture on this machine, beside PyTorch's.",
        discussion: "Runs tools/bench_torch.py for the same figures when python3 with torch is present.")

    @Option(help: "Architecture.") var arch = Architecture.defaultName
    @Option(help: "Training batch size.") var batchSize = 64
    @Option(help: "Timed training steps.") var steps = 10
    @Option(help: "Timed inference repetitions.") var reps = 50
    @Flag(help: "Skip the PyTorch comparison.") var noTorch = false
    @Flag(help: "Also print where a training step's time goes: forward and backward of each layer, loss, optimizer.")
    var layers = false
    @OptionGroup var threads: ThreadOption

    @Option(help: "Rounds of FERNet then PyTorch taking turns; the ratios' medians are printed (this machine's speed drifts by 10-30% over minutes).")
    var rounds = 3

    func run() throws {
        threads.apply()
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        if layers { try Bench.layerProfile(arch: arch, batch: batchSize, steps: steps) }
        var ratios: [[Double]] = []
        for round in 1...rounds {
            if rounds > 1 { print("round \(round) of \(rounds):") }
            let ours = try Bench.measure(arch: arch, batch: batchSize, steps: steps, reps: reps)
            print("FERNet \(arch): \(ours.params) parameters, \(ours.macs / 1_000_000) M MACs/face, \(Parallelism.threads) threads, \(BLAS.kernelsDescription)")
            print("  training:  \(fmt(ours.trainIPS, 1)) images/s (batch \(batchSize); "
                  + "with every convolution as im2col and products instead of Winograd: \(fmt(ours.im2colIPS, 1)))")
            print("  inference: \(fmt(ours.lat1 * 1000, 2)) ms for 1 face, \(fmt(ours.lat8 * 1000, 2)) ms for a batch of 8")
            print("  (inference with every convolution as im2col and one product instead of Winograd: "
                  + "\(fmt(ours.im2col1 * 1000, 2)) ms, \(fmt(ours.im2col8 * 1000, 2)) ms)")
            guard !noTorch else { continue }
            guard let torch = try torchFigures() else { return }
            print("PyTorch \(arch) (float32, same threads):")
            print("  training:  \(fmt(torch.trainIPS, 1)) images/s")
            print("  inference: \(fmt(torch.lat1 * 1000, 2)) ms for 1 face, \(fmt(torch.lat8 * 1000, 2)) ms for a batch of 8")
            let r = [ours.trainIPS / torch.trainIPS, ours.lat1 / torch.lat1, ours.lat8 / torch.lat8]
            ratios.append(r)
            print("ratios (FERNet / PyTorch; >1 is better for throughput, <1 better for latency):")
            print("  training throughput \(fmt(r[0], 2))x, latency 1 face \(fmt(r[1], 2))x, batch 8 \(fmt(r[2], 2))x")
        }
        if ratios.count > 1 {
            let median = { (i: Int) -> String in
                let v = ratios.map { $0[i] }.sorted()
                return fmt(v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2, 2) + "x"
            }
            print("median ratios of \(ratios.count) rounds: training throughput \(median(0)), latency 1 face \(median(1)), batch 8 \(median(2))")
        }
    }

    /// PyTorch's figures from tools/bench_torch.py, or nil (said why) where it cannot run.
    func torchFigures() throws -> (trainIPS: Double, lat1: Double, lat8: Double)? {
        let script = URL(fileURLWithPath: "tools/bench_torch.py")
        guard FileManager.default.fileExists(atPath: script.path) else { print("PyTorch: tools/bench_torch.py not found"); return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path, "--arch", arch, "--batch-size", "\(batchSize)", "--steps", "\(steps)",
                       "--reps", "\(reps)", "--threads", "\(Parallelism.threads)"]
        let pipe = Pipe(); p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, let j = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Double],
              let tips = j["train_ips"], let l1 = j["lat1"], let l8 = j["lat8"] else {
            print("PyTorch: not available (python3 with torch needed)"); return nil
        }
        return (tips, l1, l8)
    }

    /// The network, a seeded random batch, its labels and an optimizer the timings train with.
    static func trainingSetup(arch: String, batch: Int) throws -> (Network, Tensor, [Int], Adam) {
        guard let specs = Architecture.all[arch] else { throw ValidationError("unknown architecture \(arch)") }
        let net = try Network(specs: specs, input: (1, 48, 48), seed: 1)
        var rng = SeededGenerator(seed: 2)
        let x = Tensor(shape: [1, batch, 48, 48], data: (0..<(batch * 2304)).map { _ in rng.normal() })
        let labels = (0..<batch).map { $0 % 7 }
        let opt = Adam(weightDecay: 1e-4, decoupled: true)
        return (net, x, labels, opt)
    }

    /// Times each layer's forward and backward over `steps` training steps (after two warm-up
    /// steps) and prints them with their share of the step.
    static func layerProfile(arch: String, batch: Int, steps: Int) throws {
        let (net, x, labels, opt) = try trainingSetup(arch: arch, batch: batch)
        let n = net.layers.count
        var fwd = [Double](repeating: 0, count: n), bwd = fwd, shapes = [[Int]](repeating: [], count: n)
        var lossTime = 0.0, optTime = 0.0, total = 0.0
        for s in 0..<(steps + 2) {
            let timed = s >= 2
            let t0 = Date()
            net.zeroGrad()
            var y = x
            for (i, l) in net.layers.enumerated() {
                if net.fusedIntoPrevious.contains(i) { shapes[i] = y.shape; continue }
                let t = Date(); y = l.forward(y, training: true)
                if timed { fwd[i] += Date().timeIntervalSince(t) }
                shapes[i] = y.shape
            }
            var t = Date()
            let (_, g) = SoftmaxCrossEntropy.lossAndGradient(logits: y.data, labels: labels, classes: 7, smoothing: 0.1)
            if timed { lossTime += Date().timeIntervalSince(t) }
            var d = Tensor(shape: y.shape, data: g)
            for i in net.layers.indices.reversed() where !net.fusedIntoPrevious.contains(i) {
                let t = Date(); d = net.backward(layer: i, d, inputGradient: false)
                if timed { bwd[i] += Date().timeIntervalSince(t) }
            }
            t = Date()
            opt.update(net.parameters, lr: 1e-3)
            if timed { optTime += Date().timeIntervalSince(t); total += Date().timeIntervalSince(t0) }
        }
        let ms = { (v: Double) in fmt(v * 1000 / Double(steps), 1) }
        let pct = { (v: Double) in fmt(100 * v / total, 1) }
        print("training step, batch \(batch), \(Parallelism.threads) threads: \(ms(total)) ms (mean of \(steps))")
        print("layer | kind | output | forward ms | backward ms | % of step")
        let kind = { (i: Int) in net.fusedIntoPrevious.contains(i) ? "relu (in \(i - 1))"
                                  : (net.layers[i] as? BatchNorm)?.relu == true ? "batchnorm+relu" : net.layers[i].kind }
        for i in 0..<n {
            print("\(i) | \(kind(i)) | \(shapes[i].map(String.init).joined(separator: "x")) | \(ms(fwd[i])) | \(ms(bwd[i])) | \(pct(fwd[i] + bwd[i]))")
        }
        print("- | loss | - | \(ms(lossTime)) | - | \(pct(lossTime))")
        print("- | optimizer | - | \(ms(optTime)) | - | \(pct(optTime))")
        let kinds = Dictionary(grouping: (0..<n).filter { !net.fusedIntoPrevious.contains($0) }) { kind($0) }
        print("by kind: " + kinds.keys.sorted().map { k in
            "\(k) \(pct(kinds[k]!.reduce(0.0) { $0 + fwd[$1] + bwd[$1] }))%" }.joined(separator: ", "))
        // inference as FacialExpressionModel runs it, step by step (medians of `steps` · 5 runs),
        // beside the same steps with every convolution as im2col and one product
        let plans = [InferencePlan(net), InferencePlan(net, winograd: false)], names = plans[0].stepNames
        for faces in [1, 8] {
            let xi = Tensor(shape: [1, faces, x.shape[2], x.shape[3]], data: Array(x.data.prefix(faces * x.shape[2] * x.shape[3])))
            var times = [[[Double]]](repeating: [[Double]](repeating: [], count: names.count), count: 2)
            var outShapes = [[Int]](repeating: [], count: names.count)
            var whole: [[Double]] = [[], []]
            for r in 0..<(steps * 5 + 3) {
                for (p, plan) in plans.enumerated() {   // the plans take turns
                    var last = Date()
                    let start = last
                    _ = plan.forward(xi) { i, out in
                        if r >= 3 { times[p][i].append(Date().timeIntervalSince(last)) }
                        outShapes[i] = out.shape
                        last = Date()
                    }
                    if r >= 3 { whole[p].append(Date().timeIntervalSince(start)) }
                }
            }
            let median = { (v: [Double]) in fmt(v.sorted()[v.count / 2] * 1000, 3) }
            print("inference, \(faces) face\(faces == 1 ? "" : "s"): \(median(whole[0])) ms; every convolution as im2col: "
                  + "\(median(whole[1])) ms (medians of \(whole[0].count))")
            print("step | does | output | ms | im2col ms")
            for i in names.indices {
                print("\(i) | \(names[i]) | \(outShapes[i].map(String.init).joined(separator: "x")) | \(median(times[0][i])) | \(median(times[1][i]))")
            }
        }
    }

    static func measure(arch: String, batch: Int, steps: Int, reps: Int) throws
        -> (params: Int, macs: Int, trainIPS: Double, im2colIPS: Double, lat1: Double, lat8: Double, im2col1: Double, im2col8: Double) {
        let (net, x, labels, opt) = try trainingSetup(arch: arch, batch: batch)
        func step() {
            net.zeroGrad()
            let y = net.forward(x, training: true)
            let (_, g) = SoftmaxCrossEntropy.lossAndGradient(logits: y.data, labels: labels, classes: 7, smoothing: 0.1)
            net.backward(Tensor(shape: y.shape, data: g), inputGradient: false)
            opt.update(net.parameters, lr: 1e-3)
        }
        // training with Winograd convolutions and with im2col only, a step of each in turn
        let threshold = Conv2D.winogradTrainingMinChannels
        defer { Conv2D.winogradTrainingMinChannels = threshold }
        let modes = [threshold, Int.max]
        for mode in modes { Conv2D.winogradTrainingMinChannels = mode; step() }
        var seconds = [0.0, 0.0]
        for _ in 0..<steps {
            for (i, mode) in modes.enumerated() {
                Conv2D.winogradTrainingMinChannels = mode
                let t = Date(); step(); seconds[i] += Date().timeIntervalSince(t)
            }
        }
        Conv2D.winogradTrainingMinChannels = threshold
        let trainIPS = Double(steps * batch) / seconds[0], im2colIPS = Double(steps * batch) / seconds[1]
        // inference as FacialExpressionModel runs it: batch normalisation folded into the convolutions
        let winograd = InferencePlan(net), im2col = InferencePlan(net, winograd: false)
        // the two plans take turns, so a change in the machine's speed during the run hits both alike
        func latency(_ n: Int) -> (winograd: Double, im2col: Double) {
            let xi = Tensor(shape: [1, n, 48, 48], data: Array(x.data.prefix(n * 2304)))
            for _ in 0..<3 { _ = winograd.forward(xi); _ = im2col.forward(xi) }
            var a: [Double] = [], b: [Double] = []
            for _ in 0..<reps {
                var t = Date(); _ = winograd.forward(xi); a.append(Date().timeIntervalSince(t))
                t = Date(); _ = im2col.forward(xi); b.append(Date().timeIntervalSince(t))
            }
            return (a.sorted()[a.count / 2], b.sorted()[b.count / 2])
        }
        let one = latency(1), eight = latency(8)
        return (net.parameterCount, net.macsPerSample, trainIPS, im2colIPS, one.winograd, eight.winograd, one.im2col, eight.im2col)
    }
}
