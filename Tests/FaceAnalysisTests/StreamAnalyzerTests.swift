@testable import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation
import XCTest

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let shippedModel = packageRoot.appendingPathComponent("Models/fernet.json")

/// FaceAnalysis on raw frames: no GStreamer, no pipeline.
final class StreamAnalyzerTests: XCTestCase {
    func publicTest() throws -> FERDataset {
        guard let d = try FERDataset.sharedPublicTest(beside: packageRoot) else {
            throw XCTSkip("FER2013 not found beside the checkout (../shared/data/fer2013/fer2013.csv.gz) nor in $FER2013_CSV: these tests build frames from its faces")
        }
        return d
    }

    func tools() throws -> (FacialExpressionModel, HaarCascade) {
        guard FileManager.default.fileExists(atPath: AnalysisSettings.defaultCascade) else {
            throw XCTSkip("no Haar cascade at \(AnalysisSettings.defaultCascade) (Debian's opencv-data)")
        }
        return (try FacialExpressionModel.shared(contentsOf: shippedModel), try HaarCascade(contentsOf: AnalysisSettings.defaultCascade))
    }

    /// A clip of six drifting faces at 30 fps: every face gets a track on the first frame and keeps
    /// its id on every frame after; the work is spread as the settings say (each analysed frame
    /// searches one band for new faces, classifies about half the tracks).
    func testTracksKeepTheirIdsAcrossAClip() throws {
        let d = try publicTest()
        let (model, cascade) = try tools()
        let scene = FaceScene.grid(width: 640, height: 480, rows: Array(0..<6), size: 130)
        let a = StreamAnalyzer(frameDuration: 1 / 30.0)
        var settings = AnalysisSettings()
        settings.skipLate = false
        var ids: [Set<Int>] = []
        for t in 0..<20 {
            let frame = scene.moved(frame: t).render(d, phase: t)
            let o = frame.withUnsafeBufferPointer { buf in
                a.process(640, 480, time: Double(t) / 30, settings: settings, model: model, detector: settings.haar(cascade)) {
                    LumaPlane(pixels: buf.baseAddress!, width: 640, height: 480, stride: 640)
                }
            }
            XCTAssertEqual(o.decision, .analyse)
            for f in o.faces {
                XCTAssertEqual(f.probabilities.count, model.labels.count)
                XCTAssertEqual(f.probabilities.reduce(0, +), 1, accuracy: 1e-3)
            }
            ids.append(Set(o.faces.map(\.id)))
        }
        XCTAssertGreaterThanOrEqual(ids[0].count, 4, "most of the six faces found on the first frame")
        for (t, s) in ids.enumerated().dropFirst() { XCTAssertTrue(ids[0].isSubset(of: s), "frame \(t): the first frame's ids are kept: \(s)") }
        XCTAssertLessThanOrEqual(ids.last!.count, 6)
    }

    /// detect-interval 3: two frames in three only follow the tracks, and their faces move with them.
    func testDetectIntervalAnalysesOneFrameInThree() throws {
        let d = try publicTest()
        let (model, cascade) = try tools()
        let scene = FaceScene.grid(width: 480, height: 360, rows: Array(6..<9), size: 120)
        var s = AnalysisSettings()
        s.detectInterval = 3; s.skipLate = false
        let a = StreamAnalyzer(frameDuration: 1 / 30.0)
        var decisions: [AnalysisScheduler.Decision] = []
        for t in 0..<9 {
            let frame = scene.render(d)
            let o = frame.withUnsafeBufferPointer { buf in
                a.process(480, 360, time: Double(t) / 30, settings: s, model: model, detector: s.haar(cascade)) {
                    LumaPlane(pixels: buf.baseAddress!, width: 480, height: 360, stride: 480)
                }
            }
            decisions.append(o.decision)
            XCTAssertGreaterThanOrEqual(o.faces.count, 2, "frame \(t): the tracked faces are shown")
        }
        XCTAssertEqual(decisions, [.analyse, .interval, .interval, .analyse, .interval, .interval, .analyse, .interval, .interval])
    }

    /// A live source: the analysis runs beside the stream, so the first frame shows no face yet
    /// and a later one shows the faces it found.
    func testLiveAnalysesRunBesideTheStream() throws {
        let d = try publicTest()
        let (model, cascade) = try tools()
        let frame = FaceScene.grid(width: 480, height: 360, rows: Array(6..<9), size: 120).render(d)
        let s = AnalysisSettings()
        let a = StreamAnalyzer(frameDuration: 1 / 30.0)
        func push(_ t: Int) -> StreamAnalyzer.Outcome {
            frame.withUnsafeBufferPointer { buf in
                a.process(480, 360, time: Double(t) / 30, live: true, settings: s, model: model, detector: s.haar(cascade)) {
                    LumaPlane(pixels: buf.baseAddress!, width: 480, height: 360, stride: 480)
                }
            }
        }
        let first = push(0)
        XCTAssertEqual(first.decision, .analyse)
        XCTAssertTrue(first.faces.isEmpty, "the frame does not wait for its analysis")
        var t = 1, found: StreamAnalyzer.Outcome?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let o = push(t); t += 1
            if !o.faces.isEmpty { found = o; break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let o = try XCTUnwrap(found, "the analysis beside the stream finished within 60 s")
        XCTAssertGreaterThanOrEqual(o.faces.count, 2)
        XCTAssertNotNil(o.analysisSeconds, "the frame that collects an analysis reports its time")
    }

    /// A still picture's faces are those of a new stream's first frame, and the detection alone
    /// finds the same boxes.
    func testPictureIsTheFirstFrameOfAStream() throws {
        let d = try publicTest()
        let (model, cascade) = try tools()
        let grey = FaceScene.grid(width: 640, height: 480, rows: Array(0..<4), size: 144).render(d)
        let s = AnalysisSettings()
        let (still, boxes, first) = grey.withUnsafeBufferPointer { buf -> ([FaceResult], [DetectedBox], [FaceResult]) in
            let luma = LumaPlane(pixels: buf.baseAddress!, width: 640, height: 480, stride: 640)
            var live = s; live.skipLate = false
            return (FrameAnalysis.picture(luma, settings: s, model: model, detector: s.haar(cascade)),
                    FrameAnalysis.detect(luma, settings: s, detector: s.haar(cascade)),
                    StreamAnalyzer().process(640, 480, time: 5, settings: live, model: model, detector: s.haar(cascade)) { luma }.faces)
        }
        XCTAssertGreaterThanOrEqual(still.count, 3)
        XCTAssertEqual(still, first)
        XCTAssertEqual(Set(still.map { [$0.x, $0.y, $0.width, $0.height] }), Set(boxes.map { [$0.x, $0.y, $0.width, $0.height] }))
    }

    /// search-tilt's schedule: a first frame (or still) looks three ways; with nothing tracked one
    /// way an analysis in turns; with faces tracked upright always and turned every other
    /// whole-frame search; the cascade, or search-tilt 0, upright only.
    func testTiltedSearchTakesTurns() {
        var s = AnalysisSettings()
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 0, spread: 4, tracked: nil), [0, -25, 25])
        XCTAssertEqual((1...8).map { StreamAnalyzer.angles(s, analysis: $0, spread: 1, tracked: nil) },
                       [[0], [0], [0], [0, -25], [0], [0], [0], [0, 25]])
        // spread 4: the whole frame upright on analyses 4, 8, 12, ...; turned half-way through every fourth period
        XCTAssertEqual((4..<44).map { StreamAnalyzer.angles(s, analysis: $0, spread: 4, tracked: [2, -40]) },
                       (4..<44).map { $0 % 4 == 0 ? [0] : $0 == 10 || $0 == 42 ? [-25] : $0 == 26 ? [25] : [] })
        // no spread search: upright every time, turned every other, and a tracked tilted face at the turn nearest its tilt
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 2, spread: 1, tracked: [31, -3]), [0, 25])
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 1, spread: 1, tracked: [-31]), [0, -25])
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 3, spread: 1, tracked: [-31]), [0, 25, -25])
        XCTAssertEqual(StreamAnalyzer.tilt(landmarks: [10, 10, 20, 20, 0, 0, 0, 0, 0, 0]), 45, accuracy: 1e-9)
        XCTAssertEqual(StreamAnalyzer.tilt(landmarks: []), 0)
        s.searchTilt = 0
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 0, spread: 1, tracked: nil), [0])
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 5, spread: 4, tracked: [0]), [], "regions only")
        s.searchTilt = 25; s.detector = .haar
        XCTAssertEqual(StreamAnalyzer.angles(s, analysis: 1, spread: 1, tracked: nil), [0])
    }

    /// Heads tilted 40 degrees (beyond what YuNet finds upright) in a 30 fps clip: found on the
    /// first frame, and from then on detected on nearly every frame under the same id, as the
    /// spread search looks at each tracked face's region turned by its own tilt.
    func testTiltedHeadsAreTrackedAtTheirTilt() throws {
        let d = try publicTest()
        let model = try FacialExpressionModel.shared(contentsOf: shippedModel)
        let yunet = packageRoot.appendingPathComponent("Models/face_detection_yunet_2023mar.onnx").path
        var settings = AnalysisSettings()
        settings.skipLate = false; settings.scanSpread = 4
        let detector = settings.yunet(try YuNetDetector(path: yunet))
        let (W, H) = (800, 600)
        let a = StreamAnalyzer(frameDuration: 1 / 30.0)
        var firstIds: Set<Int> = [], detections: [Int: Int] = [:]
        let frames = 16
        for t in 0..<frames {
            let scene = FaceScene.grid(width: W, height: H, rows: Array(0..<4), size: 150).moved(frame: t, radius: 6)
            let flat = scene.render(d, phase: t)
            var img = flat
            for (i, p) in scene.placements.enumerated() {
                // each face turned about its centre, 40 degrees one way or the other
                let a = (i % 2 == 0 ? 40.0 : -40.0) * .pi / 180, (c, s) = (cos(a), sin(a))
                let (cx, cy, r) = (Double(p.x) + Double(p.size) / 2, Double(p.y) + Double(p.size) / 2, Double(p.size) * 0.75)
                for y in max(0, Int(cy - r))..<min(H, Int(cy + r)) { for x in max(0, Int(cx - r))..<min(W, Int(cx + r)) {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    guard dx * dx + dy * dy <= r * r else { continue }
                    img[y * W + x] = flat.withUnsafeBufferPointer {
                        FaceCrop.sample($0.baseAddress!, width: W, height: H, stride: W, x: cx + c * dx + s * dy, y: cy - s * dx + c * dy)
                    }
                } }
            }
            let o = img.withUnsafeBufferPointer { buf in
                a.process(W, H, time: Double(t) / 30, settings: settings, model: model, detector: detector) {
                    LumaPlane(pixels: buf.baseAddress!, width: W, height: H, stride: W)
                }
            }
            if t == 0 {
                XCTAssertEqual(settings.stillAngles, [0, -25, 25], "search-tilt is on by default")
                firstIds = Set(o.faces.map(\.id))
                XCTAssertGreaterThanOrEqual(firstIds.count, 3, "most of the four tilted faces found on the first frame")
            } else {
                XCTAssertTrue(firstIds.isSubset(of: Set(o.faces.map(\.id))), "frame \(t): the first frame's ids are kept")
                for tr in a.tracks where firstIds.contains(tr.id) && tr.detected { detections[tr.id, default: 0] += 1 }
            }
        }
        for id in firstIds {
            XCTAssertGreaterThanOrEqual(detections[id] ?? 0, frames - 3, "track \(id) detected on nearly every frame: \(detections)")
        }
    }

    /// `Parallelism.withThreads` holds for the calling thread only.
    func testThreadLimitIsPerThread() {
        let process = Parallelism.threads
        Parallelism.withThreads(1) {
            XCTAssertEqual(Parallelism.threads, 1)
            final class Seen: @unchecked Sendable { var threads = 0 }
            let elsewhere = Seen(), done = DispatchSemaphore(value: 0)
            Thread { elsewhere.threads = Parallelism.threads; done.signal() }.start()
            done.wait()
            XCTAssertEqual(elsewhere.threads, process, "another thread keeps the process's count")
            Parallelism.withThreads(3) { XCTAssertEqual(Parallelism.threads, 3) }
            XCTAssertEqual(Parallelism.threads, 1)
        }
        XCTAssertEqual(Parallelism.threads, process)
    }
}
