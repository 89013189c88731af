import Foundation

/// One face in a frame and what the model says of it (smoothed over its track), as the analysis
/// gives it: a track id, a box clipped to the frame, probabilities in the model's label order.
public struct FaceResult: Sendable, Equatable {
    /// The track id: the same while the face stays in view.
    public var id: Int
    public var x: Int, y: Int, width: Int, height: Int
    public var probabilities: [Float]
    public var labelIndex: Int
    /// Five points (x, y pairs, frame pixels) where the detector gives them: see `EmotionFace.landmarks`.
    public var landmarks: [Double]
    public var confidence: Float { probabilities.isEmpty ? 0 : probabilities[labelIndex] }

    public init(id: Int, x: Int, y: Int, width: Int, height: Int, probabilities: [Float], labelIndex: Int, landmarks: [Double] = []) {
        self.id = id; self.x = x; self.y = y; self.width = width; self.height = height
        self.probabilities = probabilities; self.labelIndex = labelIndex; self.landmarks = landmarks
    }

    /// The face as it is reported (ROI meta, bus message, results line, SEI, web API).
    public func reported(labels: [String]) -> EmotionFace {
        EmotionFace(id: id, x: x, y: y, width: width, height: height,
                    emotion: labelIndex < labels.count ? labels[labelIndex] : "\(labelIndex)", labelID: labelIndex,
                    confidence: Double(confidence), probabilities: probabilities.map(Double.init),
                    landmarks: landmarks.map { ($0 * 10).rounded() / 10 })
    }
}

/// One face of a frame as GstFER reports it everywhere: ferfilter's ROI meta and bus message, the
/// `results` JSON Lines, the emotion SEI payload, `fer serve`'s API. Written and read through one
/// codec (`write(to:)`, `init(reading:)`), so that every format has the same fields.
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
    /// Five landmarks as x, y pairs in frame pixels (to 0.1 px): the person's right eye, left
    /// eye, nose tip, right and left mouth corners. Empty where the detector gives none (Haar) or
    /// the sender left them out.
    public var landmarks: [Double]

    public init(id: Int, x: Int, y: Int, width: Int, height: Int, emotion: String, labelID: Int, confidence: Double,
                probabilities: [Double], landmarks: [Double] = []) {
        self.id = id; self.x = x; self.y = y; self.width = width; self.height = height
        self.emotion = emotion; self.labelID = labelID; self.confidence = confidence; self.probabilities = probabilities
        self.landmarks = landmarks
    }

    /// Bounds on a face read from elsewhere (a stream, a foreign meta): coordinates (a frame up
    /// to 65,536 pixels wide) and labels.
    public static let maxCoordinate = 1 << 16, maxLabels = 64, maxLandmarks = 68
}

// MARK: the codec

/// A field's value as a format holds it.
public enum FaceFieldValue {
    case integer(Int), number(Double), text(String), numbers([Double]), other
}

/// A format faces are written to (a GstStructure, a JSON object, the SEI's compact JSON).
public protocol FaceFieldWriter {
    /// A box coordinate or size (never negative).
    mutating func coordinate(_ key: String, _ value: Int)
    mutating func integer(_ key: String, _ value: Int)
    mutating func number(_ key: String, _ value: Double)
    mutating func text(_ key: String, _ value: String)
    mutating func numbers(_ key: String, _ value: [Double])
}

/// A format faces are read from: the value of a field, nil when it is absent.
public protocol FaceFieldReader {
    func value(_ key: String) -> FaceFieldValue?
}

/// Why a face could not be read: what is wrong, naming the field.
public struct FaceFieldError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension EmotionFace {
    /// The field names, in the order they are written.
    public enum Key {
        public static let id = "id", x = "x", y = "y", width = "width", height = "height", emotion = "emotion",
                          labelID = "label_id", confidence = "confidence", probabilities = "probabilities", landmarks = "landmarks"
    }

    /// Writes id, x, y, width, height, emotion, label_id, confidence, (when there are any and
    /// `probabilities` is true) probabilities, and (when there are any) landmarks.
    public func write<W: FaceFieldWriter>(to w: inout W, probabilities withProbabilities: Bool = true) {
        w.integer(Key.id, id)
        w.coordinate(Key.x, x); w.coordinate(Key.y, y); w.coordinate(Key.width, width); w.coordinate(Key.height, height)
        w.text(Key.emotion, emotion)
        w.integer(Key.labelID, labelID)
        w.number(Key.confidence, confidence)
        if withProbabilities && !probabilities.isEmpty { w.numbers(Key.probabilities, probabilities) }
        if !landmarks.isEmpty { w.numbers(Key.landmarks, landmarks) }
    }

    /// Reads a face back, checking every field: an id, a box, an emotion, a label id and a
    /// confidence (probabilities may be absent); with `validate`, in bounds (box within
    /// `maxCoordinate`, label id within `maxLabels`, confidence and probabilities in 0-1).
    public init<R: FaceFieldReader>(reading r: R, validate: Bool = true) throws {
        func integer(_ key: String) throws -> Int {
            switch r.value(key) {
            case .integer(let i)?: return i
            case .number(let n)?: if let i = Int(exactly: n) { return i }
            default: break
            }
            throw FaceFieldError("\"\(key)\" is not an integer")
        }
        func number(_ key: String) throws -> Double {
            switch r.value(key) {
            case .number(let n)? where n.isFinite: return n
            case .integer(let i)?: return Double(i)
            default: throw FaceFieldError("\"\(key)\" is not a number")
            }
        }
        guard case .text(let emotion)? = r.value(Key.emotion) else { throw FaceFieldError("no \"\(Key.emotion)\"") }
        var probabilities: [Double] = []
        switch r.value(Key.probabilities) {
        case nil: break
        case .numbers(let p)?: probabilities = p
        default: throw FaceFieldError("\"\(Key.probabilities)\" is not a list of numbers")
        }
        var landmarks: [Double] = []
        switch r.value(Key.landmarks) {
        case nil: break
        case .numbers(let p)?: landmarks = p
        default: throw FaceFieldError("\"\(Key.landmarks)\" is not a list of numbers")
        }
        self.init(id: try integer(Key.id), x: try integer(Key.x), y: try integer(Key.y), width: try integer(Key.width),
                  height: try integer(Key.height), emotion: emotion, labelID: try integer(Key.labelID),
                  confidence: try number(Key.confidence), probabilities: probabilities, landmarks: landmarks)
        guard validate else { return }
        guard x >= 0, y >= 0, width > 0, height > 0, labelID >= 0 else {
            throw FaceFieldError("negative or empty box, or negative label_id")
        }
        guard [x, y, width, height].allSatisfy({ $0 <= EmotionFace.maxCoordinate }), labelID <= EmotionFace.maxLabels else {
            throw FaceFieldError("box beyond \(EmotionFace.maxCoordinate) pixels or label_id beyond \(EmotionFace.maxLabels)")
        }
        guard (0...1).contains(confidence), probabilities.count <= EmotionFace.maxLabels,
              probabilities.allSatisfy({ (0...1).contains($0) }) else {
            throw FaceFieldError("a confidence or probability outside 0-1, or over \(EmotionFace.maxLabels) probabilities")
        }
        guard landmarks.count <= 2 * EmotionFace.maxLandmarks, landmarks.count % 2 == 0,
              landmarks.allSatisfy({ $0.isFinite && abs($0) <= Double(EmotionFace.maxCoordinate) }) else {
            throw FaceFieldError("\"\(Key.landmarks)\" is not up to \(EmotionFace.maxLandmarks) x, y pairs within \(EmotionFace.maxCoordinate) pixels")
        }
    }

    /// The face as a JSON object (the `results` line's and the message's fields).
    public func jsonObject(probabilities: Bool = true) -> [String: Any] {
        var w = JSONObjectWriter()
        write(to: &w, probabilities: probabilities)
        return w.object
    }
}

/// Writes a face's fields into a JSON object (for JSONSerialization).
public struct JSONObjectWriter: FaceFieldWriter {
    public var object: [String: Any] = [:]
    public init() {}
    public mutating func coordinate(_ key: String, _ value: Int) { object[key] = value }
    public mutating func integer(_ key: String, _ value: Int) { object[key] = value }
    public mutating func number(_ key: String, _ value: Double) { object[key] = value }
    public mutating func text(_ key: String, _ value: String) { object[key] = value }
    public mutating func numbers(_ key: String, _ value: [Double]) { object[key] = value }
}

/// Reads a face's fields from a JSON object that JSONSerialization parsed.
public struct JSONObjectReader: FaceFieldReader {
    public let object: [String: Any]
    public init(_ object: [String: Any]) { self.object = object }
    public func value(_ key: String) -> FaceFieldValue? {
        guard let v = object[key] else { return nil }
        if let s = v as? String { return .text(s) }
        if let n = v as? NSNumber { return .number(n.doubleValue) }
        if let a = v as? [NSNumber] { return .numbers(a.map(\.doubleValue)) }
        return .other
    }
}
