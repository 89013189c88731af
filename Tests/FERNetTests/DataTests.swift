import XCTest
import CZlib
@testable import FERNet
@testable import FERTraining

final class DataTests: XCTestCase {
    func row(_ label: Int, _ v: Int = 7, usage: String = "Training") -> String {
        "\(label),\"" + Array(repeating: String(v), count: 2304).joined(separator: " ") + "\",\(usage)"
    }

    func write(_ text: String, gzip: Bool = false) -> String {
        let p = tempDir().appendingPathComponent(gzip ? "f.csv.gz" : "f.csv").path
        if gzip {
            let gz = gzopen(p, "wb")!
            _ = text.utf8CString.withUnsafeBufferPointer { gzwrite(gz, $0.baseAddress, UInt32($0.count - 1)) }
            gzclose(gz)
        } else {
            try! text.write(toFile: p, atomically: true, encoding: .utf8)
        }
        return p
    }

    func testParsesAllThreeUsagesPlainAndGzip() throws {
        let text = "emotion,pixels,Usage\n" + [row(3, usage: "Training"), row(0, 255, usage: "PublicTest"), row(6, 0, usage: "PrivateTest")].joined(separator: "\r\n") + "\r\n"
        for gz in [false, true] {
            let d = try FERDataset.loadCSV(write(text, gzip: gz))
            XCTAssertEqual(d.count, 3)
            XCTAssertEqual(d.labels, [3, 0, 6])
            XCTAssertEqual(d.usage, [.training, .publicTest, .privateTest])
            XCTAssertEqual(d.image(1), [UInt8](repeating: 255, count: 2304))
            XCTAssertEqual(d.subset([.privateTest]).labels, [6])
        }
    }

    func testMalformedRowsNameTheLine() {
        let cases: [(String, String)] = [
            (row(9), "emotion 9 is outside 0-6"),
            ("3,\"1 2 3\",Training", "3 pixels, expected 2304"),
            (row(2).replacingOccurrences(of: "7 7 7", with: "7 x 7"), "is not a value 0-255"),
            (row(2).replacingOccurrences(of: "7 7 7", with: "7 300 7"), "is not a value 0-255"),
            (row(1, usage: "Validation"), "is not Training, PublicTest or PrivateTest"),
            ("happy," + row(1).dropFirst(2), "emotion must be an integer"),
        ]
        for (bad, reason) in cases {
            let p = write("emotion,pixels,Usage\n" + row(0) + "\n" + bad + "\n")
            XCTAssertThrowsError(try FERDataset.loadCSV(p)) { e in
                let s = "\(e)"
                XCTAssertTrue(s.contains(":3: "), "error should name line 3: \(s)")
                XCTAssertTrue(s.contains(reason), "\(s) should say \(reason)")
            }
        }
        XCTAssertThrowsError(try FERDataset.loadCSV(write("label,data\n1,2\n"))) { XCTAssertTrue("\($0)".contains("header")) }
        XCTAssertThrowsError(try FERDataset.loadCSV("/nonexistent/fer.csv")) { XCTAssertTrue("\($0)".contains("not found")) }
        XCTAssertThrowsError(try FERDataset.loadCSV(write("emotion,pixels,Usage\n"))) { XCTAssertTrue("\($0)".contains("no images")) }
    }

    func testRealFER2013SplitsAndCounts() throws {
        let d = try SharedData.load()
        let train = d.subset([.training]), pub = d.subset([.publicTest])
        XCTAssertEqual(train.count, 28709)
        XCTAssertEqual(pub.count, 3589)
        XCTAssertEqual(train.classCounts, [3995, 436, 4097, 7215, 4830, 3171, 4965])
        XCTAssertEqual(pub.classCounts, [467, 56, 496, 895, 653, 415, 607])
    }

    func testAugmentationIsSeededAndNoneIsIdentity() throws {
        var img = (0..<2304).map { Float($0 % 48) / 47 }
        let orig = img
        var r1 = SeededGenerator(seed: 5)
        Augmentation.none.apply(&img, size: 48, rng: &r1)
        XCTAssertEqual(img, orig)
        var a = orig, b = orig
        var g1 = SeededGenerator(seed: 42), g2 = SeededGenerator(seed: 42)
        Augmentation().apply(&a, size: 48, rng: &g1)
        Augmentation().apply(&b, size: 48, rng: &g2)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, orig)
        XCTAssertTrue(a.allSatisfy { $0 >= 0 && $0 <= 1 })
        // a pure flip mirrors the image
        var flipOnly = Augmentation.none; flipOnly.flip = true
        var flipped = false
        for s in 0..<10 where !flipped {
            var f = orig; var g = SeededGenerator(seed: UInt64(s))
            flipOnly.apply(&f, size: 48, rng: &g)
            if f != orig {
                flipped = true
                for y in 0..<48 { for x in 0..<48 { XCTAssertEqual(f[y * 48 + x], orig[y * 48 + 47 - x], accuracy: 1e-5) } }
            }
        }
        XCTAssertTrue(flipped)
    }
}

final class ImageFolderTests: XCTestCase {
    /// Real PublicTest faces written as an image-folder copy (JPEG and PNG) load back with their
    /// labels and splits; PNG exactly, JPEG within compression error.
    func testImageFolderLayoutWithRealFaces() throws {
        let d = try SharedData.load().subset([.publicTest])
        let root = tempDir()
        var expected: [(label: Int, usage: Usage, png: Bool, pixels: [UInt8])] = []
        for i in 0..<14 {
            let label = Int(d.labels[i]), split = i % 2 == 0 ? "train" : "test"
            let dir = root.appendingPathComponent(split).appendingPathComponent(FERDataset.labels[label])
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let img = Image(width: 48, height: 48, channels: 1, pixels: d.image(i))
            let png = i % 3 == 0
            let name = String(format: "%03d.%@", i, png ? "png" : "jpg")
            try (png ? ImageCodec.encodePNG(img) : ImageCodec.encodeJPEG(img, quality: 95)).write(to: dir.appendingPathComponent(name))
            expected.append((label, split == "train" ? .training : .publicTest, png, img.pixels))
        }
        let loaded = try FERDataset.load(root.path)
        XCTAssertEqual(loaded.count, 14)
        XCTAssertEqual(loaded.subset([.training]).count, 7)
        // each loaded face matches one written face of the same label and split
        for i in 0..<loaded.count {
            let px = loaded.image(i)
            let best = expected.filter { $0.label == Int(loaded.labels[i]) && $0.usage == loaded.usage[i] }
                .map { e in (e, zip(e.pixels, px).map { abs(Int($0) - Int($1)) }.max()!) }
                .min { $0.1 < $1.1 }!
            XCTAssertLessThanOrEqual(best.1, best.0.png ? 0 : 40, "face \(i)")
        }
        // a folder that is not an emotion is refused by name
        try FileManager.default.createDirectory(at: root.appendingPathComponent("train/joy"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try FERDataset.load(root.path)) { XCTAssertTrue("\($0)".contains("\"joy\""), "\($0)") }
    }
}

/// Image headers the fuzzer broke (`fer fuzz image`): each is refused with an error naming the
/// problem, in printable text, without a crash.
final class ImageDecoderTests: XCTestCase {
    func testHostileHeadersGiveClearErrors() {
        func error(_ bytes: [UInt8]) -> String? {
            do { _ = try ImageCodec.decode(bytes, name: "face.img"); return nil } catch { return "\(error)" }
        }
        // PGM with dimensions of 30 digits: once an Int overflow trap, now a size error
        let pgm = Array("P5 999999999999999999999999999999 999999999999999999999999999999 255\n".utf8) + [UInt8](repeating: 7, count: 16)
        let e1 = error(pgm)
        XCTAssertNotNil(e1); XCTAssertTrue(e1?.hasPrefix("face.img: corrupt image") ?? false, e1 ?? "")
        // a real 2x2 PGM still decodes
        let ok = try? ImageCodec.decode(Array("P5\n# c\n2 2\n255\n".utf8) + [1, 2, 3, 4])
        XCTAssertEqual(ok?.pixels, [1, 2, 3, 4])
        // PNG whose chunk type is control bytes and whose length runs past the end: the message
        // names the chunk in printable characters
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += [0, 0, 0x10, 0, 0x01, 0x0A, 0x00, 0x7F] + [UInt8](repeating: 0, count: 8)
        let e2 = error(png) ?? ""
        XCTAssertTrue(e2.contains("truncated ???? chunk"), e2)
        XCTAssertTrue(e2.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7f }, "printable: \(e2)")
    }
}
