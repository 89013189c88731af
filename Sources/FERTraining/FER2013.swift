import FERNet
import Foundation
import CZlib

/// Errors reading a dataset; each names the file and, for a bad row, its line number.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case unreadable(String, String)
    case badHeader(String, String)
    case malformed(file: String, line: Int, reason: String)
    case empty(String)

    public var description: String {
        switch self {
        case .missing(let f): return "dataset not found: \(f)"
        case .unreadable(let f, let w): return "cannot read \(f): \(w)"
        case .badHeader(let f, let h): return "\(f): header must name the columns emotion,pixels[,Usage]; found \"\(h)\""
        case .malformed(let f, let l, let r): return "\(f):\(l): \(r)"
        case .empty(let f): return "\(f) holds no images"
        }
    }
}

/// The FER2013 splits named in Kaggle's `Usage` column.
public enum Usage: String, CaseIterable, Codable, Sendable {
    case training = "Training", publicTest = "PublicTest", privateTest = "PrivateTest"
}

/// A set of 48x48 grey faces with labels 0-6 and their split.
public struct FERDataset: Sendable {
    public static let labels = fer2013Labels
    public static let side = 48
    public static let pixels = side * side

    /// count·2304 bytes, row-major faces one after another.
    public var images: [UInt8]
    public var labels: [UInt8]
    public var usage: [Usage]
    public var count: Int { labels.count }

    public init(images: [UInt8], labels: [UInt8], usage: [Usage]) {
        self.images = images; self.labels = labels; self.usage = usage
    }

    public func image(_ i: Int) -> [UInt8] { Array(images[(i * FERDataset.pixels)..<((i + 1) * FERDataset.pixels)]) }

    /// The rows whose split is in `splits`, in file order.
    public func subset(_ splits: Set<Usage>) -> FERDataset {
        var img: [UInt8] = [], lab: [UInt8] = [], use: [Usage] = []
        img.reserveCapacity(images.count)
        for i in 0..<count where splits.contains(usage[i]) {
            img.append(contentsOf: images[(i * FERDataset.pixels)..<((i + 1) * FERDataset.pixels)])
            lab.append(labels[i]); use.append(usage[i])
        }
        return FERDataset(images: img, labels: lab, usage: use)
    }

    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: FERDataset.labels.count)
        for l in labels { c[Int(l)] += 1 }
        return c
    }

    /// Loads Kaggle's `fer2013.csv` (or `.csv.gz`, detected by content): header
    /// `emotion,pixels,Usage` (Usage optional: rows without it are Training), 2304 space-separated
    /// 0-255 values per row. Any bad row throws an error naming its line.
    public static func loadCSV(_ path: String) throws -> FERDataset {
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.missing(path) }
        let bytes = try readMaybeGzip(path)
        return try parseCSV(bytes, file: path)
    }

    /// Reads a file, gunzipping it when it starts with the gzip magic.
    public static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        guard let gz = gzopen(path, "rb") else { throw DatasetError.unreadable(path, "cannot open") }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var err: Int32 = 0
                let msg = gzerror(gz, &err).map { String(cString: $0) } ?? "read error"
                throw DatasetError.unreadable(path, msg)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }

    public static func parseCSV(_ bytes: [UInt8], file: String) throws -> FERDataset {
        var images: [UInt8] = [], labels: [UInt8] = [], usage: [Usage] = []
        images.reserveCapacity(bytes.count / 4)
        try bytes.withUnsafeBufferPointer { buf in
            let n = buf.count
            var pos = 0
            if n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF { pos = 3 }   // UTF-8 BOM
            func lineEnd(_ from: Int) -> Int { var e = from; while e < n && buf[e] != 10 { e += 1 }; return e }
            // header
            let he = lineEnd(pos)
            var header = String(decoding: buf[pos..<he], as: UTF8.self)
            if header.hasSuffix("\r") { header.removeLast() }
            let cols = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard cols.count >= 2, cols[0] == "emotion", cols[1] == "pixels", cols.count == 2 || cols[2] == "usage" else {
                throw DatasetError.badHeader(file, String(header.prefix(80)))
            }
            let hasUsage = cols.count >= 3
            pos = he + 1
            var line = 1
            var face = [UInt8](repeating: 0, count: pixels)
            while pos < n {
                line += 1
                var end = lineEnd(pos)
                let next = end + 1
                if end > pos && buf[end - 1] == 13 { end -= 1 }
                if end == pos { pos = next; continue }   // blank line (e.g. at the end)
                var p = pos
                // emotion
                var label = 0, digits = 0
                while p < end && buf[p] >= 48 && buf[p] <= 57 { label = label * 10 + Int(buf[p] - 48); p += 1; digits += 1 }
                guard digits > 0, digits < 4, p < end, buf[p] == 44 else {
                    throw DatasetError.malformed(file: file, line: line, reason: "emotion must be an integer 0-6 followed by a comma")
                }
                guard label < FERDataset.labels.count else {
                    throw DatasetError.malformed(file: file, line: line, reason: "emotion \(label) is outside 0-6")
                }
                p += 1
                let quoted = p < end && buf[p] == 34
                if quoted { p += 1 }
                var k = 0
                while true {
                    while p < end && buf[p] == 32 { p += 1 }
                    if p >= end || buf[p] == 34 || buf[p] == 44 { break }
                    var v = 0, d = 0
                    while p < end && buf[p] >= 48 && buf[p] <= 57 { v = v * 10 + Int(buf[p] - 48); p += 1; d += 1; if d > 3 { break } }
                    guard d > 0, d <= 3, v <= 255, p >= end || buf[p] == 32 || buf[p] == 34 || buf[p] == 44 else {
                        let bad = String(decoding: buf[max(pos, p - d)..<min(end, p + 1)], as: UTF8.self)
                        throw DatasetError.malformed(file: file, line: line, reason: "pixel \(k + 1) is not a value 0-255 (\"\(bad)\")")
                    }
                    guard k < pixels else {
                        throw DatasetError.malformed(file: file, line: line, reason: "more than \(pixels) pixels")
                    }
                    face[k] = UInt8(v); k += 1
                }
                guard k == pixels else {
                    throw DatasetError.malformed(file: file, line: line, reason: "\(k) pixels, expected \(pixels) (48x48)")
                }
                if quoted {
                    guard p < end, buf[p] == 34 else { throw DatasetError.malformed(file: file, line: line, reason: "unterminated quoted pixels") }
                    p += 1
                }
                var use = Usage.training
                if hasUsage {
                    guard p < end, buf[p] == 44 else { throw DatasetError.malformed(file: file, line: line, reason: "missing Usage column") }
                    let u = String(decoding: buf[(p + 1)..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    guard let uu = Usage(rawValue: u) else {
                        throw DatasetError.malformed(file: file, line: line, reason: "Usage \"\(u.prefix(40))\" is not Training, PublicTest or PrivateTest")
                    }
                    use = uu
                } else {
                    guard p == end else { throw DatasetError.malformed(file: file, line: line, reason: "unexpected text after the pixels") }
                }
                images.append(contentsOf: face); labels.append(UInt8(label)); usage.append(use)
                pos = next
            }
        }
        guard !labels.isEmpty else { throw DatasetError.empty(file) }
        return FERDataset(images: images, labels: labels, usage: usage)
    }
}

extension FERDataset {
    /// Loads a CSV file, or an image-folder layout when `path` is a directory.
    public static func load(_ path: String) throws -> FERDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DatasetError.missing(path) }
        return isDir.boolValue ? try loadImageFolder(path) : try loadCSV(path)
    }

    /// The split a top-level folder of an image-folder copy stands for.
    static func split(forFolder name: String) -> Usage? {
        switch name.lowercased() {
        case "train", "training": return .training
        case "test", "publictest", "val", "validation": return .publicTest
        case "privatetest": return .privateTest
        default: return nil
        }
    }

    /// Loads the image-folder layout (`train/<emotion>/*.jpg|png`, `test/<emotion>/...`; also
    /// `Training`, `PublicTest`, `PrivateTest`), as FER2013 is often downloaded. Images are read
    /// as grey and scaled to 48x48 if they are another size. Files are taken in name order.
    public static func loadImageFolder(_ root: String) throws -> FERDataset {
        let fm = FileManager.default
        var images: [UInt8] = [], labels: [UInt8] = [], usage: [Usage] = []
        let splits = try fm.contentsOfDirectory(atPath: root).sorted()
        var found = false
        for split in splits {
            guard let u = FERDataset.split(forFolder: split) else { continue }
            let sdir = (root as NSString).appendingPathComponent(split)
            for emo in try fm.contentsOfDirectory(atPath: sdir).sorted() {
                let edir = (sdir as NSString).appendingPathComponent(emo)
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: edir, isDirectory: &isDir), isDir.boolValue else { continue }
                guard let label = FERDataset.labels.firstIndex(of: emo.lowercased()) else {
                    throw DatasetError.malformed(file: edir, line: 0, reason: "folder name \"\(emo)\" is not one of \(FERDataset.labels.joined(separator: ", "))")
                }
                found = true
                for f in try fm.contentsOfDirectory(atPath: edir).sorted() {
                    let ext = (f as NSString).pathExtension.lowercased()
                    guard ["jpg", "jpeg", "png", "pgm"].contains(ext) else { continue }
                    let img: Image
                    do { img = try ImageCodec.read((edir as NSString).appendingPathComponent(f)) } catch {
                        throw DatasetError.unreadable((edir as NSString).appendingPathComponent(f), "\(error)")
                    }
                    var g = img.grey
                    if img.width != side || img.height != side { g = Image.resizeGrey(g, width: img.width, height: img.height, to: side, side) }
                    images += g; labels.append(UInt8(label)); usage.append(u)
                }
            }
        }
        guard found, !labels.isEmpty else { throw DatasetError.empty("\(root) (expected train/<emotion>/*.jpg and test/<emotion>/*.jpg)") }
        return FERDataset(images: images, labels: labels, usage: usage)
    }
}

extension FERDataset {
    /// Where this project keeps FER2013: `$FER2013_CSV` if set, else
    /// `../shared/data/fer2013/fer2013.csv.gz` beside the checkout. Nil when neither exists.
    public static func sharedCopy(beside checkout: URL) -> String? {
        if let p = ProcessInfo.processInfo.environment["FER2013_CSV"], FileManager.default.fileExists(atPath: p) { return p }
        let p = checkout.deletingLastPathComponent().appendingPathComponent("shared/data/fer2013/fer2013.csv.gz").path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    /// The PublicTest rows of the shared copy beside `checkout` (see `sharedCopy`), read once per
    /// process; nil when there is no copy.
    public static func sharedPublicTest(beside checkout: URL) throws -> FERDataset? {
        publicTestLock.lock(); defer { publicTestLock.unlock() }
        if let d = publicTestCache { return d }
        guard let path = sharedCopy(beside: checkout) else { return nil }
        let d = try loadCSV(path).subset([.publicTest])
        publicTestCache = d
        return d
    }
}

private let publicTestLock = NSLock()
nonisolated(unsafe) private var publicTestCache: FERDataset?
