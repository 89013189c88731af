import FaceDetect
import FERNet
import Foundation

/// What `POST /api/v1/analyze` answers.
public struct AnalysisResult: Codable, Sendable {
    public var width: Int
    public var height: Int
    public var faces: [FaceReading]
    public var elapsedMs: Double

    enum CodingKeys: String, CodingKey { case width, height, faces, elapsedMs = "elapsed_ms" }
}

/// Why an image could not be analysed, with the HTTP status it deserves.
public enum AnalysisError: Error, CustomStringConvertible {
    case notAnImage(String), unsupported(String), tooLarge(String), busy

    public var status: Int {
        switch self { case .notAnImage: return 400; case .unsupported: return 415; case .tooLarge: return 413; case .busy: return 503 }
    }

    public var description: String {
        switch self {
        case .notAnImage(let s), .unsupported(let s), .tooLarge(let s): return s
        case .busy: return "too many images waiting to be analysed; try again shortly"
        }
    }
}

/// Finds the faces in a still picture and reads their expressions, the way ferfilter does for a
/// frame (the same cascade, crop and model), without tracking or smoothing.
/// Pictures are analysed one at a time on a queue of their own, at most `maxWaiting` queued.
public final class ImageAnalyzer: @unchecked Sendable {
    public let model: FacialExpressionModel
    public let cascade: HaarCascade
    public let maxPixels: Int
    public let maxWaiting: Int
    public let flipTTA: Bool
    private let queue = DispatchQueue(label: "gstfer.analyzer")
    private let lock = NSLock()
    private var waiting = 0

    public init(model: FacialExpressionModel, cascade: HaarCascade, maxPixels: Int = 40_000_000, maxWaiting: Int = 8, flipTTA: Bool = false) {
        self.model = model; self.cascade = cascade; self.maxPixels = maxPixels; self.maxWaiting = maxWaiting; self.flipTTA = flipTTA
    }

    /// Decodes an uploaded JPEG, PNG or PGM picture; what goes wrong is an `AnalysisError`, with
    /// the HTTP status it deserves (413 over `maxPixels`, 415 no known format, 400 damaged).
    static func decode(_ bytes: [UInt8], name: String, maxPixels: Int) throws -> Image {
        do {
            return try ImageCodec.decode(bytes, name: name, maxPixels: maxPixels)
        } catch let e as ImageError {
            switch e {
            case .unsupported(_, let why) where why.contains("pixels"): throw AnalysisError.tooLarge("image too large: \(e)")
            case .unsupported: throw AnalysisError.unsupported("\(e)")
            case .corrupt: throw AnalysisError.notAnImage("\(e)")
            }
        }
    }

    /// Analyses JPEG/PNG/PGM bytes. With `wholeImage` the picture is taken as one face (already
    /// cropped) and no detection runs.
    public func analyze(_ bytes: [UInt8], wholeImage: Bool = false, maxFaces: Int = 64) throws -> AnalysisResult {
        let t0 = Date()
        let img = try ImageAnalyzer.decode(bytes, name: "the request body", maxPixels: maxPixels)
        let grey = img.grey
        var boxes: [(x: Int, y: Int, w: Int, h: Int)]
        if wholeImage {
            boxes = [(0, 0, img.width, img.height)]
        } else {
            var p = DetectionParameters()
            p.scaleFactor = 1.1
            p.minNeighbors = 3
            p.minSize = max(24, min(img.width, img.height) / 20)
            boxes = grey.withUnsafeBufferPointer {
                cascade.detect(grey: $0.baseAddress!, width: img.width, height: img.height, stride: img.width, parameters: p)
            }.map { ($0.x, $0.y, $0.width, $0.height) }
            // largest first, so max-faces keeps the nearest people
            boxes.sort { $0.w * $0.h > $1.w * $1.h }
            if boxes.count > maxFaces { boxes.removeLast(boxes.count - maxFaces) }
        }
        let side = model.inputSize.width
        let crops = boxes.map { FaceCrop.crop(grey: grey, width: img.width, height: img.height, box: $0, side: side) }
        let probs = crops.isEmpty ? [] : model.predict(faces: crops, flipTTA: flipTTA)
        let labels = model.labels
        let faces = zip(boxes, probs).map { b, p -> FaceReading in
            let k = p.indices.max { p[$0] < p[$1] }!
            var byLabel: [String: Double] = [:]
            for (i, l) in labels.enumerated() { byLabel[l] = Double(p[i]) }
            return FaceReading(id: nil, box: FaceBox(x: b.x, y: b.y, width: b.w, height: b.h), emotion: labels[k],
                               confidence: Double(p[k]), probabilities: byLabel)
        }
        return AnalysisResult(width: img.width, height: img.height, faces: faces, elapsedMs: Date().timeIntervalSince(t0) * 1000)
    }

    /// `analyze` on the analyser's queue; throws `.busy` when `maxWaiting` pictures already wait.
    public func analyzeQueued(_ bytes: [UInt8], wholeImage: Bool = false) async throws -> AnalysisResult {
        guard reserve() else { throw AnalysisError.busy }
        return try await withCheckedThrowingContinuation { c in
            queue.async {
                defer { self.release() }
                c.resume(with: Result { try self.analyze(bytes, wholeImage: wholeImage) })
            }
        }
    }

    private func reserve() -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard waiting < maxWaiting else { return false }
        waiting += 1
        return true
    }

    private func release() { lock.lock(); waiting -= 1; lock.unlock() }
}
