import Foundation
import SchemaCheck
import XCTest

/// docs/schemas: every schema is readable and uses only what SchemaCheck checks, and SchemaCheck
/// refuses what the schemas forbid. (The outputs themselves are checked where they are made:
/// ResultsFeedTests for the results lines and the SEI payload, ServeTests and CameraTests for
/// fer serve's answers.)
final class SchemaTests: XCTestCase {
    let schemas = SchemaCheck(folder: repoRoot.appendingPathComponent("docs/schemas"))
    let line = """
    {"frame":3,"pts":0.1,"stream_time":0.1,"running_time":null,"wall_time":"2026-12-07T15:00:00.000Z","timecode":"10:00:00:03",
     "faces":[{"id":1,"x":10,"y":20,"width":100,"height":100,"emotion":"happy","label_id":3,"confidence":0.9,
               "probabilities":[0.01,0,0.02,0.9,0.03,0.02,0.02],"landmarks":[40,50,80,50,60,70,45,90,75,90]}]}
    """

    func testEverySchemaIsReadableAndChecked() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: schemas.folder.path).filter { $0.hasSuffix(".schema.json") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for f in files {
            // an empty object: each schema answers with problems (its required fields), never a SchemaError
            XCTAssertNoThrow(try schemas.problems(.object([:]), schema: f), f)
        }
        print("schemas: \(files.joined(separator: ", "))")
    }

    func testAResultsLineHoldsAndItsFaultsAreFound() throws {
        XCTAssertEqual(try schemas.problems(json: line, schema: "results-frame.schema.json"), [])
        let faults: [(String, String, String)] = [
            ("\"x\":10", "\"x\":\"10\"", "$.faces[0].x"),
            ("\"confidence\":0.9", "\"confidence\":1.5", "$.faces[0].confidence"),
            ("\"frame\":3,", "", "no \"frame\""),
            ("\"emotion\":\"happy\"", "\"emotion\":\"happy\",\"mood\":1", "\"mood\" is not in the schema"),
            ("\"running_time\":null", "\"running_time\":true", "$.running_time"),
            ("\"width\":100", "\"width\":0", "$.faces[0].width"),
        ]
        for (from, to, expected) in faults {
            let bad = line.replacingOccurrences(of: from, with: to)
            let problems = try schemas.problems(json: bad, schema: "results-frame.schema.json")
            XCTAssertTrue(problems.contains { $0.contains(expected) }, "\(to): \(problems)")
        }
        // the SEI payload: the same faces, a version
        let payload = #"{"v":1,"faces":[{"id":1,"x":10,"y":20,"width":100,"height":100,"emotion":"happy","label_id":3,"confidence":0.9}]}"#
        XCTAssertEqual(try schemas.problems(json: payload, schema: "sei-payload.schema.json"), [])
        XCTAssertFalse(try schemas.problems(json: payload.replacingOccurrences(of: "\"v\":1", with: "\"v\":2"), schema: "sei-payload.schema.json").isEmpty)
    }
}
