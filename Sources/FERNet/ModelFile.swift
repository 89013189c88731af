import Foundation
import CZlib

/// What can go wrong reading a model; every case names the file and the problem.
public enum ModelFileError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case unreadable(String, String)
    case badJSON(String, String)
    case truncated(String, String)
    case badMagic(String)
    case unsupportedVersion(String, UInt32)
    case checksum(String, expected: UInt32, actual: UInt32)
    case mismatch(String)

    public var description: String {
        switch self {
        case .missing(let f): return "model file not found: \(f)"
        case .unreadable(let f, let why): return "cannot read \(f): \(why)"
        case .badJSON(let f, let why): return "\(f) is not a valid GstFER model description: \(why)"
        case .truncated(let f, let where_): return "\(f) is truncated (\(where_))"
        case .badMagic(let f): return "\(f) is not a GstFER weights file (bad magic number)"
        case .unsupportedVersion(let f, let v): return "\(f) has weights format version \(v); this build reads version \(WeightsFile.version)"
        case .checksum(let f, let e, let a):
            return "\(f) is corrupt: CRC-32 is \(String(format: "%08x", a)), the file records \(String(format: "%08x", e))"
        case .mismatch(let why): return "weights do not fit the architecture: \(why)"
        }
    }
}

/// Normalisation applied to 0-255 grey pixels before the network: (p/255 - mean) / std.
public struct Normalization: Codable, Equatable, Sendable {
    public var mean: Float
    public var std: Float
    public init(mean: Float, std: Float) { self.mean = mean; self.std = std }

    /// The network's input for a pixel in [0, 1]: (v - mean) / std. Every path into a network
    /// (inference, training batches, evaluation) goes through this or `input(pixel:)`.
    @inline(__always) public func input(_ v: Float) -> Float { (v - mean) / std }

    /// The network's input for an 8-bit grey pixel: (p / 255 - mean) / std.
    @inline(__always) public func input(pixel p: UInt8) -> Float { input(Float(p) / 255) }
}

/// The seven FER2013 emotions in its label order: what a model trained on FER2013 names in its
/// file, and what drawing code falls back to for faces that carry no model's labels.
public let fer2013Labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

/// Per-class figures for the model card.
public struct ClassReport: Codable, Sendable {
    public var label: String
    public var precision: Double
    public var recall: Double
    public var f1: Double
    public var support: Int
}

/// The model card: what the model scores and how it was made.
public struct ModelCard: Codable, Sendable {
    public var evaluatedOn: String
    public var accuracy: Double
    public var accuracyFlipTTA: Double?
    public var perClass: [ClassReport]
    public var date: String
    public var command: String
    public var epochsTrained: Int
    public var bestEpoch: Int
    public var trainingSeconds: Double?
    public var notes: String?

    public init(evaluatedOn: String, accuracy: Double, accuracyFlipTTA: Double?, perClass: [ClassReport], date: String, command: String,
                epochsTrained: Int, bestEpoch: Int, trainingSeconds: Double? = nil, notes: String? = nil) {
        self.evaluatedOn = evaluatedOn; self.accuracy = accuracy; self.accuracyFlipTTA = accuracyFlipTTA; self.perClass = perClass
        self.date = date; self.command = command; self.epochsTrained = epochsTrained; self.bestEpoch = bestEpoch
        self.trainingSeconds = trainingSeconds; self.notes = notes
    }
}

/// How the model was trained (the recipe `fer train` records).
public struct TrainingRecipe: Codable, Sendable {
    public var architecture: String
    public var epochs: Int
    public var batchSize: Int
    public var optimizer: String
    public var learningRate: Float
    public var weightDecay: Float
    public var schedule: String
    public var labelSmoothing: Float
    public var augmentation: Augmentation
    public var seed: UInt64
    public var data: String
    /// Stochastic weight averaging: the model is the average of the weights at the end of every
    /// epoch from this one on, batch-norm statistics recomputed.
    public var averagedFromEpoch: Int? = nil
    /// Targets blended (1-w)·FER2013 label + w·FER+ vote distribution; this is w.
    public var ferPlusWeight: Float? = nil
    /// Knowledge distillation: the teacher model (its file and, from its card, what it is).
    public var teacher: String? = nil
    /// Targets blended (1-w)·FER2013 label + w·the teacher's probabilities; this is w.
    public var teacherWeight: Float? = nil
    /// A run begun from another model's weights (`fer train --init-from`): that model, its
    /// recipe and score, in one line.
    public var startedFrom: String? = nil

    public init(architecture: String, epochs: Int, batchSize: Int, optimizer: String, learningRate: Float, weightDecay: Float,
                schedule: String, labelSmoothing: Float, augmentation: Augmentation, seed: UInt64, data: String,
                averagedFromEpoch: Int? = nil, ferPlusWeight: Float? = nil, teacher: String? = nil, teacherWeight: Float? = nil,
                startedFrom: String? = nil) {
        self.architecture = architecture; self.epochs = epochs; self.batchSize = batchSize; self.optimizer = optimizer
        self.learningRate = learningRate; self.weightDecay = weightDecay; self.schedule = schedule; self.labelSmoothing = labelSmoothing
        self.augmentation = augmentation; self.seed = seed; self.data = data; self.averagedFromEpoch = averagedFromEpoch
        self.ferPlusWeight = ferPlusWeight; self.teacher = teacher; self.teacherWeight = teacherWeight; self.startedFrom = startedFrom
    }
}

/// `Models/<name>.json`: the architecture as JSON beside the weights, with labels, input size,
/// normalisation, the training recipe and the model card.
public struct ModelDescription: Codable, Sendable {
    public static let formatName = "gstfer-model"
    public var format: String = ModelDescription.formatName
    public var version: Int = 1
    public var name: String
    public var labels: [String]
    public var input: InputSpec
    public var normalization: Normalization
    public var architecture: [LayerSpec]
    public var weights: WeightsRef
    public var parameters: Int?
    public var macs: Int?
    public var training: TrainingRecipe?
    public var card: ModelCard?

    public struct InputSpec: Codable, Sendable { public var width: Int; public var height: Int; public var channels: Int }
    public struct WeightsRef: Codable, Sendable {
        public var file: String; public var crc32: String; public var bytes: Int
        /// How the file stores the values (`WeightStorage`'s name); absent in files written before it.
        public var storage: String?
    }

    public static func load(_ url: URL) throws -> ModelDescription {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw ModelFileError.missing(path) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ModelFileError.unreadable(path, "\(error.localizedDescription)") }
        let d: ModelDescription
        do { d = try JSONDecoder().decode(ModelDescription.self, from: data) } catch let e as DecodingError {
            throw ModelFileError.badJSON(path, describe(e))
        } catch { throw ModelFileError.badJSON(path, "\(error)") }
        guard d.format == formatName else { throw ModelFileError.badJSON(path, "format is \"\(d.format)\", expected \"\(formatName)\"") }
        guard d.version == 1 else { throw ModelFileError.badJSON(path, "description version \(d.version) is not supported") }
        guard !d.labels.isEmpty, d.input.width > 0, d.input.height > 0, d.input.channels == 1 else {
            throw ModelFileError.badJSON(path, "needs labels and a one-channel input of positive size")
        }
        guard d.normalization.std > 0 else { throw ModelFileError.badJSON(path, "normalization.std must be positive") }
        return d
    }

    public func write(_ url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try enc.encode(self).write(to: url, options: .atomic)
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let k, let c): return "missing key \"\(k.stringValue)\" at \(path(c))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(c.debugDescription) at \(path(c))"
        case .dataCorrupted(let c): return "\(c.debugDescription)\(c.underlyingError.map { " (\($0.localizedDescription))" } ?? "")"
        @unknown default: return "\(e)"
        }
    }
    static func path(_ c: DecodingError.Context) -> String {
        c.codingPath.isEmpty ? "top level" : c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
}

/// How a weights file stores its values.
public enum WeightStorage: String, CaseIterable, Sendable {
    /// Every tensor float32 (checkpoints).
    case float32
    /// Every tensor float16: half the size.
    case float16
    /// Convolution and dense weights (tensors of rank 2 or more) as int8 with a float32 scale per
    /// output channel (the first dimension: value = scale·q, scale = the row's largest |value|/127);
    /// the rest (biases, batch-norm parameters and statistics) float16. About a quarter of float32.
    case int8
}

/// The weights file: magic "FERW", format version, tensor count, then per tensor its name, rank,
/// shape, element type (0 float32, 1 float16, 2 int8 with a float32 scale per first-dimension
/// row, the scales first) and little-endian values, closed by a CRC-32 of everything before it.
/// Shipped models store float16 or int8 (`WeightStorage`; values are widened to float32 on load),
/// checkpoints float32.
public enum WeightsFile {
    public static let magic: [UInt8] = Array("FERW".utf8)
    public static let version: UInt32 = 1
    public static let maxTensors = 100_000

    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])], storage: WeightStorage = .float32) -> Data {
        var out = Data()
        out.append(contentsOf: magic)
        appendU32(&out, version)
        appendU32(&out, UInt32(tensors.count))
        for t in tensors {
            let name = Array(t.name.utf8)
            appendU32(&out, UInt32(name.count)); out.append(contentsOf: name)
            appendU32(&out, UInt32(t.shape.count))
            for d in t.shape { appendU32(&out, UInt32(d)) }
            let type: UInt32 = storage == .float32 ? 0 : (storage == .int8 && t.shape.count >= 2 && t.shape[0] > 0 ? 2 : 1)
            appendU32(&out, type)
            switch type {
            case 0:
                t.values.withUnsafeBytes { out.append(contentsOf: $0) }
            case 1:
                let h = t.values.map { Float16($0) }
                h.withUnsafeBytes { out.append(contentsOf: $0) }
            default:
                let (scales, q) = quantize(t.values, rows: t.shape[0])
                scales.withUnsafeBytes { out.append(contentsOf: $0) }
                q.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        appendU32(&out, crc(out))
        return out
    }

    /// Symmetric int8 per row: scale = the row's largest |value| / 127 (1 for a row of zeros),
    /// q = round(value / scale).
    static func quantize(_ v: [Float], rows: Int) -> (scales: [Float], q: [Int8]) {
        let per = v.count / rows
        var scales = [Float](repeating: 1, count: rows), q = [Int8](repeating: 0, count: v.count)
        for r in 0..<rows {
            let row = v[(r * per)..<((r + 1) * per)]
            let m = row.reduce(0) { Swift.max($0, abs($1)) }
            if m > 0 && m.isFinite { scales[r] = m / 127 }
            for i in row.indices { q[i] = Int8(Swift.max(-127, Swift.min(127, (v[i] / scales[r]).rounded()))) }
        }
        return (scales, q)
    }

    public static func decode(_ data: Data, file: String) throws -> [(name: String, shape: [Int], values: [Float])] {
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else { throw ModelFileError.truncated(file, "\(bytes.count) bytes, no header") }
        guard Array(bytes[0..<4]) == magic else { throw ModelFileError.badMagic(file) }
        guard bytes.count >= 16 else { throw ModelFileError.truncated(file, "header incomplete") }
        var pos = 4
        func u32(_ what: String) throws -> UInt32 {
            guard pos + 4 <= bytes.count - 4 else { throw ModelFileError.truncated(file, "ends inside \(what) at byte \(pos)") }
            let v = UInt32(bytes[pos]) | UInt32(bytes[pos + 1]) << 8 | UInt32(bytes[pos + 2]) << 16 | UInt32(bytes[pos + 3]) << 24
            pos += 4
            return v
        }
        let ver = try u32("version")
        guard ver == version else { throw ModelFileError.unsupportedVersion(file, ver) }
        let body = bytes.count - 4
        let stored = UInt32(bytes[body]) | UInt32(bytes[body + 1]) << 8 | UInt32(bytes[body + 2]) << 16 | UInt32(bytes[body + 3]) << 24
        let actual = bytes.withUnsafeBufferPointer { p in UInt32(crc32(0, p.baseAddress, UInt32(body))) }
        guard stored == actual else { throw ModelFileError.checksum(file, expected: stored, actual: actual) }
        let count = Int(try u32("tensor count"))
        guard count <= maxTensors else { throw ModelFileError.mismatch("\(file) claims \(count) tensors") }
        var out: [(String, [Int], [Float])] = []
        for i in 0..<count {
            let nlen = Int(try u32("name length of tensor \(i)"))
            guard nlen <= 1024, pos + nlen <= body else { throw ModelFileError.truncated(file, "ends inside the name of tensor \(i)") }
            let name = String(decoding: bytes[pos..<(pos + nlen)], as: UTF8.self); pos += nlen
            let nd = Int(try u32("rank of \(name)"))
            guard nd <= 8 else { throw ModelFileError.mismatch("\(file): tensor \(name) has rank \(nd)") }
            var shape: [Int] = []
            for _ in 0..<nd { shape.append(Int(try u32("shape of \(name)"))) }
            let dtype = try u32("element type of \(name)")
            guard dtype <= 2 else { throw ModelFileError.mismatch("\(file): tensor \(name) has unknown element type \(dtype)") }
            guard dtype != 2 || (nd >= 2 && shape[0] > 0) else {
                throw ModelFileError.mismatch("\(file): int8 tensor \(name) has shape \(shape); int8 needs rows")
            }
            let width = [4, 2, 1][Int(dtype)]
            var n = 1
            for d in shape {
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard !o, p <= body else { throw ModelFileError.truncated(file, "tensor \(name) \(shape) is larger than the file") }
                n = p
            }
            let scaleBytes = dtype == 2 ? 4 * shape[0] : 0
            guard n <= (body - pos - scaleBytes) / width, scaleBytes <= body - pos else {
                throw ModelFileError.truncated(file, "tensor \(name) \(shape) needs \(scaleBytes + n * width) bytes")
            }
            var vals = [Float](repeating: 0, count: n)
            if dtype == 2 {
                let rows = shape[0], per = n / rows
                var scales = [Float](repeating: 0, count: rows), q = [Int8](repeating: 0, count: n)
                bytes.withUnsafeBytes { src in
                    scales.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[pos..<(pos + scaleBytes)])) }
                    q.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(pos + scaleBytes)..<(pos + scaleBytes + n)])) }
                }
                guard scales.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                    throw ModelFileError.mismatch("\(file): int8 tensor \(name) has a scale that is not a positive number")
                }
                for r in 0..<rows { for i in (r * per)..<((r + 1) * per) { vals[i] = scales[r] * Float(q[i]) } }
                pos += scaleBytes
            } else if dtype == 1 {
                var h = [Float16](repeating: 0, count: n)
                h.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[pos..<(pos + n * 2)]))
                } }
                for i in 0..<n { vals[i] = Float(h[i]) }
            } else {
                vals.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[pos..<(pos + n * 4)]))
                } }
            }
            pos += n * width
            out.append((name, shape, vals))
        }
        guard pos == body else { throw ModelFileError.mismatch("\(file) has \(body - pos) unexpected bytes after the last tensor") }
        return out
    }

    /// The CRC-32 of a weights file's content (all but its last four bytes), which the file
    /// records at its end and the model description records too.
    public static func contentCRC(_ d: Data) -> UInt32 {
        d.count < 4 ? 0 : crc(d.prefix(d.count - 4))
    }

    public static func crc(_ d: Data) -> UInt32 {
        d.withUnsafeBytes { p in UInt32(crc32(0, p.bindMemory(to: UInt8.self).baseAddress, UInt32(p.count))) }
    }

    static func appendU32(_ d: inout Data, _ v: UInt32) {
        d.append(contentsOf: [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)])
    }
}

extension Network {
    /// The network's tensors in file order.
    public func exportTensors() -> [(name: String, shape: [Int], values: [Float])] {
        namedTensors.map { ($0.name, $0.shape, $0.get()) }
    }

    /// Loads tensors by name; every tensor of the network must be present with its exact shape.
    public func importTensors(_ tensors: [(name: String, shape: [Int], values: [Float])], file: String) throws {
        var byName: [String: (shape: [Int], values: [Float])] = [:]
        for t in tensors { byName[t.name] = (t.shape, t.values) }
        for t in namedTensors {
            guard let v = byName[t.name] else { throw ModelFileError.mismatch("\(file) lacks tensor \(t.name)") }
            guard v.shape == t.shape else {
                throw ModelFileError.mismatch("\(file): tensor \(t.name) has shape \(v.shape), the architecture needs \(t.shape)")
            }
            t.set(v.values)
        }
        let extra = Set(byName.keys).subtracting(namedTensors.map { $0.name })
        guard extra.isEmpty else { throw ModelFileError.mismatch("\(file) has tensors the architecture lacks: \(extra.sorted().prefix(5).joined(separator: ", "))") }
    }
}
