import Foundation

/// A trained expression classifier loaded from `Models/<name>.json` and its weights file:
/// 48x48 grey faces in, the probabilities of each label out.
///
/// Prediction runs an `InferencePlan`, which keeps no state between calls, so one instance may
/// serve several threads.
public final class FacialExpressionModel: @unchecked Sendable {
    public let description: ModelDescription
    public let network: Network
    public let url: URL
    /// The network with batch normalisation folded in, which `predict` runs (made at load time:
    /// changes to `network`'s weights afterwards are not seen by `predict`).
    public let plan: InferencePlan

    public var labels: [String] { description.labels }
    public var inputSize: (width: Int, height: Int) { (description.input.width, description.input.height) }

    /// Loads the description at `url` and the weights file it names (a path relative to the JSON).
    public init(contentsOf url: URL) throws {
        let d = try ModelDescription.load(url)
        let net: Network
        do {
            net = try Network(specs: d.architecture, input: (1, d.input.height, d.input.width), seed: 0)
        } catch let e as ShapeError {
            throw ModelFileError.badJSON(url.path, "architecture: \(e.description)")
        }
        guard net.outputSize == d.labels.count else {
            throw ModelFileError.badJSON(url.path, "the architecture has \(net.outputSize) outputs for \(d.labels.count) labels")
        }
        let wurl = URL(fileURLWithPath: d.weights.file, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        guard FileManager.default.fileExists(atPath: wurl.path) else { throw ModelFileError.missing(wurl.path) }
        let data: Data
        do { data = try Data(contentsOf: wurl) } catch { throw ModelFileError.unreadable(wurl.path, error.localizedDescription) }
        try net.importTensors(WeightsFile.decode(data, file: wurl.path), file: wurl.path)
        // the description names the weights it was saved with: another model's weights file is refused
        let recorded = WeightsFile.contentCRC(data)
        guard d.weights.crc32.lowercased() == String(format: "%08x", recorded) else {
            throw ModelFileError.mismatch("\(wurl.path) has CRC-32 \(String(format: "%08x", recorded)) but \(url.path) "
                                          + "was saved with weights of CRC-32 \(d.weights.crc32): the two files are from different models")
        }
        self.description = d
        self.network = net
        self.url = url
        self.plan = InferencePlan(net)
    }

    /// The model at `url`, loaded once per process: while an instance loaded from the same
    /// description and weights files (same path, size, modification time and inode) is alive, it
    /// is returned again, so that many elements or sessions predicting with one model hold one
    /// copy of it (about 50 MB for `vgg48`: the weights, and the plan's folded and transformed
    /// ones). For prediction only: the network's gradients are freed, and the instance is shared,
    /// so its `network` must not be changed. A file changed on disk is loaded anew.
    public static func shared(contentsOf url: URL) throws -> FacialExpressionModel {
        let path = url.standardizedFileURL.path
        sharedLock.lock(); defer { sharedLock.unlock() }
        if let entry = sharedModels[path], let m = entry.model, entry.json == FileIdentity(path),
           entry.weights == FileIdentity(entry.weightsPath) {
            return m
        }
        let m = try FacialExpressionModel(contentsOf: url)
        m.network.releaseGradients()
        let weightsPath = URL(fileURLWithPath: m.description.weights.file, relativeTo: url.deletingLastPathComponent()).standardizedFileURL.path
        sharedModels = sharedModels.filter { $0.value.model != nil }
        sharedModels[path] = SharedEntry(model: m, json: FileIdentity(path), weightsPath: weightsPath, weights: FileIdentity(weightsPath))
        return m
    }

    /// What tells one version of a file from another without reading it.
    struct FileIdentity: Equatable {
        var size: Int64, modified: Int64, inode: UInt64
        init?(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            size = Int64(st.st_size); inode = UInt64(st.st_ino)
            modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        }
    }

    final class SharedEntry {
        weak var model: FacialExpressionModel?
        let json: FileIdentity?, weightsPath: String, weights: FileIdentity?
        init(model: FacialExpressionModel, json: FileIdentity?, weightsPath: String, weights: FileIdentity?) {
            self.model = model; self.json = json; self.weightsPath = weightsPath; self.weights = weights
        }
    }

    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedModels: [String: SharedEntry] = [:]

    public init(description: ModelDescription, network: Network, url: URL) {
        self.description = description; self.network = network; self.url = url
        self.plan = InferencePlan(network)
    }

    /// Converts 8-bit grey faces (each width·height bytes, row-major) to the normalised input tensor.
    public func inputTensor(_ faces: [[UInt8]], flip: Bool = false) -> Tensor {
        let w = inputSize.width, h = inputSize.height, plane = w * h
        let norm = description.normalization
        var data = [Float](repeating: 0, count: faces.count * plane)
        for (i, f) in faces.enumerated() {
            precondition(f.count == plane, "a face must be \(w)x\(h) = \(plane) bytes, got \(f.count)")
            for y in 0..<h { for x in 0..<w {
                let sx = flip ? w - 1 - x : x
                data[i * plane + y * w + x] = norm.input(pixel: f[y * w + sx])
            } }
        }
        return Tensor(shape: [1, faces.count, h, w], data: data)
    }

    /// Probabilities for each face, in label order. With `flipTTA` the prediction averages the
    /// face and its mirror image (both in one batch).
    public func predict(faces: [[UInt8]], flipTTA: Bool = false) -> [[Float]] {
        predict(faces: faces, views: [FaceView](repeating: flipTTA ? .both : .asSeen, count: faces.count))
    }

    /// How `predict(faces:views:)` looks at a face.
    public enum FaceView: Sendable { case asSeen, mirrored, both }

    /// Probabilities for each face, each as seen, mirrored, or the mean of both (flip TTA).
    public func predict(faces: [[UInt8]], views: [FaceView]) -> [[Float]] {
        predictViews(faces: faces, views: views).map(FacialExpressionModel.combined)
    }

    /// Each face's probabilities for the views asked for (nil for the other); all in one batch:
    /// the faces as seen, then the mirror images.
    public func predictViews(faces: [[UInt8]], views: [FaceView]) -> [(asSeen: [Float]?, mirrored: [Float]?)] {
        precondition(views.count == faces.count, "\(views.count) views for \(faces.count) faces")
        if faces.isEmpty { return [] }
        let k = labels.count
        let seen = faces.indices.filter { views[$0] != .mirrored }, mirrored = faces.indices.filter { views[$0] != .asSeen }
        let a = inputTensor(seen.map { faces[$0] }), b = inputTensor(mirrored.map { faces[$0] }, flip: true)
        let x = Tensor(shape: [1, seen.count + mirrored.count, a.shape[2], a.shape[3]], data: a.data + b.data)
        let probs = SoftmaxCrossEntropy.softmax(plan.forward(x).data, classes: k)
        var out = [(asSeen: [Float]?, mirrored: [Float]?)](repeating: (nil, nil), count: faces.count)
        for (row, i) in seen.enumerated() { out[i].asSeen = Array(probs[(row * k)..<((row + 1) * k)]) }
        for (row, i) in mirrored.enumerated() { out[i].mirrored = Array(probs[((seen.count + row) * k)..<((seen.count + row + 1) * k)]) }
        return out
    }

    /// Flip TTA's combination: (as seen + mirrored) / 2, element by element.
    public static func mean(_ asSeen: [Float], _ mirrored: [Float]) -> [Float] { zip(asSeen, mirrored).map { 0.5 * ($0 + $1) } }

    /// One face's probabilities from `predictViews`: the mean of both views where there are two,
    /// else the one view.
    public static func combined(_ v: (asSeen: [Float]?, mirrored: [Float]?)) -> [Float] {
        if let s = v.asSeen, let m = v.mirrored { return mean(s, m) }
        return v.asSeen ?? v.mirrored!
    }

    /// Probabilities for one face.
    public func predict(face: [UInt8], flipTTA: Bool = false) -> [Float] {
        predict(faces: [face], flipTTA: flipTTA)[0]
    }

    /// Writes the description and weights of `network` as `<dir>/<name>.json` and `<name>.weights`.
    public static func save(network: Network, name: String, directory: URL, labels: [String],
                            normalization: Normalization, training: TrainingRecipe?, card: ModelCard?,
                            storage: WeightStorage = .float32) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let wdata = WeightsFile.encode(network.exportTensors(), storage: storage)
        let wname = "\(name).weights"
        try wdata.write(to: directory.appendingPathComponent(wname), options: .atomic)
        let d = ModelDescription(name: name, labels: labels,
                                 input: .init(width: network.inputShape.w, height: network.inputShape.h, channels: 1),
                                 normalization: normalization, architecture: network.specs,
                                 weights: .init(file: wname, crc32: String(format: "%08x", WeightsFile.contentCRC(wdata)), bytes: wdata.count,
                                               storage: storage.rawValue),
                                 parameters: network.parameterCount, macs: network.macsPerSample,
                                 training: training, card: card)
        let jurl = directory.appendingPathComponent("\(name).json")
        try d.write(jurl)
        return jurl
    }
}
