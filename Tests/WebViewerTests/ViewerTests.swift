import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation
import WebViewer
import XCTest

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let shippedModel = packageRoot.appendingPathComponent("Models/fernet.json")
let cascadePath = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

enum Shared {
    nonisolated(unsafe) static var data: FERDataset?
    nonisolated(unsafe) static var analyzer: ImageAnalyzer?
}

/// FER2013's path, or a skip saying where it was looked for.
func fer2013Path() throws -> String {
    guard let path = FERDataset.sharedCopy(beside: packageRoot) else {
        throw XCTSkip("FER2013 not found beside the checkout (../shared/data/fer2013/fer2013.csv.gz) nor in $FER2013_CSV: these tests use its faces")
    }
    return path
}

func publicTest() throws -> FERDataset {
    if let d = Shared.data { return d }
    let d = try FERDataset.loadCSV(try fer2013Path()).subset([.publicTest])
    Shared.data = d
    return d
}

func analyzer() throws -> ImageAnalyzer {
    if let a = Shared.analyzer { return a }
    guard FileManager.default.fileExists(atPath: cascadePath) else { throw XCTSkip("\(cascadePath) missing: install opencv-data") }
    let a = ImageAnalyzer(model: try FacialExpressionModel(contentsOf: shippedModel), cascade: try HaarCascade(contentsOf: cascadePath))
    Shared.analyzer = a
    return a
}

/// Six PublicTest faces of 130 px on a 640x480 background, and where they are; with `frame`, the
/// scene at that frame of the moving clip (`fer serve --source test`'s).
func sceneImage(frame t: Int? = nil) throws -> (Image, FaceScene) {
    let d = try publicTest()
    var scene = FaceScene.grid(width: 640, height: 480, rows: Array(12..<18), size: 130)
    if let t { scene = scene.moved(frame: t) }
    return (Image(width: 640, height: 480, channels: 1, pixels: scene.render(d, phase: t ?? 0)), scene)
}

final class EmotionLedgerTests: XCTestCase {
    let labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

    func face(_ id: Int?, _ emotion: String) -> FaceReading {
        FaceReading(id: id, box: FaceBox(x: 0, y: 0, width: 10, height: 10), emotion: emotion, confidence: 0.9, probabilities: [:])
    }

    func testTimelineHasOnePointPerCompletedSecondWithShares() {
        let ledger = EmotionLedger(labels: labels, start: 1000)
        var ticks: [TimelinePoint] = []
        // second 1000: 3 frames, faces happy, happy, sad / happy ; second 1001: 2 frames of one neutral face
        ticks += ledger.record(FrameReading(frame: 0, streamTime: 0, wallTime: 1000.1, faces: [face(1, "happy"), face(2, "sad")]))
        ticks += ledger.record(FrameReading(frame: 1, streamTime: 0.03, wallTime: 1000.5, faces: [face(1, "happy")]))
        ticks += ledger.record(FrameReading(frame: 2, streamTime: 0.06, wallTime: 1000.9, faces: []))
        XCTAssertTrue(ticks.isEmpty, "second 1000 is not complete yet")
        ticks += ledger.record(FrameReading(frame: 3, streamTime: 0.1, wallTime: 1001.2, faces: [face(3, "neutral")]))
        XCTAssertEqual(ticks.count, 1)
        XCTAssertEqual(ticks[0].time, 1000)
        XCTAssertEqual(ticks[0].frames, 3)
        XCTAssertEqual(ticks[0].faces, 3)
        XCTAssertEqual(ticks[0].shares[3], 2.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(ticks[0].shares[4], 1.0 / 3, accuracy: 1e-9)
        ticks += ledger.record(FrameReading(frame: 4, streamTime: 0.13, wallTime: 1003.0, faces: []))
        XCTAssertEqual(ledger.timeline(seconds: 600).map(\.time), [1000, 1001])
        XCTAssertEqual(ledger.timeline(seconds: 1).map(\.time), [1001])
        XCTAssertEqual(ledger.timeline(seconds: 600)[1].shares[6], 1)
    }

    func testSummarySharesPerTrackAndOverall() {
        let ledger = EmotionLedger(labels: labels, start: 0)
        for i in 0..<10 {
            ledger.record(FrameReading(frame: i, streamTime: nil, wallTime: Double(i) * 0.1,
                                       faces: [face(7, i < 7 ? "happy" : "surprise"), face(8, "sad")]))
        }
        let s = ledger.summary(now: 2)
        XCTAssertEqual(s.frames, 10)
        XCTAssertEqual(s.faceFrames, 20)
        XCTAssertEqual(s.tracks.map(\.id), [7, 8])
        XCTAssertEqual(s.tracks[0].shares["happy"]!, 0.7, accuracy: 1e-9)
        XCTAssertEqual(s.tracks[0].shares["surprise"]!, 0.3, accuracy: 1e-9)
        XCTAssertEqual(s.tracks[0].emotion, "surprise", "the track's latest emotion")
        XCTAssertEqual(s.tracks[1].shares["sad"]!, 1)
        XCTAssertEqual(s.overall["sad"]!, 0.5, accuracy: 1e-9)
        XCTAssertEqual(s.overall.values.reduce(0, +), 1, accuracy: 1e-9)
    }

    func testTracksAreBoundedOldestFirst() {
        let ledger = EmotionLedger(labels: labels, historySeconds: 5, maxTracks: 3, start: 0)
        for i in 0..<20 { ledger.record(FrameReading(frame: i, streamTime: nil, wallTime: Double(i), faces: [face(i, "happy")])) }
        let s = ledger.summary()
        XCTAssertEqual(s.tracks.map(\.id), [17, 18, 19])
        XCTAssertEqual(s.tracksDropped, 17)
        XCTAssertEqual(s.faceFrames, 20, "dropped tracks still count overall")
        XCTAssertEqual(ledger.timeline(seconds: 600).count, 5, "history is bounded too")
    }
}

final class BroadcastTests: XCTestCase {
    func testSlowSubscriberKeepsOnlyTheNewestAndOthersGetEverything() async {
        let b = Broadcast<Int>(buffer: 2)
        let slow = b.subscribe(), fast = b.subscribe()
        var got: [Int] = []
        let reader = Task { var out: [Int] = []; for await v in fast.stream { out.append(v); if v == 9 { break } }; return out }
        for i in 0..<10 { b.publish(i); try? await Task.sleep(nanoseconds: 2_000_000) }
        got = await reader.value
        XCTAssertEqual(got, Array(0..<10))
        b.unsubscribe(fast.id)
        b.finish()
        var slowGot: [Int] = []
        for await v in slow.stream { slowGot.append(v) }
        XCTAssertEqual(slowGot, [8, 9], "a subscriber that never read holds only the newest 2")
        XCTAssertEqual(b.count, 0)
    }
}

final class VideoSourceTests: XCTestCase {
    func testSourcesResolve() throws {
        let rtsp = try VideoSource.resolve("rtsp://camera.local:8554/stream")
        XCTAssertTrue(rtsp.launch.hasPrefix("uridecodebin uri="))
        XCTAssertTrue(rtsp.reconnects); XCTAssertFalse(rtsp.loops)
        let frag = try VideoSource.resolve("videotestsrc pattern=ball ! video/x-raw,width=320")
        XCTAssertEqual(frag.launch, "videotestsrc pattern=ball ! video/x-raw,width=320")
        let file = try VideoSource.resolve(shippedModel.path)   // any existing file
        XCTAssertTrue(file.loops)
        XCTAssertTrue(file.launch.contains("file://"))
        XCTAssertThrowsError(try VideoSource.resolve("/no/such/clip.mp4")) { XCTAssertTrue("\($0)".contains("no such video file")) }
        XCTAssertThrowsError(try VideoSource.resolve("/dev/video97")) { XCTAssertTrue("\($0)".contains("no such camera")) }
        XCTAssertThrowsError(try VideoSource.resolve("  "))
    }

    func testI420LayoutMatchesGStreamer() {
        // GStreamer: Y rows padded to 4 bytes, chroma rows to 4 bytes, chroma planes (h+1)/2 rows
        XCTAssertEqual(I420Frame.size(width: 640, height: 480), 640 * 480 * 3 / 2)
        XCTAssertEqual(I420Frame.size(width: 17, height: 13), 20 * 13 + 2 * 12 * 7)
        // A grey frame (Y=200, U=V=128) in GStreamer's layout decodes to grey 200 at every size,
        // odd ones included (TurboJPEG pads planes to 2x2 blocks; ASan caught a read past the end).
        for (w, h) in [(17, 13), (16, 12), (1, 1), (641, 481), (2, 3)] {
            let ys = (w + 3) & ~3
            var bytes = [UInt8](repeating: 128, count: I420Frame.size(width: w, height: h))
            for y in 0..<h { for x in 0..<w { bytes[y * ys + x] = 200 } }
            let jpeg = I420Frame(width: w, height: h, bytes: bytes).jpeg(quality: 90)
            XCTAssertNotNil(jpeg, "\(w)x\(h)")
            let img = try? ImageCodec.decode(jpeg ?? [])
            XCTAssertEqual(img?.width, w); XCTAssertEqual(img?.height, h)
            if let img {
                let px = img.pixels
                XCTAssertLessThanOrEqual(px.map { abs(Int($0) - 200) }.max() ?? 99, 3, "\(w)x\(h) decodes grey 200")
            }
        }
        XCTAssertNil(I420Frame(width: 17, height: 13, bytes: [1, 2, 3]).jpeg(quality: 80), "a short buffer is refused, not read past")
    }
}

final class ImageAnalyzerTests: XCTestCase {
    func testFindsAndReadsTheFacesOfAPicture() throws {
        let a = try analyzer()
        let (img, scene) = try sceneImage()
        for (name, bytes) in [("jpeg", [UInt8](try ImageCodec.encodeJPEG(img, quality: 90))), ("png", [UInt8](ImageCodec.encodePNG(img)))] {
            let r = try a.analyze(bytes)
            XCTAssertEqual(r.width, 640); XCTAssertEqual(r.height, 480)
            var matched = Set<Int>()
            for f in r.faces {
                let cx = f.box.x + f.box.width / 2, cy = f.box.y + f.box.height / 2
                if let k = scene.placements.firstIndex(where: { abs($0.x + $0.size / 2 - cx) < $0.size / 3 && abs($0.y + $0.size / 2 - cy) < $0.size / 3 }) {
                    matched.insert(k)
                }
                XCTAssertEqual(f.probabilities.values.reduce(0, +), 1, accuracy: 1e-3)
                XCTAssertEqual(f.probabilities[f.emotion]!, f.confidence, accuracy: 1e-9)
                XCTAssertEqual(f.probabilities.values.max()!, f.confidence, accuracy: 1e-9)
                XCTAssertNil(f.id)
            }
            XCTAssertGreaterThanOrEqual(matched.count, 5, "\(name): faces found at \(r.faces.map(\.box)), placed at \(scene.placements.map { ($0.x, $0.y) })")
            XCTAssertLessThanOrEqual(r.faces.count, 7, "\(name): no spurious faces")
        }
    }

    func testWholeImageIsClassifiedAsOneFaceLikeTheModel() throws {
        let a = try analyzer()
        let d = try publicTest()
        let face = d.image(20)
        let png = [UInt8](ImageCodec.encodePNG(Image(width: 48, height: 48, channels: 1, pixels: face)))
        let r = try a.analyze(png, wholeImage: true)
        XCTAssertEqual(r.faces.count, 1)
        let direct = a.model.predict(face: face, flipTTA: a.settings.flipTTA)   // the element's default: with flip TTA
        for (k, l) in a.model.labels.enumerated() { XCTAssertEqual(r.faces[0].probabilities[l]!, Double(direct[k]), accuracy: 1e-4) }
        XCTAssertEqual(r.faces[0].box, FaceBox(x: 0, y: 0, width: 48, height: 48))
    }

    func testBadPicturesGetTheRightError() throws {
        let a = try analyzer()
        func status(_ bytes: [UInt8]) -> Int? {
            do { _ = try a.analyze(bytes); return nil } catch let e as AnalysisError { return e.status } catch { return -1 }
        }
        XCTAssertEqual(status(Array("hello, not an image".utf8)), 415)
        XCTAssertEqual(status([]), 415)
        let (img, _) = try sceneImage()
        let jpeg = [UInt8](try ImageCodec.encodeJPEG(img, quality: 90))
        XCTAssertEqual(status(Array(jpeg.prefix(200))), 400, "a truncated JPEG")
        let png = [UInt8](ImageCodec.encodePNG(img))
        var flipped = png; for i in stride(from: 100, to: flipped.count, by: 97) { flipped[i] ^= 0x5a }
        XCTAssertEqual(status(flipped), 400, "a corrupted PNG")
        // a PNG header that claims 20000x20000 pixels is refused before anything is allocated
        let big = [UInt8](ImageCodec.encodePNG(Image(width: 1, height: 1, channels: 1, pixels: [0])))
        var claim = big
        for (o, v) in [(16, 20000), (20, 20000)] { for s in 0..<4 { claim[o + s] = UInt8((v >> (24 - 8 * s)) & 0xff) } }
        XCTAssertEqual(status(claim), 413)
    }
}
