import FaceAnalysis
import Foundation
import XCTest

/// The one codec every output format writes and reads faces with.
final class FaceCodecTests: XCTestCase {
    let face = EmotionFace(id: 7, x: 10, y: 20, width: 30, height: 40, emotion: "happy", labelID: 3, confidence: 0.75,
                           probabilities: [0.05, 0, 0.05, 0.75, 0.05, 0.05, 0.05])

    func testJSONObjectRoundTrip() throws {
        let object = face.jsonObject()
        XCTAssertEqual(Set(object.keys), ["id", "x", "y", "width", "height", "emotion", "label_id", "confidence", "probabilities"])
        let data = try JSONSerialization.data(withJSONObject: object)
        let back = try EmotionFace(reading: JSONObjectReader(try JSONSerialization.jsonObject(with: data) as! [String: Any]))
        XCTAssertEqual(back, face)
        XCTAssertNil(face.jsonObject(probabilities: false)["probabilities"])
    }

    /// Landmarks are written when a face has them, read back as written, and checked.
    func testLandmarksRoundTripAndAreChecked() throws {
        var f = face
        f.landmarks = [12.5, 30, 27.5, 30.5, 20, 38, 14, 48.5, 26, 48]
        let object = f.jsonObject()
        XCTAssertEqual(object["landmarks"] as? [Double], f.landmarks)
        let back = try EmotionFace(reading: JSONObjectReader(try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: object)) as! [String: Any]))
        XCTAssertEqual(back, f)
        var o = object; o["landmarks"] = [1.0, 2.0, 3.0]
        XCTAssertThrowsError(try EmotionFace(reading: JSONObjectReader(o)))
        o["landmarks"] = "eyes"
        XCTAssertThrowsError(try EmotionFace(reading: JSONObjectReader(o)))
        o["landmarks"] = [1e9, 0.0]
        XCTAssertThrowsError(try EmotionFace(reading: JSONObjectReader(o)))
    }

    func testReadingSaysWhichFieldIsWrong() {
        func reason(_ o: [String: Any]) -> String {
            do { _ = try EmotionFace(reading: JSONObjectReader(o)); return "accepted" } catch { return "\(error)" }
        }
        var o = face.jsonObject()
        o["id"] = 1.5
        XCTAssertEqual(reason(o), "\"id\" is not an integer")
        o = face.jsonObject(); o.removeValue(forKey: "emotion")
        XCTAssertEqual(reason(o), "no \"emotion\"")
        o = face.jsonObject(); o["confidence"] = "high"
        XCTAssertEqual(reason(o), "\"confidence\" is not a number")
        o = face.jsonObject(); o["width"] = 0
        XCTAssertEqual(reason(o), "negative or empty box, or negative label_id")
        o = face.jsonObject(); o["probabilities"] = [2.0]
        XCTAssertEqual(reason(o), "a confidence or probability outside 0-1, or over 64 probabilities")
        o = face.jsonObject(); o.removeValue(forKey: "probabilities")
        XCTAssertEqual(reason(o), "accepted")
    }
}
