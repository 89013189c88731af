@testable import FaceDetect
import FERNet
import FERTraining
import Foundation
import XCTest

let cascadePath = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func publicTest() throws -> FERDataset {
    guard let path = FERDataset.sharedCopy(beside: packageRoot) else {
        throw XCTSkip("FER2013 not found beside the checkout (../shared/data/fer2013/fer2013.csv.gz) nor in $FER2013_CSV")
    }
    return try FERDataset.loadCSV(path).subset([.publicTest])
}

func cascade() throws -> HaarCascade {
    guard FileManager.default.fileExists(atPath: cascadePath) else { throw XCTSkip("opencv-data is not installed (\(cascadePath))") }
    return try HaarCascade(contentsOf: cascadePath)
}

func iou(_ a: DetectedBox, _ x: Int, _ y: Int, _ s: Int) -> Double {
    let ix = max(0, min(a.x + a.width, x + s) - max(a.x, x)), iy = max(0, min(a.y + a.height, y + s) - max(a.y, y))
    let inter = Double(ix * iy)
    return inter / (Double(a.width * a.height + s * s) - inter)
}

final class HaarCascadeTests: XCTestCase {
    func testReadsOpenCVsFrontalFaceCascade() throws {
        let c = try cascade()
        XCTAssertEqual(c.windowWidth, 24)
        XCTAssertEqual(c.windowHeight, 24)
        XCTAssertEqual(c.stageCount, 25)
    }

    /// Real PublicTest faces placed on a background are found where they were put, and nothing else is.
    func testFindsRealFacesWhereTheyArePlaced() throws {
        let d = try publicTest(), c = try cascade()
        var found = 0, placed = 0, falsePositives = 0
        for first in stride(from: 0, to: 48, by: 12) {
            let scene = FaceScene.grid(width: 800, height: 600, rows: Array(first..<(first + 12)), size: 110)
            let img = scene.render(d)
            let boxes = img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 800, height: 600, stride: 800) }
            placed += scene.placements.count
            found += scene.placements.filter { p in boxes.contains { iou($0, p.x, p.y, p.size) > 0.4 } }.count
            falsePositives += boxes.filter { b in !scene.placements.contains { iou(b, $0.x, $0.y, $0.size) > 0.2 } }.count
        }
        print("detected \(found) of \(placed) placed faces, \(falsePositives) false positives")
        // FER2013 faces are cropped tight (chin and forehead cut), which costs a Haar detector
        // some recall; 34 of these 48 are found at the defaults (35 with every window evaluated,
        // coarseStages 0).
        XCTAssertGreaterThanOrEqual(Double(found) / Double(placed), 0.70)
        XCTAssertLessThanOrEqual(falsePositives, placed / 10)
    }

    /// The eight-windows-at-a-time kernel gives exactly the raw detections of the one-window
    /// evaluator, at step 2 and step 1 levels, with and without coarse-to-fine, on an odd-sized
    /// frame (so the tail loop runs too), and the step-2 scans over integral images split by
    /// column parity give exactly those over row-major ones. Coarse-to-fine evaluates a subset
    /// of the full scan's windows, and keeps most of its raw detections.
    func testVectorKernelMatchesWindowByWindowEvaluation() throws {
        let d = try publicTest(), c = try cascade()
        let (w, h) = (797, 601)
        // faces of 40 px for the step-2 levels (windows of 30 and 46 px), of 110 px for the others
        let small = FaceScene.grid(width: w, height: h, rows: Array(0..<48), size: 40).render(d)
        let large = FaceScene.grid(width: w, height: h, rows: Array(0..<12), size: 110).render(d)
        var total = 0
        for coarse in [0, 1, 4] {
            var kept = 0, all = 0
            for factor in [1.25, 1.9, 3.8, 4.4] {
                let img = factor < 2 ? small : large
                let (v, s, full, rows) = img.withUnsafeBufferPointer {
                    (c.detectLevel(grey: $0.baseAddress!, width: w, height: h, stride: w, factor: factor, coarseStages: coarse),
                     c.detectLevel(grey: $0.baseAddress!, width: w, height: h, stride: w, factor: factor, vectorized: false,
                                   coarseStages: coarse),
                     c.detectLevel(grey: $0.baseAddress!, width: w, height: h, stride: w, factor: factor),
                     c.detectLevel(grey: $0.baseAddress!, width: w, height: h, stride: w, factor: factor, coarseStages: coarse,
                                   splitColumns: false))
                }
                // the same windows (coarse-to-fine finds them in another order when vectorised)
                func keys(_ b: [DetectedBox]) -> [[Int]] { b.map { [$0.y, $0.x, $0.width] }.sorted { $0.lexicographicallyPrecedes($1) } }
                XCTAssertTrue(keys(v) == keys(s), "level \(factor), coarse \(coarse): \(v.count) vectorised, \(s.count) one by one")
                XCTAssertTrue(keys(v) == keys(rows), "level \(factor), coarse \(coarse): \(v.count) split, \(rows.count) row-major")
                XCTAssertTrue(Set(v.map { [$0.x, $0.y] }).isSubset(of: Set(full.map { [$0.x, $0.y] })), "level \(factor), coarse \(coarse)")
                print("level \(factor), coarse-to-fine \(coarse): \(v.count) raw detections of the full scan's \(full.count)")
                total += v.count; kept += v.count; all += full.count
            }
            if coarse > 0 { XCTAssertGreaterThan(Double(kept), 0.8 * Double(all), "coarse \(coarse) keeps most raw detections") }
        }
        XCTAssertGreaterThan(total, 40, "the levels should hold raw face detections to compare")
    }

    /// Coarse-to-fine (the default) finds nearly every face the full scan finds, small faces
    /// (searched at the step-2 levels) and large ones, and no false ones.
    func testCoarseToFineKeepsTheFullScansFaces() throws {
        let d = try publicTest(), c = try cascade()
        var totals = [0, 0], placed = 0
        for size in [40, 64, 110] {
            var found = [0, 0]
            for first in [0, 24] {
                let scene = FaceScene.grid(width: 800, height: 600, rows: Array(first..<(first + 24)), size: size)
                let img = scene.render(d)
                placed += scene.placements.count
                for (i, coarse) in [0, DetectionParameters().coarseStages].enumerated() {
                    var p = DetectionParameters()
                    p.scaleFactor = 1.25; p.coarseStages = coarse
                    let boxes = img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 800, height: 600, stride: 800, parameters: p) }
                    found[i] += scene.placements.filter { pl in boxes.contains { iou($0, pl.x, pl.y, pl.size) > 0.4 } }.count
                    XCTAssertEqual(boxes.filter { b in !scene.placements.contains { iou(b, $0.x, $0.y, $0.size) > 0.2 } }.count, 0,
                                   "size \(size), coarse \(coarse): false faces")
                }
            }
            print("faces of \(size) px: \(found[0]) of 48 found by the full scan, \(found[1]) coarse-to-fine")
            XCTAssertGreaterThanOrEqual(Double(found[1]), 0.85 * Double(found[0]), "size \(size)")
            totals[0] += found[0]; totals[1] += found[1]
        }
        XCTAssertGreaterThanOrEqual(Double(totals[1]), 0.92 * Double(totals[0]))
        XCTAssertGreaterThan(totals[0], placed / 2, "the scenes should hold faces the cascade finds")
    }

    /// A cascade of two-node trees (not stumps) runs through the one-window evaluator and finds faces.
    func testTreeCascadeFindsFaces() throws {
        let path = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("opencv-data is not installed (\(path))") }
        let c = try HaarCascade(contentsOf: path), d = try publicTest()
        let scene = FaceScene.grid(width: 800, height: 600, rows: Array(0..<12), size: 110)
        let img = scene.render(d)
        let boxes = img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 800, height: 600, stride: 800) }
        let found = scene.placements.filter { p in boxes.contains { iou($0, p.x, p.y, p.size) > 0.4 } }.count
        XCTAssertGreaterThanOrEqual(found, 6, "alt2 found \(found) of 12")
    }

    /// A spread scan evaluates each window on exactly the pixels the full scan uses: over a cycle
    /// of phases the raw detections are the full scan's, window for window; with regions around
    /// the faces, every phase finds every face the full scan finds, and nothing else.
    func testSpreadScanIsTheFullScanSpreadOverFrames() throws {
        let d = try publicTest(), c = try cascade()
        let scene = FaceScene.grid(width: 1280, height: 720, rows: Array(24..<32), size: 150)
        let img = scene.render(d)
        var p = DetectionParameters()
        p.scaleFactor = 1.25; p.minSize = 45
        func key(_ b: DetectedBox) -> [Int] { [b.width, b.y, b.x] }
        let fullRaw = img.withUnsafeBufferPointer { c.detectRaw(grey: $0.baseAddress!, width: 1280, height: 720, stride: 1280, parameters: p) }
        let full = img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 1280, height: 720, stride: 1280, parameters: p) }
        XCTAssertGreaterThanOrEqual(full.count, 5)
        for period in [2, 3, 4, 9] {
            var union: [DetectedBox] = []
            for phase in 0..<period {
                var q = p
                q.plan = ScanPlan(period: period, phase: phase)
                union += img.withUnsafeBufferPointer { c.detectRaw(grey: $0.baseAddress!, width: 1280, height: 720, stride: 1280, parameters: q) }
                // with regions around the faces (expected a little off where they are)
                q.plan = ScanPlan(period: period, phase: phase, regions: full.map {
                    ScanRegion.around(x: Double($0.x + 4), y: Double($0.y - 3), width: Double($0.width), height: Double($0.height))
                })
                let raw = img.withUnsafeBufferPointer { c.detectRaw(grey: $0.baseAddress!, width: 1280, height: 720, stride: 1280, parameters: q) }
                XCTAssertEqual(Set(raw.map(key)).count, raw.count, "period \(period) phase \(phase): no window twice")
                XCTAssertTrue(Set(raw.map(key)).isSubset(of: Set(fullRaw.map(key))), "period \(period) phase \(phase): only the full scan's windows")
                let got = img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: 1280, height: 720, stride: 1280, parameters: q) }
                for f in full {
                    XCTAssertTrue(got.contains { iou($0, f.x, f.y, f.width) > 0.8 }, "period \(period) phase \(phase): \(f) not found again in \(got)")
                }
                XCTAssertEqual(got.count, full.count, "period \(period) phase \(phase): no extra faces")
            }
            XCTAssertEqual(union.map(key).sorted { $0.lexicographicallyPrecedes($1) }, fullRaw.map(key).sorted { $0.lexicographicallyPrecedes($1) },
                           "period \(period): the phases together evaluate every window once")
        }
    }

    func testBlankAndTinyImagesHaveNoFaces() throws {
        let c = try cascade()
        for (w, h) in [(640, 480), (23, 23), (1, 1)] {
            let img = [UInt8](repeating: 100, count: w * h)
            XCTAssertEqual(img.withUnsafeBufferPointer { c.detect(grey: $0.baseAddress!, width: w, height: h, stride: w) }, [])
        }
    }

    func testGroupingMergesNeighboursAndDropsLoners() {
        var raw: [DetectedBox] = []
        for d in 0..<5 { raw.append(DetectedBox(x: 100 + d, y: 50 - d, width: 60 + d, height: 60 + d)) }
        raw.append(DetectedBox(x: 400, y: 300, width: 40, height: 40))   // alone
        let g = HaarCascade.group(raw, minNeighbors: 3, eps: 0.2)
        XCTAssertEqual(g.count, 1)
        XCTAssertEqual(g[0], DetectedBox(x: 102, y: 48, width: 62, height: 62, neighbors: 5))
    }

    /// A box mostly inside a larger one goes; side-by-side and slightly overlapping boxes stay.
    func testNestedBoxesAreSuppressed() {
        let big = DetectedBox(x: 100, y: 100, width: 200, height: 200, neighbors: 5)
        let inner = DetectedBox(x: 150, y: 180, width: 80, height: 80, neighbors: 9)
        let apart = DetectedBox(x: 320, y: 100, width: 150, height: 150, neighbors: 4)
        let touching = DetectedBox(x: 280, y: 300, width: 100, height: 100, neighbors: 4)   // 20x0 overlap
        let kept = HaarCascade.suppressNested([inner, big, apart, touching], overlap: 0.6)
        XCTAssertEqual(Set(kept.map(\.x)), [100, 320, 280])
    }

    func testMalformedCascadesAreRefusedByName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cascades-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cases: [(String, String)] = [
            ("<opencv_storage><cascade><featureType>HAAR</featureType>", "not valid XML"),
            ("<?xml version=\"1.0\"?><opencv_storage></opencv_storage>", "not an OpenCV Haar cascade"),
            ("<opencv_storage><c><featureType>LBP</featureType><stages/></c></opencv_storage>", "featureType must be HAAR"),
            ("<opencv_storage><c><featureType>HAAR</featureType><width>24</width><height>24</height><stages><_><stageThreshold>x</stageThreshold></_></stages><features/></c></opencv_storage>",
             "\"x\" in <stageThreshold> is not a number"),
            ("<opencv_storage><c><featureType>HAAR</featureType><width>24</width><height>24</height><stages><_/></stages><features><_><rects><_>0 0 30 3 1.</_></rects></_></features></c></opencv_storage>",
             "rect outside the 24x24 window"),
            ("<opencv_storage><c><featureType>HAAR</featureType><width>24</width><height>24</height><stages><_/></stages><features><_><rects><_>0 0 3 3 1.</_></rects><tilted>1</tilted></_></features></c></opencv_storage>",
             "tilted"),
        ]
        for (i, (text, why)) in cases.enumerated() {
            let f = dir.appendingPathComponent("c\(i).xml")
            try text.write(to: f, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try HaarCascade(contentsOf: f.path)) { e in
                XCTAssertTrue("\(e)".contains(why) && "\(e)".contains(f.path), "\(e)")
            }
        }
        XCTAssertThrowsError(try HaarCascade(contentsOf: "/nonexistent.xml")) { XCTAssertTrue("\($0)".contains("not found")) }
    }
}
