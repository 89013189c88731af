import FaceAnalysis
import Foundation

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
    public static let maxCoordinate = EmotionFace.maxCoordinate, maxLabels = EmotionFace.maxLabels
    /// A time code is at most this long and made of digits and the separators ":;.,".
    public static let maxTimecodeLength = 32

    public static func encode(_ faces: [EmotionFace], probabilities: Bool = true, timecode: String? = nil) -> [UInt8] {
        var s = "{\"v\":\(version),"
        if let timecode, isTimecode(timecode) { s += "\"timecode\":\(quoted(timecode))," }
        s += "\"faces\":["
        for (k, f) in faces.enumerated() {
            if k > 0 { s += "," }
            var w = CompactJSONWriter()
            f.write(to: &w, probabilities: probabilities)
            s += w.text + "}"
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
            do { return try EmotionFace(reading: JSONObjectReader(f)) } catch let e as FaceFieldError {
                throw EmotionPayloadError.malformed("face \(k): \(e)")
            }
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

/// Writes a face's fields as the payload's compact JSON: "{" and the fields, numbers with three
/// decimals (the caller closes the object).
struct CompactJSONWriter: FaceFieldWriter {
    var text = "{"
    private var first = true
    private mutating func key(_ k: String) { text += (first ? "" : ",") + EmotionPayload.quoted(k) + ":"; first = false }
    mutating func coordinate(_ k: String, _ v: Int) { key(k); text += String(v) }
    mutating func integer(_ k: String, _ v: Int) { key(k); text += String(v) }
    mutating func number(_ k: String, _ v: Double) { key(k); text += EmotionPayload.decimal3(v) }
    mutating func text(_ k: String, _ v: String) { key(k); text += EmotionPayload.quoted(v) }
    mutating func numbers(_ k: String, _ v: [Double]) { key(k); text += "[" + v.map(EmotionPayload.decimal3).joined(separator: ",") + "]" }
}
