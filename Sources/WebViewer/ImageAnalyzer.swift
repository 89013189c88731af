import FaceAnalysis
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

/// Finds the faces in a still picture and reads their expressions with FaceAnalysis, exactly as
/// ferfilter reports them on the first frame of a stream with the same settings (by default the
/// element's defaults: the same detector tuning, smallest face, crop and flip TTA).
/// Pictures are analysed one at a time on a queue of their own, at most `maxWaiting` queued.
public final class ImageAnalyzer: @unchecked Sendable {
    public let model: FacialExpressionModel
    public let detector: any FaceDetector
    public let settings: AnalysisSettings
    public let maxPixels: Int
    public let maxWaiting: Int
    private let queue = DispatchQueue(label: "gstfer.analyzer")
    private let lock = NSLock()
    private var waiting = 0

    /// `cascade` tuned by `settings` (scale factor, neighbours) is the detector.
    public convenience init(model: FacialExpressionModel, cascade: HaarCascade, settings: AnalysisSettings = AnalysisSettings(),
                            maxPixels: Int = 40_000_000, maxWaiting: Int = 8) {
        self.init(model: model, detector: settings.haar(cascade), settings: settings, maxPixels: maxPixels, maxWaiting: maxWaiting)
    }

    public init(model: FacialExpressionModel, detector: any FaceDetector, settings: AnalysisSettings = AnalysisSettings(),
                maxPixels: Int = 40_000_000, maxWaiting: Int = 8) {
        self.model = model; self.detector = detector; self.settings = settings; self.maxPixels = maxPixels; self.maxWaiting = maxWaiting
    }

    /// Decodes an uploaded JPEG, PNG or PGM picture; what goes wrong is an `AnalysisError`, with
    /// the HTTP status it deserves (413 over `maxPixels`, 415 no known format, 400 damaged).
    static func decode(_ bytes: [UInt8], name: String, maxPixels: Int) throws -> Image {
        do {
            return try ImageCodec.decode(bytes, name: name, maxPixels: maxPixels, colour: true)
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
    public func analyze(_ bytes: [UInt8], wholeImage: Bool = false, maxFaces: Int? = nil) throws -> AnalysisResult {
        let t0 = Date()
        let img = try ImageAnalyzer.decode(bytes, name: "the request body", maxPixels: maxPixels)
        var s = settings
        if let maxFaces { s.maxFaces = maxFaces }
        let labels = model.labels
        let found: [EmotionFace]
        if wholeImage {
            let p = model.predict(faces: [FaceCrop.crop(grey: img.grey, width: img.width, height: img.height, box: (0, 0, img.width, img.height),
                                                        side: model.inputSize.width)], flipTTA: s.flipTTA)[0]
            let k = p.indices.max { p[$0] < p[$1] }!
            found = [FaceResult(id: 0, x: 0, y: 0, width: img.width, height: img.height, probabilities: p, labelIndex: k).reported(labels: labels)]
        } else {
            found = LumaPlane.over(img) { FrameAnalysis.picture($0, settings: s, model: model, detector: detector) }
                .map { $0.reported(labels: labels) }
        }
        let faces = found.map { f -> FaceReading in
            var byLabel: [String: Double] = [:]
            for (i, p) in f.probabilities.enumerated() where i < labels.count { byLabel[labels[i]] = p }
            return FaceReading(id: nil, box: FaceBox(x: f.x, y: f.y, width: f.width, height: f.height),
                               emotion: f.emotion, confidence: f.confidence, probabilities: byLabel)
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
