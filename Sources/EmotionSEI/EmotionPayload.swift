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

/// What one frame's emotion SEI holds: its faces and, when the sender's frame had one, its SMPTE
/// time code.
public struct EmotionFrame: Sendable, Equatable {
    public var faces: [EmotionFace]
    /// "10:00:00:12" (";" before the frames when drop-frame), as GStreamer writes a time code.
    public var timecode: String?
    public init(faces: [EmotionFace], timecode: String? = nil) { self.faces = faces; self.timecode = timecode }
}

/// The faces of one frame as the data of a SEI user-data-unregistered message: compact JSON, in
/// UTF-8, after GstFER's UUID. Numbers carry three decimals. `timecode` is there only when the
/// sender's frame had one (readers of the first payloads, without it, read these unchanged).
///
///     {"v":1,"timecode":"10:00:00:12","faces":[{"id":3,"x":380,"y":272,"width":140,"height":140,
///      "emotion":"happy","label_id":3,"confidence":0.912,"probabilities":[0.004,0,0.011,0.912,0.02,0.013,0.04]}]}
public enum EmotionPayload {
    /// 7f6c7dbb-35f9-4a3c-b12a-b04214b4745b: GstFER's emotion metadata.
    public static let uuid: [UInt8] = [0x7f, 0x6c, 0x7d, 0xbb, 0x35, 0xf9, 0x4a, 0x3c,
                                       0xb1, 0x2a, 0xb0, 0x42, 0x14, 0xb4, 0x74, 0x5b]
    public static let version = 1
    /// Bounds on what is read from a stream: coordinates (a frame up to 65,536 pixels wide) and labels.
    public static let maxCoordinate = 1 << 16, maxLabels = 64
    /// A time code is at most this long and made of digits and the separators ":;.,".
    public static let maxTimecodeLength = 32

    public static func encode(_ faces: [EmotionFace], probabilities: Bool = true, timecode: String? = nil) -> [UInt8] {
        var s = "{\"v\":\(version),"
        if let timecode, isTimecode(timecode) { s += "\"timecode\":\(quoted(timecode))," }
        s += "\"faces\":["
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

    /// The faces alone (see `decodeFrame`).
    public static func decode(_ data: [UInt8]) throws -> [EmotionFace] { try decodeFrame(data).faces }

    /// Whether `s` looks like a time code: 1-32 characters, digits and ":;.," only.
    static func isTimecode(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= maxTimecodeLength && s.utf8.allSatisfy { (0x30...0x39).contains($0) || ":;.,".utf8.contains($0) }
    }

    /// A payload read back; a malformed one (not JSON, another version, a face without its fields or
    /// out of bounds, a time code that is not one) throws, saying what is wrong.
    public static func decodeFrame(_ data: [UInt8]) throws -> EmotionFrame {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(data)) } catch {
            throw EmotionPayloadError.malformed("not JSON (\(data.count) bytes)")
        }
        guard let root = object as? [String: Any] else { throw EmotionPayloadError.malformed("not a JSON object") }
        guard let v = root["v"] as? Int else { throw EmotionPayloadError.malformed("no version \"v\"") }
        guard v == version else { throw EmotionPayloadError.malformed("version \(v); this build reads version \(version)") }
        guard let list = root["faces"] as? [[String: Any]] else { throw EmotionPayloadError.malformed("no \"faces\" list") }
        var timecode: String? = nil
        if let tc = root["timecode"] {
            guard let text = tc as? String, isTimecode(text) else {
                throw EmotionPayloadError.malformed("\"timecode\" is not a time code (digits and :;., up to \(maxTimecodeLength) characters)")
            }
            timecode = text
        }
        let faces: [EmotionFace] = try list.enumerated().map { k, f in
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
        return EmotionFrame(faces: faces, timecode: timecode)
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
