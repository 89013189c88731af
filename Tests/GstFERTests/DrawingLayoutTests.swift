import CGStreamer
import CGstCheck
import FaceAnalysis
import FERNet
import FERTraining
import Foundation
@testable import GstFER
import XCTest

/// Labels and probability bars go where they cover no other face.
final class DrawingLayoutTests: XCTestCase {
    typealias Rect = OverlayLayout.Rect

    /// Two faces side by side with little room between: the left face's panel does not go to its
    /// right, over its neighbour, but to its left; labels above both; nothing covers a face.
    func testPanelsGoWhereNoFaceIs() {
        let boxes = [Rect(x: 150, y: 100, width: 120, height: 120), Rect(x: 290, y: 100, width: 120, height: 120)]
        let l = OverlayLayout(boxes: boxes, label: [(60, 9), (60, 9)], panel: [[(67, 63)], [(67, 63)]], gap: 2, frameWidth: 640, frameHeight: 480)
        XCTAssertEqual(l.labels[0], Rect(x: 150, y: 91, width: 60, height: 9), "above its box")
        XCTAssertEqual(l.panels[1], Rect(x: 412, y: 100, width: 67, height: 63), "the right face's panel to its right")
        XCTAssertEqual(l.panels[0], Rect(x: 81, y: 100, width: 67, height: 63), "the left face's panel to its left")
        for (i, r) in (l.labels + l.panels.compactMap { $0 }).enumerated() {
            for b in boxes { XCTAssertEqual(r.intersection(b), 0, "label or panel \(i) \(r) covers \(b)") }
        }
        // at the frame's edges: a face at the top left keeps its label inside its box, its panel beside it
        let corner = OverlayLayout(boxes: [Rect(x: 0, y: 0, width: 100, height: 100)], label: [(60, 9)], panel: [[(57, 63)]],
                                   gap: 2, frameWidth: 640, frameHeight: 480)
        XCTAssertEqual(corner.labels[0], Rect(x: 0, y: 2, width: 60, height: 9))
        XCTAssertEqual(corner.panels[0], Rect(x: 102, y: 0, width: 57, height: 63))
        // crowded: no room at full size beside, under or above; the smaller panel fits in the gap between
        let tight = [Rect(x: 20, y: 20, width: 130, height: 130), Rect(x: 200, y: 20, width: 130, height: 130),
                     Rect(x: 20, y: 180, width: 130, height: 130), Rect(x: 200, y: 180, width: 130, height: 130)]
        let crowded = OverlayLayout(boxes: tight, label: Array(repeating: (60, 18), count: 4), panel: Array(repeating: [(94, 126), (47, 63)], count: 4),
                                    gap: 2, frameWidth: 340, frameHeight: 320)
        XCTAssertEqual(crowded.panels[0], Rect(x: 152, y: 20, width: 47, height: 63), "the small panel between the two top faces")
        for (i, p) in crowded.panels.enumerated() {
            for (j, b) in tight.enumerated() where j != i { XCTAssertEqual(p!.intersection(b), 0, "panel \(i) over face \(j)") }
        }
    }

    /// The demo clip's first frame (six FER2013 faces, `make demo`) through ferfilter with
    /// draw-probabilities: inside each face's box (less its frame) the only pixels drawn are that
    /// face's own label's and bars' (where faces crowd the frame, its bars go over its own face);
    /// no bar, label or box of another face covers it.
    func testTheDemoClipsFacesStayClear() throws {
        XCTAssertTrue(Gst.ready)
        let d = try fer2013()
        let (w, h) = (640, 480)
        let grey = FaceScene.grid(width: w, height: h, rows: Array(12..<18), size: 130).moved(frame: 0).render(d, phase: 0)
        let caps = "video/x-raw,format=GRAY8,width=\(w),height=\(h),framerate=30/1"
        func run(_ draw: Bool) throws -> ([ROI], [UInt8]) {
            let harness = FerHarness(["draw": draw, "draw-probabilities": true], caps: caps)
            let out = try XCTUnwrap(harness.process(RawFrame(bytes: grey, caps: caps)))
            defer { gst_buffer_unref(out) }
            return (rois(of: out), bytes(of: out))
        }
        let (faces, drawn) = try run(true)
        let (_, clean) = try run(false)
        XCTAssertGreaterThanOrEqual(faces.count, 5, "the demo's faces are found")
        let emotionFaces = faces.map {
            EmotionFace(id: Int($0.id), x: $0.x, y: $0.y, width: $0.w, height: $0.h, emotion: $0.label ?? "", labelID: Int($0.labelID),
                        confidence: $0.confidence, probabilities: $0.probabilities)
        }
        let scale = max(1, min(w, h) / 240), thick = max(2, scale)
        let texts = emotionFaces.map(FaceDrawing.labelText)
        let layout = FaceDrawing.layout(emotionFaces, texts: texts, probabilities: true, scale: scale, thick: thick, frameWidth: w, frameHeight: h)
        var covered = 0
        for (j, f) in faces.enumerated() {
            let own = [layout.labels[j]] + (layout.panels[j].map { [$0] } ?? [])
            for y in (f.y + thick)..<min(h, f.y + f.h - thick) {
                for x in (f.x + thick)..<min(w, f.x + f.w - thick) where drawn[y * w + x] != clean[y * w + x] {
                    if !own.contains(where: { (r: Rect) in (r.x..<(r.x + r.width)).contains(x) && (r.y..<(r.y + r.height)).contains(y) }) { covered += 1 }
                }
            }
            for (k, p) in layout.panels.enumerated() where k != j {
                XCTAssertEqual(p.map { $0.intersection(Rect(x: f.x, y: f.y, width: f.w, height: f.h)) }, 0, "face \(k)'s bars over face \(j)")
            }
        }
        print("demo frame: \(faces.count) faces, pixels inside a face drawn by another: \(covered)")
        XCTAssertEqual(covered, 0, "another face's drawing inside a face")
    }
}
