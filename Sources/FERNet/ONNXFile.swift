import Foundation

/// An ONNX model file read directly from its protobuf: the graph's nodes in order, its
/// initialisers (float32 and int64 tensors) and its inputs and outputs. Only what a plain
/// feed-forward image network needs is read (no subgraphs, no external data, no other element
/// types); anything else is refused with an error naming the file and what was found.
public struct ONNXFile: Sendable {
    /// One operator application.
    public struct Node: Sendable {
        public var op: String
        public var inputs: [String]
        public var outputs: [String]
        public var attributes: [String: Attribute]
    }

    /// An attribute's value (the kinds image networks use).
    public enum Attribute: Sendable, Equatable {
        case int(Int), float(Float), string(String), ints([Int]), floats([Float])
        public var int: Int? { if case .int(let v) = self { return v }; return nil }
        public var ints: [Int]? { if case .ints(let v) = self { return v }; return nil }
        public var string: String? { if case .string(let v) = self { return v }; return nil }
    }

    /// A constant tensor: float32 values, or int64 values kept as `Int`.
    public struct Initializer: Sendable {
        public var dims: [Int]
        public var floats: [Float]
        public var ints: [Int]
        public var count: Int { dims.reduce(1, *) }
    }

    public var path: String
    public var opsetVersion: Int
    public var producer: String
    public var nodes: [Node]
    public var initializers: [String: Initializer]
    /// The graph's inputs that are not initialisers, with their declared shapes (0: not fixed).
    public var inputs: [(name: String, shape: [Int])]
    public var outputs: [String]

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ONNXError(path, "the file does not exist") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ONNXError(path, "the file cannot be read") }
        try self.init(bytes: [UInt8](data), path: path)
    }

    public init(bytes: [UInt8], path: String = "<memory>") throws {
        self.path = path
        var opset = 0, producer = "", graph: ArraySlice<UInt8>? = nil
        do {
            var r = ProtoReader(bytes[...])
            while let (field, value) = try r.next() {
                switch (field, value) {
                case (2, .bytes(let b)): producer = String(decoding: b, as: UTF8.self)
                case (7, .bytes(let b)): graph = b
                case (8, .bytes(let b)):   // OperatorSetIdProto: domain 1, version 2
                    var o = ProtoReader(b); var domain = "", version = 0
                    while let (f, v) = try o.next() {
                        if f == 1, case .bytes(let d) = v { domain = String(decoding: d, as: UTF8.self) }
                        if f == 2, case .varint(let n) = v { version = Int(truncatingIfNeeded: n) }
                    }
                    if domain.isEmpty || domain == "ai.onnx" { opset = version }
                default: break
                }
            }
        } catch let e as ProtoError { throw ONNXError(path, "not an ONNX model: \(e.reason)") }
        guard let graph else { throw ONNXError(path, "not an ONNX model: it holds no graph") }
        opsetVersion = opset; self.producer = producer
        nodes = []; initializers = [:]; inputs = []; outputs = []
        do {
            var declared: [(String, [Int])] = []
            var r = ProtoReader(graph)
            while let (field, value) = try r.next() {
                guard case .bytes(let b) = value else { continue }
                switch field {
                case 1: nodes.append(try ONNXFile.node(b))
                case 5: let (name, t) = try ONNXFile.tensor(b, path: path); initializers[name] = t
                case 11: declared.append(try ONNXFile.valueInfo(b))
                case 12: outputs.append(try ONNXFile.valueInfo(b).0)
                default: break
                }
            }
            inputs = declared.filter { initializers[$0.0] == nil }.map { (name: $0.0, shape: $0.1) }
        } catch let e as ProtoError { throw ONNXError(path, "the graph is damaged: \(e.reason)") }
        guard !nodes.isEmpty, !inputs.isEmpty, !outputs.isEmpty else {
            throw ONNXError(path, "the graph has \(nodes.count) nodes, \(inputs.count) inputs and \(outputs.count) outputs")
        }
    }

    private static func node(_ b: ArraySlice<UInt8>) throws -> Node {
        var n = Node(op: "", inputs: [], outputs: [], attributes: [:])
        var r = ProtoReader(b)
        while let (field, value) = try r.next() {
            guard case .bytes(let s) = value else { continue }
            switch field {
            case 1: n.inputs.append(String(decoding: s, as: UTF8.self))
            case 2: n.outputs.append(String(decoding: s, as: UTF8.self))
            case 4: n.op = String(decoding: s, as: UTF8.self)
            case 5: let (name, a) = try attribute(s); if let a { n.attributes[name] = a }
            default: break
            }
        }
        return n
    }

    private static func attribute(_ b: ArraySlice<UInt8>) throws -> (String, Attribute?) {
        var name = "", value: Attribute? = nil, ints: [Int] = [], floats: [Float] = []
        var r = ProtoReader(b)
        while let (field, v) = try r.next() {
            switch (field, v) {
            case (1, .bytes(let s)): name = String(decoding: s, as: UTF8.self)
            case (2, .fixed32(let f)): value = .float(Float(bitPattern: f))
            case (3, .varint(let i)): value = .int(Int(Int64(bitPattern: i)))
            case (4, .bytes(let s)): value = .string(String(decoding: s, as: UTF8.self))
            case (7, .fixed32(let f)): floats.append(Float(bitPattern: f))
            case (7, .bytes(let s)): floats += try ProtoReader.packedFloats(s)
            case (8, .varint(let i)): ints.append(Int(Int64(bitPattern: i)))
            case (8, .bytes(let s)): ints += try ProtoReader.packedVarints(s)
            default: break
            }
        }
        if !ints.isEmpty { value = .ints(ints) } else if !floats.isEmpty { value = .floats(floats) }
        return (name, value)
    }

    private static func tensor(_ b: ArraySlice<UInt8>, path: String) throws -> (String, Initializer) {
        var name = "", dims: [Int] = [], type = 0, raw: ArraySlice<UInt8>? = nil
        var floats: [Float] = [], ints: [Int] = [], external = false
        var r = ProtoReader(b)
        while let (field, v) = try r.next() {
            switch (field, v) {
            case (1, .varint(let d)): dims.append(Int(Int64(bitPattern: d)))
            case (1, .bytes(let s)): dims += try ProtoReader.packedVarints(s)
            case (2, .varint(let t)): type = Int(t)
            case (4, .bytes(let s)): floats += try ProtoReader.packedFloats(s)
            case (4, .fixed32(let f)): floats.append(Float(bitPattern: f))
            case (7, .bytes(let s)): ints += try ProtoReader.packedVarints(s)
            case (7, .varint(let i)): ints.append(Int(Int64(bitPattern: i)))
            case (8, .bytes(let s)): name = String(decoding: s, as: UTF8.self)
            case (9, .bytes(let s)): raw = s
            case (14, .varint(let l)): external = l == 1
            default: break
            }
        }
        let what = "initializer \(name.isEmpty ? "(unnamed)" : name)"
        guard !external else { throw ONNXError(path, "\(what) keeps its data in another file, which is not supported") }
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 28 }) else { throw ONNXError(path, "\(what) has dimensions \(dims)") }
        let count = dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count < 1 << 28 else { throw ONNXError(path, "\(what) has dimensions \(dims)") }
        switch type {
        case 1:   // FLOAT
            if let raw {
                guard raw.count == count * 4 else { throw ONNXError(path, "\(what) holds \(raw.count) bytes for \(count) floats") }
                floats = ProtoReader.littleEndianFloats(raw)
            }
            guard floats.count == count else { throw ONNXError(path, "\(what) holds \(floats.count) floats for dimensions \(dims)") }
        case 7:   // INT64
            if let raw {
                guard raw.count == count * 8 else { throw ONNXError(path, "\(what) holds \(raw.count) bytes for \(count) int64 values") }
                ints = stride(from: raw.startIndex, to: raw.endIndex, by: 8).map { i in
                    var v: UInt64 = 0
                    for k in 0..<8 { v |= UInt64(raw[i + k]) << (8 * UInt64(k)) }
                    return Int(Int64(bitPattern: v))
                }
            }
            guard ints.count == count else { throw ONNXError(path, "\(what) holds \(ints.count) values for dimensions \(dims)") }
        default:
            throw ONNXError(path, "\(what) has element type \(type); only float32 (1) and int64 (7) are supported")
        }
        return (name, Initializer(dims: dims, floats: floats, ints: ints))
    }

    /// A ValueInfoProto's name and tensor shape (0 where a dimension is not a fixed number).
    private static func valueInfo(_ b: ArraySlice<UInt8>) throws -> (String, [Int]) {
        var name = "", shape: [Int] = []
        var r = ProtoReader(b)
        while let (field, v) = try r.next() {
            guard case .bytes(let s) = v else { continue }
            if field == 1 { name = String(decoding: s, as: UTF8.self) }
            if field == 2 {   // TypeProto.tensor_type (1) -> shape (2) -> dim (1) -> dim_value (1)
                var t = ProtoReader(s)
                while let (f, tv) = try t.next() {
                    guard f == 1, case .bytes(let tt) = tv else { continue }
                    var tensorType = ProtoReader(tt)
                    while let (f2, sv) = try tensorType.next() {
                        guard f2 == 2, case .bytes(let sh) = sv else { continue }
                        var dims = ProtoReader(sh)
                        while let (f3, dv) = try dims.next() {
                            guard f3 == 1, case .bytes(let dim) = dv else { continue }
                            var d = ProtoReader(dim); var value = 0
                            while let (f4, x) = try d.next() { if f4 == 1, case .varint(let n) = x { value = Int(Int64(bitPattern: n)) } }
                            shape.append(value)
                        }
                    }
                }
            }
        }
        return (name, shape)
    }
}

/// Why an ONNX file could not be used; names the file.
public struct ONNXError: Error, CustomStringConvertible, Equatable {
    public let path: String, reason: String
    public init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}

struct ProtoError: Error { let reason: String }

/// Protocol Buffers' wire format, read field by field over a byte slice; every length checked.
struct ProtoReader {
    enum Value { case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt32) }
    private var bytes: ArraySlice<UInt8>
    private var at: Int
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; at = bytes.startIndex }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard at < bytes.endIndex else { throw ProtoError(reason: "a number runs past the end") }
            let b = bytes[at]; at += 1
            guard shift < 64 else { throw ProtoError(reason: "a number is longer than 10 bytes") }
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// The next field number and value, or nil at the end.
    mutating func next() throws -> (Int, Value)? {
        guard at < bytes.endIndex else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        guard field > 0 else { throw ProtoError(reason: "field number 0") }
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1:
            guard bytes.endIndex - at >= 8 else { throw ProtoError(reason: "a 64-bit field runs past the end") }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
            at += 8; return (field, .fixed64(v))
        case 2:
            let n = try varint()
            guard n <= UInt64(bytes.endIndex - at) else { throw ProtoError(reason: "field \(field) claims \(n) bytes, \(bytes.endIndex - at) are left") }
            let s = bytes[at..<(at + Int(n))]; at += Int(n)
            return (field, .bytes(s))
        case 5:
            guard bytes.endIndex - at >= 4 else { throw ProtoError(reason: "a 32-bit field runs past the end") }
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(bytes[at + k]) << (8 * UInt32(k)) }
            at += 4; return (field, .fixed32(v))
        default: throw ProtoError(reason: "wire type \(key & 7) of field \(field) is not known")
        }
    }

    static func packedVarints(_ s: ArraySlice<UInt8>) throws -> [Int] {
        var r = ProtoReader(s), out: [Int] = []
        while r.at < s.endIndex { out.append(Int(Int64(bitPattern: try r.varint()))) }
        return out
    }

    static func packedFloats(_ s: ArraySlice<UInt8>) throws -> [Float] {
        guard s.count % 4 == 0 else { throw ProtoError(reason: "packed floats of \(s.count) bytes") }
        return littleEndianFloats(s)
    }

    static func littleEndianFloats(_ s: ArraySlice<UInt8>) -> [Float] {
        stride(from: s.startIndex, to: s.endIndex, by: 4).map { i in
            Float(bitPattern: UInt32(s[i]) | UInt32(s[i + 1]) << 8 | UInt32(s[i + 2]) << 16 | UInt32(s[i + 3]) << 24)
        }
    }
}
