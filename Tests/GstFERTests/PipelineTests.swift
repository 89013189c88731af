import FaceAnalysis
import FERNet
import FERTraining
import Foundation
import XCTest

/// Runs the recipes in examples/pipelines.md marked `<!-- test: name -->` with gst-launch-1.0 and
/// the plugin `make test` builds into .build/gst-plugins, and checks what each one produces.
final class PipelineTests: XCTestCase {
    struct Recipe { let name: String; let script: String }

    static func recipes() throws -> [Recipe] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("examples/pipelines.md"), encoding: .utf8)
        var out: [Recipe] = []
        let lines = text.components(separatedBy: "\n")
        var i = 0
        while i < lines.count {
            let l = lines[i].trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("<!-- test:"), l.hasSuffix("-->") {
                let name = l.dropFirst("<!-- test:".count).dropLast(3).trimmingCharacters(in: .whitespaces)
                var j = i + 1
                while j < lines.count && !lines[j].hasPrefix("```") { j += 1 }
                var body: [String] = []
                j += 1
                while j < lines.count && !lines[j].hasPrefix("```") { body.append(lines[j]); j += 1 }
                out.append(Recipe(name: name, script: body.joined(separator: "\n")))
                i = j
            }
            i += 1
        }
        return out
    }

    /// The plugin `make test` builds into .build/gst-plugins; skips the test when it is not there.
    static let pluginDir = packageRoot.appendingPathComponent(".build/gst-plugins")
    static func requirePlugin() throws {
        guard FileManager.default.fileExists(atPath: pluginDir.appendingPathComponent("libgstfer.so").path) else {
            throw XCTSkip("plugin not built into \(pluginDir.path): run `make test` (it runs plugin/meson-free-build.sh --dest .build/gst-plugins)")
        }
    }

    /// This process's environment with GStreamer finding that plugin (a registry of its own in
    /// `dir`) and the shipped model.
    static func pluginEnvironment(registryIn dir: URL) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["GST_PLUGIN_PATH_1_0"] = pluginDir.path
        env["GST_REGISTRY_1_0"] = dir.appendingPathComponent("registry.bin").path
        env["GST_PLUGIN_SYSTEM_PATH_1_0"] = systemPluginDirectory()
        env["GSTFER_MODEL"] = packageRoot.appendingPathComponent("Models/fernet.json").path
        return env
    }

    func run(_ script: String, in dir: URL, env: [String: String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-euo", "pipefail", "-c", script]
        p.currentDirectoryURL = dir
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    func testRecipesInPipelinesMarkdownRun() throws {
        try PipelineTests.requirePlugin()
        let ferBin = packageRoot.appendingPathComponent(".build/release")
        guard FileManager.default.fileExists(atPath: ferBin.appendingPathComponent("fer").path) else { throw XCTSkip("fer not built in .build/release") }
        _ = try fer2013()   // the clip is made of FER2013 faces
        let recipes = try PipelineTests.recipes()
        XCTAssertGreaterThanOrEqual(recipes.count, 7)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-recipes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // `fer scene` reads FER2013 from ../shared beside the checkout by default; give it the path
        let data = FERDataset.sharedCopy(beside: packageRoot)!
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("fer").path, withDestinationPath: ferBin.appendingPathComponent("fer").path)
        var env = PipelineTests.pluginEnvironment(registryIn: dir)
        env["PATH"] = dir.path + ":" + ferBin.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        for r in recipes {
            let script = r.script.replacingOccurrences(of: "fer scene ", with: "fer scene \(data) ")
            let (status, output) = try run(script, in: dir, env: env)
            XCTAssertEqual(status, 0, "recipe \(r.name) failed:\n\(output.suffix(2000))")
            func size(_ f: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path))?[.size] as? Int) ?? 0 }
            func lines(_ f: String) -> [Substring] {
                ((try? String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)) ?? "").split(separator: "\n")
            }
            /// `ferfilter` messages as gst-launch-1.0 -m prints them, and those with a face (an escaped `emotion=` field)
            func withFaces(_ messages: [Substring]) -> Int { messages.filter { $0.contains("emotion\\=") }.count }
            switch r.name {
            case "make-clip": XCTAssertGreaterThan(size("faces.mp4"), 10_000)
            case "file-to-mp4": XCTAssertGreaterThan(size("annotated.mp4"), 10_000)
            case "snapshot": XCTAssertGreaterThan(size("annotated.png"), 10_000)
            case "rtp-loopback": XCTAssertGreaterThan(size("received.png"), 10_000, "the receiver decoded a frame")
            case "rtsp-loopback":
                XCTAssertGreaterThan(size("rtsp.png"), 10_000, "the RTSP client decoded a frame")
                let messages = lines("rtsp-messages.txt")
                XCTAssertGreaterThanOrEqual(messages.count, 25, "a message per frame read from the RTSP stream")
                XCTAssertGreaterThan(withFaces(messages), 20, "with faces: \(messages.prefix(2))")
            case "sei-srt":
                let messages = lines("srt-messages.txt")
                XCTAssertGreaterThan(messages.count, 120, "most of the clip's 150 frames read from the SRT stream")
                XCTAssertGreaterThan(withFaces(messages), 120, "with faces: \(messages.prefix(2))")
            case "sei-overlay": XCTAssertGreaterThan(size("overlaid.png"), 100_000, "the receiver drew a 1280x960 frame")
            case "sei-file":
                let messages = lines("from-stream.txt")
                XCTAssertEqual(messages.count, 150, "a message per frame of the clip, read from the file")
                XCTAssertGreaterThan(withFaces(messages), 140, "with faces: \(messages.prefix(2))")
            case "mqtt":
                let messages = lines("mqtt.txt")
                XCTAssertGreaterThan(messages.filter { $0.hasPrefix("site/cam1/frames {") }.count, 100, "most of the clip's 150 frames")
                XCTAssertEqual(messages.filter { $0.hasPrefix("site/cam1/summary {\"summary\"") }.count, 1)
                XCTAssertEqual(messages.filter { $0.hasPrefix("site/cam1/status ") }, ["site/cam1/status online", "site/cam1/status offline"])
            case "messages":
                let text = (try? String(contentsOf: dir.appendingPathComponent("messages.txt"), encoding: .utf8)) ?? ""
                XCTAssertTrue(text.contains("emotion"), "messages list emotions: \(text.prefix(300))")
            case "results":
                let results = lines("results.jsonl")
                XCTAssertGreaterThan(results.count, 100, "a line per frame")
                XCTAssertTrue(results.first?.contains("\"faces\"") ?? false)
                XCTAssertTrue(results.last?.hasPrefix("{\"summary\"") ?? false, "summary last: \(results.last ?? "")")
            case "timecode":
                let objects = lines("timecoded.jsonl").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
                XCTAssertGreaterThan(objects.count, 100, "a line per frame")
                XCTAssertEqual(objects.first?["timecode"] as? String, "10:00:00:00")
                XCTAssertEqual(objects.dropFirst().first?["timecode"] as? String, "10:00:00:01")
                let tracks = ((objects.last?["summary"] as? [String: Any])?["tracks"] as? [[String: Any]]) ?? []
                XCTAssertFalse(tracks.isEmpty)
                XCTAssertTrue(tracks.allSatisfy { ($0["first_timecode"] as? String)?.hasPrefix("10:00:") ?? false }, "\(tracks.prefix(1))")
            case "two-streams":
                // each element its own tracks and results, from one shared model: the same faces, mirrored
                func summary(_ f: String) -> [String: Any] {
                    let last = ((try? String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)) ?? "").split(separator: "\n").last ?? ""
                    return ((try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any])?["summary"] as? [String: Any] ?? [:]
                }
                let one = summary("one.jsonl"), two = summary("two.jsonl")
                XCTAssertGreaterThan(one["frames"] as? Int ?? 0, 100, "\(one)")
                XCTAssertEqual(one["frames"] as? Int, two["frames"] as? Int)
                XCTAssertGreaterThan((one["tracks"] as? [Any])?.count ?? 0, 0)
                XCTAssertGreaterThan((two["tracks"] as? [Any])?.count ?? 0, 0)
            default: break
            }
        }
    }

    /// In gst-launch-1.0, where the plugin and OpenBLAS with it are loaded with local symbols, the
    /// element still gets the CPU's own OpenBLAS kernels, not the fallback for an unknown CPU (it
    /// ran Prescott's SSE3 kernels there until 2026-12-02, while `fer` and these tests had
    /// SkylakeX's). The element logs its kernels when it loads the model.
    func testElementInGstLaunchRunsTheCPUsOpenBLASKernels() throws {
        try PipelineTests.requirePlugin()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-kernels-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var env = PipelineTests.pluginEnvironment(registryIn: dir)
        env["GST_DEBUG"] = "ferfilter:4"
        env["GST_DEBUG_NO_COLOR"] = "1"
        env.removeValue(forKey: "OPENBLAS_CORETYPE")
        let (status, output) = try run("gst-launch-1.0 -q videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 ! ferfilter ! fakesink",
                                       in: dir, env: env)
        XCTAssertEqual(status, 0, output.suffix(2000).description)
        guard let line = output.split(separator: "\n").first(where: { $0.contains("OpenBLAS kernels ") }) else {
            return XCTFail("the element logged no kernels at GST_DEBUG=ferfilter:4:\n\(output.suffix(2000))")
        }
        let core = line.components(separatedBy: "OpenBLAS kernels ")[1].split(separator: " ").first.map(String.init) ?? ""
        XCTAssertFalse(core.isEmpty)
        if BLAS.cpuHasAVX2FMA {
            XCTAssertFalse(BLAS.legacyCores.contains(core.lowercased()), "the element runs \(core) kernels on a CPU with AVX2 and FMA: \(line)")
        }
    }
}
