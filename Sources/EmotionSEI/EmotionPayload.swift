import Foundation

/// One face of a frame as ferfilter reports it (its ROI meta, its bus message, its SEI).
public struct EmotionFace: Sendable, Equatable {
    /// The track id: the same while the face stays in view.
    public var id: Int
    public var x: Int, y: Int, width: Int, height: Int
    public var emotion: String
    /// The emotion's index in the model's labels.
    public var labelID: Int
    public var confidence: Double
    /// The model's probabilities in label order; empty when the sender left them out.
    public var probabilities: [Double]

    public init(id: Int, x: Int, y: Int, width: Int, height: Int, emotion: String, labelID: Int, confidence: Double,
                probabilities: [Double]) {
        self.id = id; self.x = x; self.y = y; self.width = width; self.height = height
        self.emotion = emotion; self.labelID = labelID; self.confidence = confidence; self.probabilities = probabilities
    }
}

public enum EmotionPayloadError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self { case .malformed(let why): return "malformed emotion SEI payload: \(why)" }
    }
}

/// The faces of one frame as the data of a SEI user-data-unregistered message: compact JSON, in
/// UTF-8, after GstFER's UUID. Numbers carry three decimals.
///
///     {"v":1,"faces":[{"id":3,"x":380,"y":272,"width":140,"height":140,"emotion":"happy",
///      "label_id":3,"confidence":0.912,"probabilities":[0.004,0,0.011,0.912,0.02,0.013,0.04]}]}
public enum EmotionPayload {
    /// 7f6c7dbb-35f9-4a3c-b12a-b04214b4745b: GstFER's emotion metadata.
    public static let uuid: [UInt8] = [0x7f, 0x6c, 0x7d, 0xbb, 0x35, 0xf9, 0x4a, 0x3c,
                                       0xb1, 0x2a, 0xb0, 0x42, 0x14, 0xb4, 0x74, 0x5b]
    public static let version = 1
    /// Bounds on what is read from a stream: coordinates (a frame up to 65,536 pixels wide) and labels.
    public static let maxCoordinate = 1 << 16, maxLabels = 64

    public static func encode(_ faces: [EmotionFace], probabilities: Bool = true) -> [UInt8] {
        var s = "{\"v\":\(version),\"faces\":["
        for (k, f) in faces.enumerated() {
            if k > 0 { s += "," }
            s += "{\"id\":\(f.id),\"x\":\(f.x),\"y\":\(f.y),\"width\":\(f.width),\"height\":\(f.height),"
            s += "\"emotion\":\(quoted(f.emotion)),\"label_id\":\(f.labelID),\"confidence\":\(decimal3(f.confidence))"
            if probabilities && !f.probabilities.isEmpty {
                s += ",\"probabilities\":[" + f.probabilities.map(decimal3).joined(separator: ",") + "]"
            }
            s += "}"
        }
        s += "]}"
        return Array(s.utf8)
    }

    public static func decode(_ data: [UInt8]) throws -> [EmotionFace] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(data)) } catch {
            throw EmotionPayloadError.malformed("not JSON (\(data.count) bytes)")
        }
        guard let root = object as? [String: Any] else { throw EmotionPayloadError.malformed("not a JSON object") }
        guard let v = root["v"] as? Int else { throw EmotionPayloadError.malformed("no version \"v\"") }
        guard v == version else { throw EmotionPayloadError.malformed("version \(v); this build reads version \(version)") }
        guard let list = root["faces"] as? [[String: Any]] else { throw EmotionPayloadError.malformed("no \"faces\" list") }
        return try list.enumerated().map { k, f in
            func int(_ key: String) throws -> Int {
                guard let n = f[key] as? NSNumber, let i = Int(exactly: n.doubleValue) else {
                    throw EmotionPayloadError.malformed("face \(k): \"\(key)\" is not an integer")
                }
                return i
            }
            func number(_ key: String) throws -> Double {
                guard let n = f[key] as? NSNumber, n.doubleValue.isFinite else {
                    throw EmotionPayloadError.malformed("face \(k): \"\(key)\" is not a number")
                }
                return n.doubleValue
            }
            guard let emotion = f["emotion"] as? String else { throw EmotionPayloadError.malformed("face \(k): no \"emotion\"") }
            var probabilities: [Double] = []
            if let p = f["probabilities"] {
                guard let a = p as? [NSNumber] else { throw EmotionPayloadError.malformed("face \(k): \"probabilities\" is not a list of numbers") }
                probabilities = a.map(\.doubleValue)
            }
            let face = EmotionFace(id: try int("id"), x: try int("x"), y: try int("y"), width: try int("width"),
                                   height: try int("height"), emotion: emotion, labelID: try int("label_id"),
                                   confidence: try number("confidence"), probabilities: probabilities)
            guard face.x >= 0, face.y >= 0, face.width > 0, face.height > 0, face.labelID >= 0 else {
                throw EmotionPayloadError.malformed("face \(k): negative or empty box, or negative label_id")
            }
            guard [face.x, face.y, face.width, face.height].allSatisfy({ $0 <= maxCoordinate }), face.labelID <= maxLabels else {
                throw EmotionPayloadError.malformed("face \(k): box beyond \(maxCoordinate) pixels or label_id beyond \(maxLabels)")
            }
            guard (0...1).contains(face.confidence), face.probabilities.count <= maxLabels,
                  face.probabilities.allSatisfy({ (0...1).contains($0) }) else {
                throw EmotionPayloadError.malformed("face \(k): a confidence or probability outside 0-1, or over \(maxLabels) probabilities")
            }
            return face
        }
    }

    /// `v` rounded to three decimals, without trailing zeros ("0.5", "1", "0.012").
    static func decimal3(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let m = Int((abs(v) * 1000).rounded())
        var s = (v < 0 && m > 0 ? "-" : "") + String(m / 1000)
        var frac = m % 1000
        if frac > 0 {
            var digits = 3
            while frac % 10 == 0 { frac /= 10; digits -= 1 }
            let f = String(frac)
            s += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return s
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
