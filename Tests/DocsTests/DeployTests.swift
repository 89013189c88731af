import Foundation
import XCTest

/// deploy/: the systemd template unit docs/deploy.md tells users to install.
final class DeployTests: XCTestCase {
    /// `systemd-analyze verify` accepts an instance of the template (its directives, its
    /// ExecStart binary), and the unit runs the pipeline the page describes.
    func testTheTemplateUnitVerifies() throws {
        let unit = repoRoot.appendingPathComponent("deploy/gstfer@.service")
        let text = try String(contentsOf: unit, encoding: .utf8)
        XCTAssertTrue(text.contains("EnvironmentFile=/etc/gstfer/%i.env"))
        XCTAssertTrue(text.contains("ExecStart=/usr/bin/gst-launch-1.0 -e $GSTFER_SOURCE ! videoconvert ! ferfilter draw=false publish=${GSTFER_PUBLISH}"),
                      "the pipeline docs/deploy.md shows")
        let env = try String(contentsOf: repoRoot.appendingPathComponent("deploy/camera.env.example"), encoding: .utf8)
        XCTAssertTrue(env.contains("\nGSTFER_SOURCE=") && env.contains("\nGSTFER_PUBLISH=mqtt"))
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let analyze, FileManager.default.isExecutableFile(atPath: "/usr/bin/gst-launch-1.0") else {
            throw XCTSkip("systemd-analyze or gst-launch-1.0 is not installed (Debian: systemd, gstreamer1.0-tools)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-unit-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let instance = dir.appendingPathComponent("gstfer@cam1.service")
        try FileManager.default.copyItem(at: unit, to: instance)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: analyze)
        p.arguments = ["verify", "--man=no", instance.path]
        let out = Pipe()
        p.standardOutput = out; p.standardError = out
        try p.run()
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, said)
        XCTAssertFalse(said.contains("gstfer@cam1.service"), "no complaint about the unit: \(said)")
    }
}
