import ArgumentParser
import EmotionSEI
import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation

/// A seeded mutation fuzzer over everything GstFER reads from disk or the network: model
/// descriptions and weights, Haar cascades, FER2013 CSVs (plain and gzip), images, and H.264/H.265
/// access units carrying emotion SEI (what ferseiextract reads from a network stream). Each input
/// must either load or be refused with an error that names the file (and, for a CSV row, its
/// line); a crash ends the process with the input left in `--output` for replay.
struct Fuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fuzz the model, weights, cascade, CSV, image and SEI readers with seeded mutations (make fuzz).",
        discussion: """
        Every input must load or give an error naming the file (CSV rows: file:line). The input being \
        tried is written to OUTPUT/<target>.current first, so after a crash it is there to replay \
        (fer fuzz --replay FILE --target T); it is removed at the end. Build with \
        -Xswiftc -sanitize=address to catch out-of-bounds reads too (make fuzz does).
        """)

    enum Target: String, CaseIterable, ExpressibleByArgument {
        case model, weights, cascade, csv, image, sei, detector
    }

    @Option(help: "Targets (comma-separated: model, weights, cascade, csv, image, sei, detector, or all).") var target = "all"
    @Option(help: "Seconds per target.") var seconds = 60.0
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Working directory for inputs (a tmpfs is fastest).") var output = "out/fuzz"
    @Option(help: "FER2013 CSV whose first rows seed the CSV target.") var data = Defaults.data
    @Option(help: "Replay one input file instead of fuzzing.") var replay: String?

    func run() throws {
        let targets: [Target] = target == "all" ? Target.allCases : try target.split(separator: ",").map {
            guard let t = Target(rawValue: String($0)) else { throw ValidationError("unknown target \($0)") }
            return t
        }
        let dir = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let harness = try FuzzHarness(dir: dir, data: data)
        if let replay {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: replay)))
            for t in targets { print("\(t.rawValue): \(harness.run(t, bytes).summary)") }
            return
        }
        var failed = false
        for t in targets {
            let r = harness.fuzz(t, seconds: seconds, seed: seed &+ UInt64(t.hashValue & 0xffff))
            print(r.report)
            if r.unclear > 0 { failed = true }
        }
        if failed { throw ExitCode(1) }
    }
}

/// What one input did.
enum FuzzOutcome {
    case accepted
    case refused(kind: String, message: String)
    /// Refused with a message that does not name the place.
    case unclear(String)

    var summary: String {
        switch self {
        case .accepted: return "accepted"
        case .refused(_, let m): return "refused: \(m)"
        case .unclear(let m): return "UNCLEAR: \(m)"
        }
    }
}

struct FuzzReport {
    var target: String
    var inputs = 0, accepted = 0, unclear = 0
    var kinds: [String: Int] = [:]
    var slowest = 0.0
    var seconds = 0.0
    var examples: [String] = []

    var report: String {
        let top = kinds.sorted { $0.value > $1.value }.prefix(6).map { "\($0.value) \($0.key)" }.joined(separator: "; ")
        var s = "\(target): \(inputs) inputs in \(fmt(seconds, 0)) s, 0 crashes, \(accepted) accepted, \(inputs - accepted - unclear) refused "
            + "with a clear error, \(unclear) unclear; slowest input \(fmt(slowest * 1000, 1)) ms\n  refusals: \(top)"
        for e in examples { s += "\n  unclear: \(e)" }
        return s
    }
}

final class FuzzHarness {
    let dir: URL
    var seeds: [Fuzz.Target: [[UInt8]]] = [:]
    let tinyWeights: URL
    let image = [UInt8](repeating: 0, count: 64 * 48)

    init(dir: URL, data: String) throws {
        self.dir = dir
        // model: a tiny network's description (weights beside it), and the shipped model's description
        let tiny = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 3)
        let seedDir = dir.appendingPathComponent("seed-model")
        let json = try FacialExpressionModel.save(network: tiny, name: "tiny", directory: seedDir, labels: FERDataset.labels,
                                                  normalization: Normalization(mean: 0.5, std: 0.25), training: nil, card: nil, storage: .float16)
        tinyWeights = seedDir.appendingPathComponent("tiny.weights")
        var modelSeeds = [[UInt8](try Data(contentsOf: json))]
        if let shipped = try? Data(contentsOf: URL(fileURLWithPath: Defaults.model)) {
            // the shipped description, pointed at the tiny weights so it loads as far as the shapes
            modelSeeds.append([UInt8](String(decoding: shipped, as: UTF8.self)
                .replacingOccurrences(of: "\"fernet.weights\"", with: "\"tiny.weights\"").utf8))
        }
        seeds[.model] = modelSeeds
        seeds[.weights] = [[UInt8](try Data(contentsOf: tinyWeights)),
                           [UInt8](WeightsFile.encode(tiny.exportTensors())),
                           [UInt8](WeightsFile.encode(tiny.exportTensors(), storage: .int8))]
        // cascade: the face cascade cut to its first two stages and the features they use (a few kB,
        // so thousands of variants a second) and one of opencv-data's small cascades
        let haar = "/usr/share/opencv4/haarcascades/"
        var cascades: [[UInt8]] = []
        if let face = FileManager.default.contents(atPath: haar + "haarcascade_frontalface_default.xml").map({ String(decoding: $0, as: UTF8.self) }) {
            cascades.append(Array(FuzzHarness.firstStages(of: face, stages: 2).utf8))
        }
        if let plate = FileManager.default.contents(atPath: haar + "haarcascade_licence_plate_rus_16stages.xml") { cascades.append([UInt8](plate)) }
        seeds[.cascade] = cascades
        // CSV: header + 30 rows of FER2013 (or synthetic rows without the data), plain and gzip
        var csv = "emotion,pixels,Usage\n"
        if let d = try? FERDataset.load(data) {
            let usages = ["Training", "PublicTest", "PrivateTest"]
            for i in 0..<30 { csv += "\(d.labels[i]),\(d.image(i).map(String.init).joined(separator: " ")),\(usages[i % 3])\n" }
        } else {
            for i in 0..<30 { csv += "\(i % 7),\((0..<2304).map { String(($0 * 7 + i) % 256) }.joined(separator: " ")),Training\n" }
        }
        seeds[.csv] = [Array(csv.utf8), [UInt8](try gzip(Data(csv.utf8)))]
        // images: grey and RGB PNG, a JPEG and a PGM of a small gradient
        let g = Image(width: 23, height: 17, channels: 1, pixels: (0..<(23 * 17)).map { UInt8($0 % 251) })
        let rgb = Image(width: 9, height: 7, channels: 3, pixels: (0..<(9 * 7 * 3)).map { UInt8($0 * 5 % 256) })
        var pgm = Array("P5\n23 17\n255\n".utf8); pgm += g.pixels
        seeds[.image] = [[UInt8](ImageCodec.encodePNG(g)), [UInt8](ImageCodec.encodePNG(rgb)), [UInt8](try ImageCodec.encodeJPEG(g)), pgm]
        seeds[.sei] = try FuzzHarness.seiSeeds()
        // detector: the YuNet ONNX file as shipped
        seeds[.detector] = [[UInt8](try Data(contentsOf: URL(fileURLWithPath: Defaults.yunet)))]
    }

    /// How the first byte of a `sei` input frames the rest.
    static let seiLayouts: [(VideoCodec, NALFraming)] = [(.h264, .byteStream), (.h265, .byteStream), (.h264, .lengthPrefixed(4)),
                                                         (.h265, .lengthPrefixed(2))]

    /// Access units of each layout (parameter sets, a slice) with an emotion SEI of two faces.
    static func seiSeeds() throws -> [[UInt8]] {
        let payload = EmotionPayload.encode([
            EmotionFace(id: 1, x: 120, y: 64, width: 140, height: 140, emotion: "happy", labelID: 3, confidence: 0.87,
                        probabilities: [0.01, 0.0, 0.02, 0.87, 0.03, 0.02, 0.05]),
            EmotionFace(id: 2, x: 300, y: 80, width: 96, height: 96, emotion: "sad", labelID: 4, confidence: 0.5, probabilities: []),
        ])
        let units: [VideoCodec: [[UInt8]]] = [.h264: [[0x09, 0xF0], [0x67, 0x42, 0x00, 0x1E], [0x68, 0xCE, 0x38, 0x80], [0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01]],
                                              .h265: [[0x40, 0x01, 0x0C], [0x42, 0x01, 0x01], [0x44, 0x01, 0xC1], [0x26, 0x01, 0xAF, 0x00, 0x00, 0x03, 0x02]]]
        return try seiLayouts.enumerated().map { k, layout in
            let au = AccessUnit.framed(units[layout.0]!, framing: layout.1)
            let out = try au.withUnsafeBytes { try AccessUnit.inserting(uuid: EmotionPayload.uuid, data: payload, into: $0, codec: layout.0, framing: layout.1) }
            return [UInt8(k)] + (out ?? au)
        }
    }

    /// An OpenCV cascade with only its first `stages` stages and the features they reference.
    static func firstStages(of xml: String, stages: Int) -> String {
        let stageEnd = "</weakClassifiers></_>"
        var cut = xml.startIndex
        for _ in 0..<stages {
            guard let r = xml.range(of: stageEnd, range: cut..<xml.endIndex) else { return xml }
            cut = r.upperBound
        }
        guard let featStart = xml.range(of: "<features>") else { return xml }
        let used = xml[xml.startIndex..<cut].components(separatedBy: "<internalNodes>").dropFirst()
            .compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\n" }).dropFirst(2).first.flatMap { Int($0) } }
        let count = (used.max() ?? 0) + 1
        var fcut = featStart.upperBound
        for _ in 0..<count {
            guard let r = xml.range(of: "</rects></_>", range: fcut..<xml.endIndex) else { return xml }
            fcut = r.upperBound
        }
        return String(xml[..<cut]).replacingOccurrences(of: "<stageNum>25</stageNum>", with: "<stageNum>\(stages)</stageNum>")
            + "</stages>\n  <features>" + xml[featStart.upperBound..<fcut] + "</features></cascade>\n</opencv_storage>\n"
    }

    func gzip(_ d: Data) throws -> Data {
        let p = dir.appendingPathComponent("seed.csv")
        try d.write(to: p)
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/bin/gzip")
        proc.arguments = ["-kf", p.path]
        try proc.run(); proc.waitUntilExit()
        return try Data(contentsOf: dir.appendingPathComponent("seed.csv.gz"))
    }

    /// Runs one input through its reader.
    func run(_ t: Fuzz.Target, _ bytes: [UInt8]) -> FuzzOutcome {
        func check(_ error: Error, place: String, line: Bool = false) -> FuzzOutcome {
            let m = "\(error)"
            let kind = FuzzHarness.kind(m, place: place)
            guard m.contains(place) || ((t == .image || t == .sei) && !m.isEmpty) else { return .unclear(m) }
            if line, case DatasetError.malformed(_, let l, _) = error, l <= 0 { return .unclear(m) }
            return .refused(kind: kind, message: m)
        }
        switch t {
        case .model:
            let p = dir.appendingPathComponent("seed-model/fuzz.json")
            write(bytes, to: p)
            do { let m = try FacialExpressionModel(contentsOf: p); _ = m.predict(face: [UInt8](repeating: 90, count: m.inputSize.width * m.inputSize.height)); return .accepted }
            catch { return check(error, place: p.deletingLastPathComponent().path) }   // the description or the weights beside it
        case .weights:
            let p = dir.appendingPathComponent("fuzz.weights")
            write(bytes, to: p)
            do {
                let tensors = try WeightsFile.decode(Data(bytes), file: p.path)
                let net = try Network(specs: Architecture.tiny, input: (1, 48, 48), seed: 0)
                try net.importTensors(tensors, file: p.path)
                return .accepted
            } catch { return check(error, place: p.path) }
        case .cascade:
            let p = dir.appendingPathComponent("fuzz.xml")
            write(bytes, to: p)
            do {
                let c = try HaarCascade(contentsOf: p.path)
                var params = DetectionParameters(); params.minSize = 0
                _ = image.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 64, height: 48, stride: 64, parameters: params) }
                return .accepted
            } catch { return check(error, place: p.path) }
        case .csv:
            let gz = bytes.starts(with: [0x1f, 0x8b])
            let p = dir.appendingPathComponent(gz ? "fuzz.csv.gz" : "fuzz.csv")
            write(bytes, to: p)
            do { _ = try FERDataset.load(p.path); return .accepted } catch { return check(error, place: p.path, line: true) }
        case .detector:
            // read as ferfilter reads detector-model, then run on a small frame
            let p = dir.appendingPathComponent("fuzz.onnx")
            write(bytes, to: p)
            do {
                let d = try YuNetDetector(path: p.path)
                _ = image.withUnsafeBufferPointer { d.detect(grey: $0.baseAddress!, width: 64, height: 48, stride: 64, request: DetectionRequest(minSize: 0, threads: 1)) }
                return .accepted
            } catch { return check(error, place: p.path) }
        case .image:
            do { let img = try ImageCodec.decode(bytes, name: "fuzz-image", maxPixels: 1 << 22); _ = img.grey; return .accepted }
            catch { return check(error, place: "fuzz-image") }
        case .sei:
            // what ferseiextract and ferseiinsert do with an access unit off the network
            guard let first = bytes.first else { return .accepted }
            let (codec, framing) = FuzzHarness.seiLayouts[Int(first) % FuzzHarness.seiLayouts.count]
            do {
                try bytes.dropFirst().withUnsafeBytes { au in
                    for data in try AccessUnit.userData(uuid: EmotionPayload.uuid, in: au, codec: codec, framing: framing) {
                        _ = try EmotionPayload.decode(data)
                    }
                    _ = try AccessUnit.inserting(uuid: EmotionPayload.uuid, data: Array("{}".utf8), into: au, codec: codec, framing: framing)
                }
                return .accepted
            } catch { return check(error, place: "access unit") }
        }
    }

    private func write(_ bytes: [UInt8], to url: URL) {
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
    }

    static func kind(_ message: String, place: String) -> String {
        let m = message.replacingOccurrences(of: place, with: "FILE")
        let cut = m.prefix(60)
        return cut.replacingOccurrences(of: #"[0-9]+"#, with: "N", options: .regularExpression)
    }

    func fuzz(_ t: Fuzz.Target, seconds: Double, seed: UInt64) -> FuzzReport {
        var rng = SplitMix(seed)
        var r = FuzzReport(target: t.rawValue)
        let pool = seeds[t] ?? []
        guard !pool.isEmpty else { return r }
        let current = dir.appendingPathComponent("\(t.rawValue).current")
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            var input = pool[rng.below(pool.count)]
            let rounds = 1 + rng.below(rng.below(2) == 0 ? 3 : 12)
            for _ in 0..<rounds { Mutator.mutate(&input, other: pool[rng.below(pool.count)], rng: &rng, text: t == .model || t == .cascade || t == .csv || t == .sei) }
            if t == .weights && rng.below(2) == 0 { WeightsFixup.recomputeCRC(&input) }   // past the checksum, into the parser
            FileManager.default.createFile(atPath: current.path, contents: Data(input))
            let t0 = Date()
            let outcome = run(t, input)
            r.slowest = max(r.slowest, Date().timeIntervalSince(t0))
            r.inputs += 1
            switch outcome {
            case .accepted: r.accepted += 1
            case .refused(let kind, _): r.kinds[kind, default: 0] += 1
            case .unclear(let m):
                r.unclear += 1
                if r.examples.count < 5 {
                    let keep = dir.appendingPathComponent("\(t.rawValue)-unclear-\(r.unclear)")
                    FileManager.default.createFile(atPath: keep.path, contents: Data(input))
                    r.examples.append("\(m) (input kept in \(keep.path))")
                }
            }
        }
        try? FileManager.default.removeItem(at: current)
        r.seconds = Date().timeIntervalSince(start)
        return r
    }
}

/// SplitMix64: small, seeded, reproducible.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

enum Mutator {
    static let interesting: [UInt8] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x20, 0x0a, 0x3c, 0x3e, 0x22, 0x2c]
    static let numbers = ["0", "-1", "1", "2147483648", "-2147483649", "99999999999999999999", "1e308", "-1e308", "nan", "inf",
                          "0.0000001", "65536", "4096", "48", "7", "255", "256", ""]

    static func mutate(_ d: inout [UInt8], other: [UInt8], rng: inout SplitMix, text: Bool) {
        if d.isEmpty { d = [UInt8(truncatingIfNeeded: rng.next())]; return }
        let ops = text ? 10 : 8
        switch rng.below(ops) {
        case 0: let i = rng.below(d.count); d[i] ^= UInt8(1 << rng.below(8))
        case 1: d[rng.below(d.count)] = interesting[rng.below(interesting.count)]
        case 2: d[rng.below(d.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 3: // delete a range
            let i = rng.below(d.count), n = min(d.count - i, 1 + rng.below(rng.below(2) == 0 ? 8 : 512))
            d.removeSubrange(i..<(i + n))
        case 4: // insert random bytes
            let i = rng.below(d.count + 1)
            d.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
        case 5: // duplicate a range
            let i = rng.below(d.count), n = min(d.count - i, 1 + rng.below(256))
            d.insert(contentsOf: d[i..<(i + n)], at: rng.below(d.count + 1))
        case 6: d.removeLast(rng.below(d.count))   // truncate
        case 7: // splice with another input
            guard !other.isEmpty else { return }
            let a = rng.below(d.count), b = rng.below(other.count)
            d = Array(d[..<a]) + Array(other[b...])
        case 8: // replace a number with an interesting one
            let digits = d.indices.filter { d[$0] >= 0x30 && d[$0] <= 0x39 }
            guard !digits.isEmpty else { return }
            var i = digits[rng.below(digits.count)], j = i
            while i > 0 && (d[i - 1] >= 0x30 && d[i - 1] <= 0x39 || d[i - 1] == 0x2e || d[i - 1] == 0x2d) { i -= 1 }
            while j < d.count && (d[j] >= 0x30 && d[j] <= 0x39 || d[j] == 0x2e || d[j] == 0x65) { j += 1 }
            d.replaceSubrange(i..<j, with: Array(numbers[rng.below(numbers.count)].utf8))
        default: // delete a line
            let nl = d.indices.filter { d[$0] == 0x0a }
            guard nl.count > 1 else { return }
            let k = rng.below(nl.count - 1)
            d.removeSubrange((nl[k] + 1)...nl[k + 1])
        }
    }
}

enum WeightsFixup {
    /// Rewrites the trailing CRC-32 so the mutated body reaches the tensor parser.
    static func recomputeCRC(_ d: inout [UInt8]) {
        guard d.count >= 8 else { return }
        let c = WeightsFile.contentCRC(Data(d))
        for k in 0..<4 { d[d.count - 4 + k] = UInt8((c >> (8 * UInt32(k))) & 0xff) }
    }
}
