import Foundation
import XCTest
@testable import FERNet
@testable import FERTraining

/// Loads a committed PyTorch fixture (see tools/make_fixtures.py).
func fixture(_ name: String) throws -> Any {
    guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
        throw XCTSkip("fixture \(name).json missing")
    }
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
}

extension Dictionary where Key == String, Value == Any {
    func floats(_ k: String) -> [Float] { (self[k] as! [NSNumber]).map { $0.floatValue } }
    func int(_ k: String) -> Int { (self[k] as! NSNumber).intValue }
    func ints(_ k: String) -> [Int] { (self[k] as! [NSNumber]).map { $0.intValue } }
    func float(_ k: String) -> Float { (self[k] as! NSNumber).floatValue }
}

/// Asserts two buffers agree within `atol + rtol·|expected|` elementwise, reporting the worst.
func assertClose(_ a: [Float], _ e: [Float], atol: Float = 1e-4, rtol: Float = 1e-3, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, e.count, "\(what): size", file: file, line: line)
    guard a.count == e.count else { return }
    var worst: Float = 0, wi = 0
    for i in a.indices {
        let err = abs(a[i] - e[i]) - (atol + rtol * abs(e[i]))
        if err > worst { worst = err; wi = i }
    }
    XCTAssertLessThanOrEqual(worst, 0, "\(what): index \(wi) got \(a[wi]) expected \(e[wi])", file: file, line: line)
}

/// The package root (…/Tests/FERNetTests/Support.swift → …).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// FER2013 beside the checkout (../shared/data/fer2013), or $FER2013_CSV; skips when absent.
func fer2013Path() throws -> String {
    guard let p = FERDataset.sharedCopy(beside: packageRoot) else {
        throw XCTSkip("FER2013 not found beside the checkout (../shared/data/fer2013/fer2013.csv.gz) nor in $FER2013_CSV")
    }
    return p
}

/// Loads FER2013 once per test process.
enum SharedData {
    nonisolated(unsafe) static var cached: FERDataset?
    static func load() throws -> FERDataset {
        if let c = cached { return c }
        let d = try FERDataset.loadCSV(try fer2013Path())
        cached = d
        return d
    }
}

func tempDir() -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("fernet-tests-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}
