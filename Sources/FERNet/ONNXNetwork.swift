import Foundation

/// An ONNX image network run for inference on FERNet's kernels, one image at a time: the
/// operators a small convolutional detector uses (Conv with any grouping, depthwise included, by
/// im2col and `cblas_sgemm` or a direct loop; Relu, folded into the convolution before it;
/// MaxPool; nearest-neighbour Resize; Add; Sigmoid; Transpose; Reshape). Every node's operator and
/// attributes are checked when the file is read, so a network that loads runs; shapes are checked
/// on each run, since the input size is free (fully convolutional networks run at any size their
/// strides divide).
public final class ONNXNetwork: @unchecked Sendable {
    /// A value flowing through the graph: its ONNX shape and row-major data.
    public struct Value: Sendable {
        public var shape: [Int]
        public var data: [Float]
        public init(shape: [Int], data: [Float]) { self.shape = shape; self.data = data }
    }

    struct Conv {
        var outChannels: Int, inPerGroup: Int, group: Int
        var kh: Int, kw: Int, strideH: Int, strideW: Int
        var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
        var weight: [Float], bias: [Float]
        var relu: Bool
    }

    enum Op {
        case conv(Conv)
        case relu, sigmoid, add
        case maxPool(kernel: (Int, Int), stride: (Int, Int))
        case resizeNearest(scaleH: Int, scaleW: Int)
        case transpose([Int])
        case reshape([Int])
    }

    struct Step { var op: Op; var inputs: [Int]; var output: Int; var name: String }

    public let path: String
    public let inputName: String
    /// The input's declared shape (0 where free); the network runs at other sizes as well.
    public let declaredInputShape: [Int]
    public let outputNames: [String]
    var steps: [Step]   // changed after init only in their ops (withRepeatedInputChannel), never their inputs
    private let slotCount: Int
    private let outputSlots: [Int]
    /// The last step reading each value (outputs: never freed), so a run frees what is done with.
    private var lastUse: [Int] = []

    static func lastUses(_ steps: [Step], slots: Int, outputs: [Int]) -> [Int] {
        var last = [Int](repeating: -1, count: slots)
        for (k, s) in steps.enumerated() { for i in s.inputs { last[i] = k } }
        for o in outputs { last[o] = Int.max }
        return last
    }

    public convenience init(path: String) throws {
        try self.init(file: try ONNXFile(path: path))
    }

    public init(file: ONNXFile) throws {
        path = file.path
        guard file.inputs.count == 1 else { throw ONNXError(file.path, "the graph has \(file.inputs.count) inputs; one image input is supported") }
        inputName = file.inputs[0].name
        declaredInputShape = file.inputs[0].shape
        outputNames = file.outputs
        var slots: [String: Int] = [inputName: 0]
        func slot(_ name: String) -> Int {
            if let s = slots[name] { return s }
            let s = slots.count; slots[name] = s; return s
        }
        func fail(_ n: ONNXFile.Node, _ why: String) -> ONNXError {
            ONNXError(file.path, "node \(n.op) -> \(n.outputs.first ?? "?"): \(why)")
        }
        func constant(_ n: ONNXFile.Node, _ i: Int) throws -> ONNXFile.Initializer {
            guard i < n.inputs.count, let t = file.initializers[n.inputs[i]] else { throw fail(n, "input \(i) must be a constant") }
            return t
        }
        var built: [Step] = []
        for n in file.nodes {
            guard n.outputs.count == 1 else { throw fail(n, "\(n.outputs.count) outputs (one is supported)") }
            let op: Op
            var dataInputs = [n.inputs.first ?? ""]
            switch n.op {
            case "Conv":
                let w = try constant(n, 1)
                guard w.dims.count == 4 else { throw fail(n, "weights of shape \(w.dims); 2-D convolutions only") }
                let group = n.attributes["group"]?.int ?? 1
                let k = n.attributes["kernel_shape"]?.ints ?? [w.dims[2], w.dims[3]]
                let s = n.attributes["strides"]?.ints ?? [1, 1]
                let p = n.attributes["pads"]?.ints ?? [0, 0, 0, 0]
                let d = n.attributes["dilations"]?.ints ?? [1, 1]
                if let autoPad = n.attributes["auto_pad"]?.string, autoPad != "NOTSET" { throw fail(n, "auto_pad \(autoPad) is not supported") }
                guard k == [w.dims[2], w.dims[3]], s.count == 2, s.allSatisfy({ $0 >= 1 }), p.count == 4, p.allSatisfy({ $0 >= 0 && $0 < 16 }),
                      d == [1, 1], group >= 1, w.dims[0] % group == 0, w.dims.allSatisfy({ $0 >= 1 }) else {
                    throw fail(n, "kernel \(k), strides \(s), pads \(p), dilations \(d), group \(group) for weights \(w.dims) are not supported")
                }
                var bias = [Float](repeating: 0, count: w.dims[0])
                if n.inputs.count > 2 {
                    let b = try constant(n, 2)
                    guard b.floats.count == w.dims[0] else { throw fail(n, "\(b.floats.count) biases for \(w.dims[0]) outputs") }
                    bias = b.floats
                }
                op = .conv(Conv(outChannels: w.dims[0], inPerGroup: w.dims[1], group: group, kh: k[0], kw: k[1], strideH: s[0], strideW: s[1],
                                padTop: p[0], padLeft: p[1], padBottom: p[2], padRight: p[3], weight: w.floats, bias: bias, relu: false))
            case "Relu": op = .relu
            case "Sigmoid": op = .sigmoid
            case "Add":
                guard n.inputs.count == 2 else { throw fail(n, "\(n.inputs.count) inputs") }
                op = .add; dataInputs = n.inputs
            case "MaxPool":
                let k = n.attributes["kernel_shape"]?.ints ?? []
                let s = n.attributes["strides"]?.ints ?? [1, 1]
                let p = n.attributes["pads"]?.ints ?? [0, 0, 0, 0]
                guard k.count == 2, k.allSatisfy({ $0 >= 1 }), s.count == 2, s.allSatisfy({ $0 >= 1 }), p.allSatisfy({ $0 == 0 }),
                      (n.attributes["ceil_mode"]?.int ?? 0) == 0, (n.attributes["dilations"]?.ints ?? [1, 1]) == [1, 1] else {
                    throw fail(n, "kernel \(k), strides \(s), pads \(p) are not supported (no padding, floor mode)")
                }
                op = .maxPool(kernel: (k[0], k[1]), stride: (s[0], s[1]))
            case "Resize", "Upsample":
                let mode = n.attributes["mode"]?.string ?? "nearest"
                let transform = n.attributes["coordinate_transformation_mode"]?.string ?? "asymmetric"
                let nearest = n.attributes["nearest_mode"]?.string ?? "round_prefer_floor"
                // scales: Resize (opset 11+) input 2, Upsample input 1
                let scalesInput = n.op == "Upsample" ? 1 : 2
                let scales = try constant(n, scalesInput).floats
                guard mode == "nearest", transform == "asymmetric", scales.count == 4, scales[0] == 1, scales[1] == 1,
                      let sh = Int(exactly: scales[2]), let sw = Int(exactly: scales[3]), (1...16).contains(sh), (1...16).contains(sw),
                      n.op == "Upsample" || nearest == "floor" || (sh == 1 && sw == 1) else {
                    throw fail(n, "mode \(mode), \(transform), \(nearest), scales \(scales): only nearest-neighbour by whole factors is supported")
                }
                op = .resizeNearest(scaleH: sh, scaleW: sw)
            case "Transpose":
                let perm = n.attributes["perm"]?.ints ?? []
                guard !perm.isEmpty, perm.sorted() == Array(0..<perm.count) else { throw fail(n, "perm \(perm)") }
                op = .transpose(perm)
            case "Reshape":
                let shape = try constant(n, 1).ints
                guard shape.filter({ $0 == -1 }).count <= 1, shape.allSatisfy({ $0 >= -1 }) else { throw fail(n, "shape \(shape)") }
                op = .reshape(shape)
            default:
                throw fail(n, "operator \(n.op) is not supported")
            }
            for i in dataInputs where slots[i] == nil {
                throw fail(n, "input \(i) is not computed before it is used")
            }
            built.append(Step(op: op, inputs: dataInputs.map { slots[$0]! }, output: slot(n.outputs[0]), name: n.outputs[0]))
        }
        for o in file.outputs where slots[o] == nil { throw ONNXError(file.path, "output \(o) is computed by no node") }
        outputSlots = file.outputs.map { slots[$0]! }
        slotCount = slots.count
        // fold a Relu into the convolution before it when nothing else reads the convolution's output
        var reads = [Int](repeating: 0, count: slotCount)
        for s in built { for i in s.inputs { reads[i] += 1 } }
        for o in outputSlots { reads[o] += 1 }
        var folded: [Step] = []
        for s in built {
            if case .relu = s.op, let last = folded.last, case .conv(var c) = last.op, s.inputs[0] == last.output, reads[last.output] == 1 {
                c.relu = true
                folded[folded.count - 1] = Step(op: .conv(c), inputs: last.inputs, output: s.output, name: s.name)
            } else {
                folded.append(s)
            }
        }
        steps = folded
        lastUse = ONNXNetwork.lastUses(folded, slots: slotCount, outputs: outputSlots)
    }

    /// Operators after folding, for logs ("53 Conv, 4 MaxPool, ...").
    public var summary: String {
        var counts: [String: Int] = [:]
        for s in steps {
            let name: String
            switch s.op {
            case .conv(let c): name = c.relu ? "Conv+Relu" : "Conv"
            case .relu: name = "Relu"
            case .sigmoid: name = "Sigmoid"
            case .add: name = "Add"
            case .maxPool: name = "MaxPool"
            case .resizeNearest: name = "Resize"
            case .transpose: name = "Transpose"
            case .reshape: name = "Reshape"
            }
            counts[name, default: 0] += 1
        }
        return counts.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }

    /// The number of weights and biases.
    public var parameterCount: Int {
        steps.reduce(0) { n, s in if case .conv(let c) = s.op { return n + c.weight.count + c.bias.count }; return n }
    }

    /// The same network taking a one-channel picture in place of the `channels` it was trained on,
    /// as if that channel were repeated into each: the convolutions that read the input get their
    /// weights summed over the input channels (a grey picture costs a third of the first layer).
    public func withRepeatedInputChannel(channels: Int) throws -> ONNXNetwork {
        let copy = try ONNXNetwork(copying: self)
        for (i, s) in copy.steps.enumerated() where s.inputs.contains(0) {
            guard case .conv(var c) = s.op, c.group == 1, c.inPerGroup == channels else {
                throw ONNXError(path, "the input is read by \(s.name), not by a plain convolution over \(channels) channels")
            }
            let k = c.kh * c.kw
            var w = [Float](repeating: 0, count: c.outChannels * k)
            for o in 0..<c.outChannels { for ch in 0..<channels { for j in 0..<k { w[o * k + j] += c.weight[(o * channels + ch) * k + j] } } }
            c.weight = w; c.inPerGroup = 1
            copy.steps[i].op = .conv(c)
        }
        return copy
    }

    private init(copying o: ONNXNetwork) throws {
        path = o.path; inputName = o.inputName; declaredInputShape = o.declaredInputShape; outputNames = o.outputNames
        steps = o.steps; slotCount = o.slotCount; outputSlots = o.outputSlots; lastUse = o.lastUse
    }

    /// Time per step's output name in milliseconds, summed over runs, when `profiling` is on
    /// (`fer detect --profile`).
    nonisolated(unsafe) public static var profiling = false
    nonisolated(unsafe) public static var profile: [String: Double] = [:]
    static let profileLock = NSLock()

    /// Each step's output name, operator and output shape at input `h`x`w`, in order (for profiles).
    public func describeSteps() -> [(name: String, op: String)] {
        steps.map { s in
            switch s.op {
            case .conv(let c): return (s.name, "Conv\(c.kh)x\(c.kw)/\(c.strideH) g\(c.group) \(c.inPerGroup * c.group)->\(c.outChannels)\(c.relu ? "+Relu" : "")")
            case .relu: return (s.name, "Relu")
            case .sigmoid: return (s.name, "Sigmoid")
            case .add: return (s.name, "Add")
            case .maxPool: return (s.name, "MaxPool")
            case .resizeNearest: return (s.name, "Resize")
            case .transpose: return (s.name, "Transpose")
            case .reshape: return (s.name, "Reshape")
            }
        }
    }

    /// Runs the network on `input` ([1, C, H, W]); the outputs in the graph's order. Throws when a
    /// shape does not fit (an input size the network's strides do not divide, say).
    public func run(_ input: Value) throws -> [Value] {
        var values = [Value?](repeating: nil, count: slotCount)
        values[0] = input
        for (k, s) in steps.enumerated() {
            let x = values[s.inputs[0]]!
            let started = ONNXNetwork.profiling ? DispatchTime.now().uptimeNanoseconds : 0
            defer {
                if ONNXNetwork.profiling {
                    ONNXNetwork.profileLock.lock()
                    ONNXNetwork.profile[s.name, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
                    ONNXNetwork.profileLock.unlock()
                }
            }
            let y: Value
            do {
                switch s.op {
                case .conv(let c): y = try ONNXKernels.conv(x, c)
                case .relu: y = Value(shape: x.shape, data: ONNXKernels.elementwise(x.data, nil) { a, _ in Swift.max(a, 0) })
                case .sigmoid: y = Value(shape: x.shape, data: ONNXKernels.elementwise(x.data, nil) { a, _ in 1 / (1 + expf(-a)) })
                case .add:
                    let b = values[s.inputs[1]]!
                    guard b.shape == x.shape else { throw ONNXKernels.ShapeError(reason: "adds \(x.shape) and \(b.shape)") }
                    y = Value(shape: x.shape, data: ONNXKernels.elementwise(x.data, b.data) { $0 + $1 })
                case .maxPool(let kernel, let stride): y = try ONNXKernels.maxPool(x, kernel: kernel, stride: stride)
                case .resizeNearest(let sh, let sw): y = try ONNXKernels.resizeNearest(x, scaleH: sh, scaleW: sw)
                case .transpose(let perm): y = try ONNXKernels.transpose(x, perm)
                case .reshape(let shape): y = try ONNXKernels.reshape(x, shape)
                }
            } catch let e as ONNXKernels.ShapeError {
                throw ONNXError(path, "\(s.name) cannot run on an input of shape \(input.shape): it \(e.reason)")
            }
            values[s.output] = y
            for i in s.inputs where lastUse[i] == k { values[i] = nil }   // free what no later step reads
        }
        return outputSlots.map { values[$0]! }
    }
}

/// The kernels behind `ONNXNetwork`, over one image's flat NCHW buffers.
enum ONNXKernels {
    struct ShapeError: Error { let reason: String }

    /// `f` of each element of `a` (and of `b`'s beside it, when given: the same count).
    @inline(__always)
    static func elementwise(_ a: [Float], _ b: [Float]?, _ f: (Float, Float) -> Float) -> [Float] {
        let n = a.count
        return [Float](unsafeUninitializedCapacity: n) { out, count in
            a.withUnsafeBufferPointer { ap in
                let o = out.baseAddress!, x = ap.baseAddress!
                if let b {
                    b.withUnsafeBufferPointer { bp in let z = bp.baseAddress!; var i = 0; while i < n { o[i] = f(x[i], z[i]); i &+= 1 } }
                } else {
                    var i = 0; while i < n { o[i] = f(x[i], 0); i &+= 1 }
                }
            }
            count = n
        }
    }

    static func dims4(_ x: ONNXNetwork.Value) throws -> (c: Int, h: Int, w: Int) {
        guard x.shape.count == 4, x.shape[0] == 1 else { throw ShapeError(reason: "expects one image [1, C, H, W], got \(x.shape)") }
        return (x.shape[1], x.shape[2], x.shape[3])
    }

    static func conv(_ x: ONNXNetwork.Value, _ c: ONNXNetwork.Conv) throws -> ONNXNetwork.Value {
        let (ci, h, w) = try dims4(x)
        guard ci == c.inPerGroup * c.group else { throw ShapeError(reason: "expects \(c.inPerGroup * c.group) channels, got \(ci)") }
        let ho = (h + c.padTop + c.padBottom - c.kh) / c.strideH + 1
        let wo = (w + c.padLeft + c.padRight - c.kw) / c.strideW + 1
        guard ho >= 1, wo >= 1 else { throw ShapeError(reason: "leaves no output from \(h)x\(w)") }
        let plane = ho * wo, outPerGroup = c.outChannels / c.group, kk = c.inPerGroup * c.kh * c.kw
        var y = [Float](unsafeUninitializedCapacity: c.outChannels * plane) { _, n in n = c.outChannels * plane }
        x.data.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                c.weight.withUnsafeBufferPointer { wb in
                    let xp = xb.baseAddress!, yp = yb.baseAddress!, wp = wb.baseAddress!
                    if c.inPerGroup == 1 && outPerGroup == 1 {
                        // depthwise: each channel filtered on its own
                        parallelFor(c.outChannels) { r in
                            for ch in r {
                                depthwise(xp + ch * h * w, h: h, w: w, yp + ch * plane, ho: ho, wo: wo, wp + ch * c.kh * c.kw, c)
                            }
                        }
                    } else if c.kh == 1 && c.kw == 1 && c.strideH == 1 && c.strideW == 1 && c.padTop + c.padLeft + c.padBottom + c.padRight == 0 {
                        for g in 0..<c.group {
                            BLAS.gemm(transA: false, transB: false, m: outPerGroup, n: plane, k: c.inPerGroup,
                                      a: wp + g * outPerGroup * kk, lda: kk, b: xp + g * c.inPerGroup * plane, ldb: plane,
                                      beta: 0, c: yp + g * outPerGroup * plane, ldc: plane)
                        }
                    } else {
                        var cols = [Float](unsafeUninitializedCapacity: kk * plane) { _, n in n = kk * plane }
                        cols.withUnsafeMutableBufferPointer { cb in
                            for g in 0..<c.group {
                                im2col(xp + g * c.inPerGroup * h * w, channels: c.inPerGroup, h: h, w: w, ho: ho, wo: wo, c, cb.baseAddress!)
                                BLAS.gemm(transA: false, transB: false, m: outPerGroup, n: plane, k: kk,
                                          a: wp + g * outPerGroup * kk, lda: kk, b: cb.baseAddress!, ldb: plane,
                                          beta: 0, c: yp + g * outPerGroup * plane, ldc: plane)
                            }
                        }
                    }
                    // bias, and the folded Relu
                    parallelFor(c.outChannels) { r in
                        for o in r {
                            let b = c.bias[o], p = yp + o * plane
                            if c.relu { for i in 0..<plane { p[i] = Swift.max(p[i] + b, 0) } } else { for i in 0..<plane { p[i] += b } }
                        }
                    }
                }
            }
        }
        return ONNXNetwork.Value(shape: [1, c.outChannels, ho, wo], data: y)
    }

    /// One channel's 2-D filter, zero padding; the 3x3 stride-1 interior without bounds tests.
    @inline(__always)
    static func depthwise(_ x: UnsafePointer<Float>, h: Int, w: Int, _ y: UnsafeMutablePointer<Float>, ho: Int, wo: Int,
                          _ k: UnsafePointer<Float>, _ c: ONNXNetwork.Conv) {
        func general(_ oy: Int, _ ox: Int) -> Float {
            var s: Float = 0
            for ky in 0..<c.kh {
                let iy = oy * c.strideH - c.padTop + ky
                if iy < 0 || iy >= h { continue }
                for kx in 0..<c.kw {
                    let ix = ox * c.strideW - c.padLeft + kx
                    if ix < 0 || ix >= w { continue }
                    s += x[iy * w + ix] * k[ky * c.kw + kx]
                }
            }
            return s
        }
        if c.kh == 3 && c.kw == 3 && c.strideH == 1 && c.strideW == 1 && c.padTop == 1 && c.padLeft == 1 && ho == h && wo == w && w >= 3 {
            let k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7], k8 = k[8]
            for oy in 0..<ho {
                if oy == 0 || oy == ho - 1 {
                    for ox in 0..<wo { y[oy * wo + ox] = general(oy, ox) }
                    continue
                }
                let r0 = x + (oy - 1) * w, r1 = r0 + w, r2 = r1 + w, out = y + oy * wo
                out[0] = general(oy, 0)
                var ox = 1
                while ox < wo - 1 {
                    var s = r0[ox - 1] * k0
                    s += r0[ox] * k1
                    s += r0[ox + 1] * k2
                    s += r1[ox - 1] * k3
                    s += r1[ox] * k4
                    s += r1[ox + 1] * k5
                    s += r2[ox - 1] * k6
                    s += r2[ox] * k7
                    s += r2[ox + 1] * k8
                    out[ox] = s
                    ox &+= 1
                }
                out[wo - 1] = general(oy, wo - 1)
            }
        } else {
            for oy in 0..<ho { for ox in 0..<wo { y[oy * wo + ox] = general(oy, ox) } }
        }
    }

    /// Unfolds `channels` planes into rows of [channels*kh*kw, ho*wo] (zero padding).
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, h: Int, w: Int, ho: Int, wo: Int,
                       _ c: ONNXNetwork.Conv, _ cols: UnsafeMutablePointer<Float>) {
        let plane = ho * wo
        parallelFor(channels * c.kh * c.kw) { r in
            for row in r {
                let ch = row / (c.kh * c.kw), ky = row / c.kw % c.kh, kx = row % c.kw
                let src = x + ch * h * w, dst = cols + row * plane
                // output columns whose input column lies inside the picture: [lo, hi)
                let sw = c.strideW, off = kx - c.padLeft
                let lo = Swift.min(wo, Swift.max(0, (-off + sw - 1) / sw)), hi = Swift.max(lo, Swift.min(wo, (w - 1 - off) / sw + 1))
                for oy in 0..<ho {
                    let iy = oy * c.strideH - c.padTop + ky
                    let d = dst + oy * wo
                    if iy < 0 || iy >= h { d.update(repeating: 0, count: wo); continue }
                    let s = src + iy * w + off
                    if lo > 0 { d.update(repeating: 0, count: lo) }
                    if hi < wo { (d + hi).update(repeating: 0, count: wo - hi) }
                    var ox = lo
                    if sw == 1 { (d + lo).update(from: s + lo, count: hi - lo) } else {
                        while ox < hi { d[ox] = s[ox &* sw]; ox &+= 1 }
                    }
                }
            }
        }
    }

    static func maxPool(_ x: ONNXNetwork.Value, kernel: (Int, Int), stride: (Int, Int)) throws -> ONNXNetwork.Value {
        let (c, h, w) = try dims4(x)
        let ho = (h - kernel.0) / stride.0 + 1, wo = (w - kernel.1) / stride.1 + 1
        guard h >= kernel.0, w >= kernel.1 else { throw ShapeError(reason: "pools \(h)x\(w) with a \(kernel.0)x\(kernel.1) window") }
        var y = [Float](unsafeUninitializedCapacity: c * ho * wo) { _, n in n = c * ho * wo }
        x.data.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                parallelFor(c) { r in
                    for ch in r {
                        let src = xp + ch * h * w, dst = yp + ch * ho * wo
                        if kernel == (2, 2) && stride == (2, 2) {
                            for oy in 0..<ho {
                                let a = src + 2 * oy * w, b = a + w, o = dst + oy * wo
                                var ox = 0
                                while ox < wo {
                                    o[ox] = Swift.max(Swift.max(a[2 &* ox], a[2 &* ox &+ 1]), Swift.max(b[2 &* ox], b[2 &* ox &+ 1]))
                                    ox &+= 1
                                }
                            }
                            continue
                        }
                        for oy in 0..<ho {
                            for ox in 0..<wo {
                                var m = -Float.infinity
                                for ky in 0..<kernel.0 {
                                    let row = src + (oy * stride.0 + ky) * w + ox * stride.1
                                    for kx in 0..<kernel.1 { m = Swift.max(m, row[kx]) }
                                }
                                dst[oy * wo + ox] = m
                            }
                        }
                    }
                }
            }
        }
        return ONNXNetwork.Value(shape: [1, c, ho, wo], data: y)
    }

    static func resizeNearest(_ x: ONNXNetwork.Value, scaleH: Int, scaleW: Int) throws -> ONNXNetwork.Value {
        let (c, h, w) = try dims4(x)
        let ho = h * scaleH, wo = w * scaleW
        var y = [Float](unsafeUninitializedCapacity: c * ho * wo) { _, n in n = c * ho * wo }
        x.data.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                for ch in 0..<c {
                    for oy in 0..<ho {
                        let src = xp + (ch * h + oy / scaleH) * w, dst = yp + (ch * ho + oy) * wo
                        if scaleW == 2 {
                            var ix = 0
                            while ix < w { let v = src[ix]; dst[2 &* ix] = v; dst[2 &* ix &+ 1] = v; ix &+= 1 }
                        } else {
                            for ox in 0..<wo { dst[ox] = src[ox / scaleW] }
                        }
                    }
                }
            }
        }
        return ONNXNetwork.Value(shape: [1, c, ho, wo], data: y)
    }

    static func transpose(_ x: ONNXNetwork.Value, _ perm: [Int]) throws -> ONNXNetwork.Value {
        guard perm.count == x.shape.count else { throw ShapeError(reason: "permutes \(perm.count) axes of \(x.shape)") }
        let n = x.shape.count
        let outShape = perm.map { x.shape[$0] }
        if perm == [0, 2, 3, 1] && x.shape[0] == 1 {   // NCHW -> NHWC, the detector heads' layout
            let c = x.shape[1], plane = x.shape[2] * x.shape[3]
            let y = [Float](unsafeUninitializedCapacity: c * plane) { out, count in
                x.data.withUnsafeBufferPointer { xb in
                    let o = out.baseAddress!, s = xb.baseAddress!
                    for ch in 0..<c { let src = s + ch * plane; var i = 0; while i < plane { o[i &* c &+ ch] = src[i]; i &+= 1 } }
                }
                count = c * plane
            }
            return ONNXNetwork.Value(shape: outShape, data: y)
        }
        var inStrides = [Int](repeating: 1, count: n)
        for i in stride(from: n - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        let strides = perm.map { inStrides[$0] }   // input stride of each output axis
        var y = [Float](repeating: 0, count: x.data.count)
        var index = [Int](repeating: 0, count: n)
        for o in 0..<y.count {
            var src = 0
            for a in 0..<n { src += index[a] * strides[a] }
            y[o] = x.data[src]
            var a = n - 1
            while a >= 0 { index[a] += 1; if index[a] < outShape[a] { break }; index[a] = 0; a -= 1 }
        }
        return ONNXNetwork.Value(shape: outShape, data: y)
    }

    static func reshape(_ x: ONNXNetwork.Value, _ shape: [Int]) throws -> ONNXNetwork.Value {
        var out = shape.enumerated().map { i, d in d == 0 && i < x.shape.count ? x.shape[i] : d }
        let known = out.filter { $0 != -1 }.reduce(1, *)
        if let free = out.firstIndex(of: -1) {
            guard known > 0, x.data.count % known == 0 else { throw ShapeError(reason: "reshapes \(x.shape) to \(shape)") }
            out[free] = x.data.count / known
        }
        guard out.reduce(1, *) == x.data.count else { throw ShapeError(reason: "reshapes \(x.shape) to \(shape)") }
        return ONNXNetwork.Value(shape: out, data: x.data)
    }
}
