import FaceTracking
import Foundation
import XCTest

/// Probabilities with `p` on class k and the rest spread evenly.
func peaked(_ k: Int, _ p: Float, classes: Int = 7) -> [Float] {
    (0..<classes).map { $0 == k ? p : (1 - p) / Float(classes - 1) }
}

func box(_ x: Double, _ y: Double, _ s: Double) -> TrackBox { TrackBox(x: x, y: y, width: s, height: s) }

final class FaceTrackerTests: XCTestCase {
    /// Two faces moving across the frame keep their ids through detection gaps (every third frame
    /// detected) and a run of missed detections shorter than `hold`.
    func testIdsSurviveGapsAndMisses() {
        let tr = FaceTracker()
        var ids: Set<[Int]> = []
        for f in 0..<90 {
            let t = Double(f) / 30
            let a = box(50 + 4 * Double(f), 100, 80), b = box(500 - 3 * Double(f), 300, 100)
            if f % 3 == 0 {
                var dets = [TrackDetection(box: b, probabilities: peaked(3, 0.8))]
                if !(30..<45).contains(f) { dets.append(TrackDetection(box: a, probabilities: peaked(6, 0.7))) }   // a missed for 0.5 s
                tr.update(dets, at: t)
            } else {
                tr.predict(at: t)
            }
            XCTAssertEqual(tr.tracks.count, 2, "frame \(f)")
            ids.insert(tr.tracks.map(\.id).sorted())
        }
        XCTAssertEqual(ids, [[1, 2]], "the same two ids throughout")
    }

    /// Between detections, predicted boxes follow a steadily moving face to within a few pixels.
    func testPredictionFollowsMotion() {
        let tr = FaceTracker()
        var worst = 0.0
        for f in 0..<60 {
            let t = Double(f) / 30, truth = box(100 + 5 * Double(f), 80 + 2 * Double(f), 90)
            if f % 4 == 0 { tr.update([TrackDetection(box: truth, probabilities: peaked(0, 0.9))], at: t) } else { tr.predict(at: t) }
            if f >= 8 { worst = max(worst, abs(tr.tracks[0].box.x - truth.x), abs(tr.tracks[0].box.y - truth.y)) }
        }
        XCTAssertLessThan(worst, 2, "prediction error \(worst) px")
    }

    /// A detection without probabilities (the face was not classified this time) moves its track
    /// and keeps it alive, leaves its probabilities and label as they were, and never starts a
    /// track; the next classification is weighed by the time since the last one.
    func testUnclassifiedDetectionsMoveTracksButStartNone() {
        var c = TrackerConfiguration(); c.smoothing = 0.4
        let tr = FaceTracker(configuration: c)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: peaked(3, 0.9))], at: 0)
        let before = tr.tracks[0].probabilities
        tr.update([TrackDetection(box: box(110, 104, 80), probabilities: []),
                   TrackDetection(box: box(400, 300, 80), probabilities: [])], at: 0.5)
        XCTAssertEqual(tr.tracks.count, 1, "an unclassified detection starts no track")
        XCTAssertEqual(tr.tracks[0].box, box(110, 104, 80))
        XCTAssertEqual(tr.tracks[0].probabilities, before)
        XCTAssertEqual(tr.tracks[0].label, 3)
        XCTAssertEqual(tr.tracks[0].lastSeen, 0.5)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: [])], at: 1.0)   // still alive past hold (0.7 s)
        XCTAssertEqual(tr.tracks.count, 1)
        // classified again 1.2 s after the first classification: weight 1 - exp(-1.2 / 0.4)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: peaked(0, 0.9))], at: 1.2)
        let a = Float(1 - exp(-1.2 / 0.4))
        XCTAssertEqual(tr.tracks[0].probabilities[0], before[0] + a * (0.9 - before[0]), accuracy: 1e-5)
    }

    /// A classification of one view is folded as the mean of it and the track's latest of the
    /// other view (views taken in turns average like both taken at once); a classification
    /// without views stands alone and clears the ones kept.
    func testOneViewIsPairedWithTheLatestOfTheOther() {
        var c = TrackerConfiguration(); c.smoothing = 0   // the label and probabilities are the latest fold
        let tr = FaceTracker(configuration: c)
        let seen = peaked(3, 0.9), mirrored = peaked(3, 0.5), mirrored2 = peaked(5, 0.8), seen2 = peaked(5, 0.6)
        func mean(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { 0.5 * ($0 + $1) } }
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: mean(seen, mirrored), views: [0: seen, 1: mirrored])], at: 0)
        XCTAssertEqual(tr.tracks[0].probabilities, mean(seen, mirrored))
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: mirrored2, views: [1: mirrored2])], at: 0.1)
        XCTAssertEqual(tr.tracks[0].probabilities, mean(seen, mirrored2), "the new mirror view with the kept as-seen one")
        XCTAssertEqual(tr.tracks[0].classifications, 2)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: seen2, views: [0: seen2])], at: 0.2)
        XCTAssertEqual(tr.tracks[0].probabilities, mean(seen2, mirrored2))
        XCTAssertEqual(tr.tracks[0].label, 5)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: seen)], at: 0.3)
        XCTAssertEqual(tr.tracks[0].probabilities, seen, "no views: the probabilities alone")
        XCTAssertTrue(tr.tracks[0].views.isEmpty)
        tr.update([TrackDetection(box: box(100, 100, 80), probabilities: mirrored, views: [1: mirrored])], at: 0.4)
        XCTAssertEqual(tr.tracks[0].probabilities, mirrored, "nothing of the other view to pair with")
    }

    /// Two faces crossing paths (one passing just above the other) come out with their own ids.
    func testCrossingFacesKeepTheirIds() {
        let tr = FaceTracker()
        var idOfLeftStarter = 0
        for f in 0..<60 {
            let t = Double(f) / 30
            let a = box(100 + 8 * Double(f), 200, 90), b = box(580 - 8 * Double(f), 240, 90)
            tr.update([TrackDetection(box: a, probabilities: peaked(1, 0.9)), TrackDetection(box: b, probabilities: peaked(2, 0.9))], at: t)
            if f == 0 { idOfLeftStarter = tr.tracks.min { $0.box.x < $1.box.x }!.id }
        }
        XCTAssertEqual(tr.tracks.count, 2)
        // at the end the face that started on the left is on the right
        XCTAssertEqual(tr.tracks.max { $0.box.x < $1.box.x }!.id, idOfLeftStarter)
    }

    /// A face gone for longer than `hold` (and `minMissedPasses` detection passes) ends its track;
    /// a face that appears later gets a new id.
    func testTracksEndAndIdsAreNotReused() {
        let tr = FaceTracker()
        tr.update([TrackDetection(box: box(10, 10, 50), probabilities: peaked(0, 0.9))], at: 0)
        tr.update([], at: 0.5)
        XCTAssertEqual(tr.tracks.count, 1, "still held")
        tr.update([], at: 0.8)
        XCTAssertEqual(tr.tracks.count, 1, "past hold, but only the second pass without it")
        tr.update([], at: 0.85)
        XCTAssertEqual(tr.tracks.count, 0, "gone after hold and three passes")
        tr.update([TrackDetection(box: box(10, 10, 50), probabilities: peaked(0, 0.9))], at: 1.0)
        XCTAssertEqual(tr.tracks.map(\.id), [2])
        // at 30 detection passes a second, `hold` decides: gone 0.7 s after the last sighting
        let fast = FaceTracker()
        fast.update([TrackDetection(box: box(10, 10, 50), probabilities: peaked(0, 0.9))], at: 0)
        var end = 0.0
        for f in 1...40 where !fast.tracks.isEmpty { end = Double(f) / 30; fast.update([], at: end) }
        XCTAssertEqual(end, 22.0 / 30, accuracy: 1e-9, "the first pass more than 0.7 s after")
    }

    /// On a slow source (2 detection passes a second, where `hold` is under two frames) a face
    /// missed on one or two passes in a row keeps its id; three in a row end it.
    func testSlowSourcesKeepTracksThroughAMissedPass() {
        let tr = FaceTracker()
        let face = TrackDetection(box: box(100, 100, 80), probabilities: peaked(3, 0.8))
        var t = 0.0
        func pass(_ seen: Bool) { tr.update(seen ? [face] : [], at: t); t += 0.5 }
        for seen in [true, false, true, false, false, true, true] { pass(seen) }
        XCTAssertEqual(tr.tracks.map(\.id), [1], "one id through single and double misses 0.5 s apart")
        for _ in 0..<3 { pass(false) }
        XCTAssertTrue(tr.tracks.isEmpty, "three passes in a row and 1.5 s without the face end it")
    }

    /// Classifications that flicker between two close emotions leave the shown label steady; a
    /// lasting change of expression changes it once, reported as a LabelChange. With smoothing 0
    /// the label is each classification's.
    func testSmoothingAndHysteresis() {
        var rng = SystemRandomNumberGenerator()
        // sad and neutral within a few points of each other, the lead swapping at random
        func noisy(lead: Int, other: Int) -> [Float] {
            var p = [Float](repeating: 0.02, count: 7)
            let m = Float.random(in: -0.08...0.06, using: &rng)
            p[lead] = 0.45 + m / 2; p[other] = 0.45 - m / 2
            return p
        }
        for smoothing in [0.4, 0.0] {
            var cfg = TrackerConfiguration(); cfg.smoothing = smoothing
            let tr = FaceTracker(configuration: cfg)
            var rawFlips = 0, lastRaw = -1, changes: [LabelChange] = []
            for f in 0..<150 {
                let p = f < 100 ? noisy(lead: 4, other: 6) : peaked(3, 0.85)   // then a clear smile
                let raw = p.indices.max { p[$0] < p[$1] }!
                if lastRaw >= 0 && raw != lastRaw && f < 100 { rawFlips += 1 }
                lastRaw = raw
                changes += tr.update([TrackDetection(box: box(100, 100, 120), probabilities: p)], at: Double(f) / 30)
            }
            XCTAssertGreaterThan(rawFlips, 10, "the raw labels should flicker")
            if smoothing > 0 {
                XCTAssertEqual(changes.count, 1, "\(changes)")
                XCTAssertEqual(changes.first?.to, 3)
                XCTAssertEqual(tr.tracks[0].label, 3)
            } else {
                XCTAssertGreaterThanOrEqual(changes.count, rawFlips, "without smoothing the label follows every flip")
            }
        }
    }

    /// A large face sometimes detected whole and sometimes only as a part (the cascade firing on
    /// its lower half) stays one track; a part alone does not start a second face.
    func testPartsOfAFaceDoNotStartTracks() {
        let tr = FaceTracker()
        for f in 0..<30 {
            let whole = box(300, 100, 216), part = box(364, 210, 109)
            let dets = f % 4 == 1 ? [TrackDetection(box: part, probabilities: peaked(2, 0.6))]
                : [TrackDetection(box: whole, probabilities: peaked(2, 0.8))]
            tr.update(dets, at: Double(f) / 30)
            XCTAssertEqual(tr.tracks.map(\.id), [1], "frame \(f)")
            XCTAssertEqual(tr.tracks[0].box.width, 216, "frame \(f): the whole face's box")
        }
    }

    /// A face first found only in part (the cascade's box on its lower half) and then whole keeps
    /// its id: the whole face continues the track begun on the part instead of starting another,
    /// and the change of box is not taken for motion.
    func testAFaceFoundInPartThenWholeKeepsItsId() {
        let tr = FaceTracker()
        let part = box(364, 210, 70), whole = box(320, 150, 150)
        tr.update([TrackDetection(box: part, probabilities: peaked(3, 0.7))], at: 0)
        tr.update([TrackDetection(box: part, probabilities: peaked(3, 0.7))], at: 0.5)
        XCTAssertEqual(tr.tracks.map(\.id), [1])
        tr.update([TrackDetection(box: whole, probabilities: peaked(3, 0.8))], at: 1.0)
        XCTAssertEqual(tr.tracks.map(\.id), [1], "the whole face is the same face")
        XCTAssertEqual(tr.tracks[0].box, whole)
        XCTAssertEqual(tr.tracks[0].label, 3)
        XCTAssertEqual(tr.tracks[0].classifications, 3, "the smoothing went on")
        tr.predict(at: 1.3)
        XCTAssertEqual(tr.tracks[0].box, whole, "no motion made up from the change of box")
        // two faces side by side: a large box over one of them does not swallow the other's track
        let tr2 = FaceTracker()
        tr2.update([TrackDetection(box: box(100, 100, 80), probabilities: peaked(3, 0.7)),
                    TrackDetection(box: box(300, 100, 80), probabilities: peaked(4, 0.7))], at: 0)
        tr2.update([TrackDetection(box: box(90, 90, 100), probabilities: peaked(3, 0.7)),
                    TrackDetection(box: box(300, 100, 80), probabilities: peaked(4, 0.7))], at: 0.1)
        XCTAssertEqual(tr2.tracks.map(\.id).sorted(), [1, 2])
    }

    func testIoU() {
        XCTAssertEqual(box(0, 0, 10).iou(box(0, 0, 10)), 1)
        XCTAssertEqual(box(0, 0, 10).iou(box(20, 20, 10)), 0)
        XCTAssertEqual(box(0, 0, 10).iou(box(5, 0, 10)), 50.0 / 150.0, accuracy: 1e-12)
    }
}
