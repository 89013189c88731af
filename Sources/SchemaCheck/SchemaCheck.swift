import Foundation

/// A JSON value as read for checking: integers apart from other numbers, booleans apart from both.
public indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = d.rounded() == d && abs(d) < 9e15 ? .integer(Int64(d)) : .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// Reads one JSON text.
    public static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }
    public static func parse(_ text: String) throws -> JSONValue { try parse(Data(text.utf8)) }

    var typeName: String {
        switch self {
        case .null: return "null"; case .bool: return "boolean"; case .integer: return "integer"; case .number: return "number"
        case .string: return "string"; case .array: return "array"; case .object: return "object"
        }
    }
    var numeric: Double? {
        switch self { case .integer(let i): return Double(i); case .number(let d): return d; default: return nil }
    }
    public var description: String {
        switch self {
        case .null: return "null"; case .bool(let b): return "\(b)"; case .integer(let i): return "\(i)"; case .number(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""; case .array(let a): return "[\(a.count) items]"; case .object(let o): return "{\(o.count) fields}"
        }
    }
}

/// Checks JSON against the schemas in a folder (JSON Schema 2020-12, the part GstFER's schemas
/// use: type, properties, required, additionalProperties, items, enum, const, minimum, maximum,
/// minItems, maxItems, minLength, and $ref to another file of the folder or to its own `$defs`).
/// A keyword outside that part is reported, so a schema never relies on one that is not checked.
public struct SchemaCheck {
    public let folder: URL
    public init(folder: URL) { self.folder = folder }

    /// What is wrong with `instance` by schema file `name` (empty: nothing), each with its place
    /// in the instance ("$.faces[0].x: ...").
    public func problems(_ instance: JSONValue, schema name: String) throws -> [String] {
        let root = try load(name)
        var out: [String] = []
        try check(instance, root, file: name, root: root, at: "$", &out)
        return out
    }

    /// `problems` for a JSON text.
    public func problems(json text: String, schema name: String) throws -> [String] {
        try problems(JSONValue.parse(text), schema: name)
    }

    func load(_ name: String) throws -> JSONValue {
        try JSONValue.parse(Data(contentsOf: folder.appendingPathComponent(name)))
    }

    static let known: Set<String> = ["$schema", "$id", "title", "description", "$defs", "type", "properties", "required",
                                     "additionalProperties", "items", "enum", "const", "minimum", "maximum", "minItems",
                                     "maxItems", "minLength", "$ref"]

    func check(_ v: JSONValue, _ schema: JSONValue, file: String, root: JSONValue, at path: String, _ out: inout [String]) throws {
        guard case .object(let s) = schema else { throw SchemaError("\(file): a schema at \(path) is not an object") }
        for k in s.keys where !SchemaCheck.known.contains(k) { throw SchemaError("\(file): keyword \(k) is not checked by SchemaCheck") }
        if case .string(let ref)? = s["$ref"] {
            let parts = ref.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let target = parts[0].isEmpty ? file : parts[0]
            let targetRoot = parts[0].isEmpty ? root : try load(target)
            var node = targetRoot
            if parts.count == 2 && !parts[1].isEmpty {
                for key in parts[1].split(separator: "/") where !key.isEmpty {
                    guard case .object(let o) = node, let next = o[String(key)] else { throw SchemaError("\(file): $ref \(ref) leads nowhere") }
                    node = next
                }
            }
            try check(v, node, file: target, root: targetRoot, at: path, &out)
        }
        if let t = s["type"] {
            let allowed: [String]
            switch t { case .string(let one): allowed = [one]; case .array(let many): allowed = many.compactMap { if case .string(let x) = $0 { return x } else { return nil } }
            default: throw SchemaError("\(file): type at \(path)") }
            let actual = v.typeName
            if !(allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))) {
                out.append("\(path): \(v) is \(actual), not \(allowed.joined(separator: " or "))"); return
            }
        }
        if case .array(let options)? = s["enum"], !options.contains(v) { out.append("\(path): \(v) is none of \(options)") }
        if let c = s["const"], c != v { out.append("\(path): \(v) is not \(c)") }
        if let x = v.numeric {
            if let m = s["minimum"]?.numeric, x < m { out.append("\(path): \(v) is below \(m)") }
            if let m = s["maximum"]?.numeric, x > m { out.append("\(path): \(v) is above \(m)") }
        }
        if case .string(let str) = v, let m = s["minLength"]?.numeric, Double(str.count) < m { out.append("\(path): shorter than \(Int(m))") }
        if case .array(let items) = v {
            if let m = s["minItems"]?.numeric, Double(items.count) < m { out.append("\(path): \(items.count) items, fewer than \(Int(m))") }
            if let m = s["maxItems"]?.numeric, Double(items.count) > m { out.append("\(path): \(items.count) items, more than \(Int(m))") }
            if let item = s["items"] {
                for (i, e) in items.enumerated() { try check(e, item, file: file, root: root, at: "\(path)[\(i)]", &out) }
            }
        }
        if case .object(let fields) = v {
            if case .array(let req)? = s["required"] {
                for case .string(let k) in req where fields[k] == nil { out.append("\(path): no \"\(k)\"") }
            }
            var props: [String: JSONValue] = [:]
            if case .object(let p)? = s["properties"] { props = p }
            for (k, value) in fields.sorted(by: { $0.key < $1.key }) {
                if let p = props[k] { try check(value, p, file: file, root: root, at: "\(path).\(k)", &out); continue }
                switch s["additionalProperties"] {
                case .bool(false)?: out.append("\(path): \"\(k)\" is not in the schema")
                case .object?: try check(value, s["additionalProperties"]!, file: file, root: root, at: "\(path).\(k)", &out)
                default: break
                }
            }
        }
    }
}

public struct SchemaError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
