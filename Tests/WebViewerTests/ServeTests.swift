import FERNet
import FERTraining
import MQTTBrokerHarness
import SchemaCheck
import Foundation
import XCTest

/// `fer serve` as users run it: a real process on a loopback port, the plugin built by `make test`,
/// the FER2013 test clip as its source; its API, its streams, bad requests, several clients, and
/// the page in headless Chromium.
final class ServeTests: XCTestCase {
    /// A running `fer serve`.
    final class Server {
        let process = Process()
        var port = 0
        private let out = Pipe()
        private var log = ""
        private let lock = NSLock()

        init(_ args: [String]) throws {
            let ferBin = packageRoot.appendingPathComponent(".build/release/fer")
            let pluginDir = packageRoot.appendingPathComponent(".build/gst-plugins")
            guard FileManager.default.fileExists(atPath: ferBin.path) else { throw XCTSkip("fer not built in .build/release (make test builds it)") }
            guard FileManager.default.fileExists(atPath: pluginDir.appendingPathComponent("libgstfer.so").path) else {
                throw XCTSkip("plugin not built into \(pluginDir.path): run `make test`")
            }
            process.executableURL = ferBin
            process.arguments = ["serve", "--port", "0", "--model", shippedModel.path] + args
            process.environment = Server.environment
            process.standardOutput = out
            process.standardError = out
            out.fileHandleForReading.readabilityHandler = { [weak self] h in
                let s = String(decoding: h.availableData, as: UTF8.self)
                self?.lock.lock(); self?.log += s; self?.lock.unlock()
            }
            try process.run()
            let deadline = Date().addingTimeInterval(90)
            while Date() < deadline && process.isRunning {
                if let r = output.range(of: #"serving https?://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) {
                    port = Int(output[r].split(separator: ":").last!.dropLast())!
                    return
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            stop()
            throw CDPError("fer serve did not start: \(output.suffix(2000))")
        }

        /// This process's environment with GStreamer finding the plugin `make test` builds (a
        /// registry of its own).
        static var environment: [String: String] {
            var env = ProcessInfo.processInfo.environment
            env["GST_PLUGIN_PATH_1_0"] = packageRoot.appendingPathComponent(".build/gst-plugins").path
            env["GST_REGISTRY_1_0"] = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-serve-registry-\(getpid()).bin").path
            if let sys = ["/usr/lib/x86_64-linux-gnu/gstreamer-1.0", "/usr/lib/aarch64-linux-gnu/gstreamer-1.0"].first(where: { FileManager.default.fileExists(atPath: $0) }) {
                env["GST_PLUGIN_SYSTEM_PATH_1_0"] = sys
            }
            return env
        }

        var output: String { lock.lock(); defer { lock.unlock() }; return log }

        @discardableResult
        func stop() -> Int32 {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            out.fileHandleForReading.readabilityHandler = nil
            return process.terminationStatus
        }

        func get(_ path: String) throws -> HTTP.Response { try HTTP.send(method: "GET", port: port, path: path) }

        func json(_ path: String) throws -> [String: Any] {
            let r = try get(path)
            XCTAssertEqual(r.status, 200, path)
            return try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] ?? [:]
        }

        /// Reads a streaming answer for up to `seconds` or until `enough` says stop.
        func stream(_ path: String, seconds: Double, enough: (String) -> Bool) throws -> String {
            let s = try TCPSocket(host: "127.0.0.1", port: port, timeout: 5)
            try s.write(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            var text = ""
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let chunk = try s.read()
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: Unicode.ASCII.self)
                if enough(text) { break }
            }
            return text
        }
    }

    static func occurrences(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }

    /// Runs `tool` to its end with the plugin's environment; its exit status and output.
    static func launch(_ tool: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.environment = Server.environment
        p.standardOutput = out; p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    func waitPlaying(_ server: Server) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let h = try server.json("/api/v1/health")
            if ((h["pipeline"] as? [String: Any])?["state"] as? String) == "playing", (h["frames"] as? Int ?? 0) > 10 { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("the pipeline never played: \(server.output.suffix(1500))")
    }

    func testServesTheClipItsFeedsAndTheAPI() throws {
        let data = try fer2013Path()
        _ = try publicTest()
        let server = try Server(["--source", "test", "--data", data])
        defer { server.stop() }
        try waitPlaying(server)
        // every answer holds to its published schema (docs/schemas)
        let schemas = SchemaCheck(folder: packageRoot.appendingPathComponent("docs/schemas"))
        func conforms(_ body: [UInt8], _ schema: String, _ what: String) {
            XCTAssertEqual((try? schemas.problems(json: String(decoding: body, as: UTF8.self), schema: schema)) ?? ["unreadable"], [],
                           "\(what) against \(schema): \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        conforms(try server.get("/api/v1/health").body, "api-health.schema.json", "health")

        // the health answer carries ferfilter's own stats: every frame counted once, the clip's six faces tracked
        let stats = try XCTUnwrap(try server.json("/api/v1/health")["ferfilter"] as? [String: Any])
        let counted = try XCTUnwrap(stats["frames"] as? Int)
        XCTAssertGreaterThan(counted, 10, "\(stats)")
        XCTAssertEqual(["analysed", "between", "skipped-late", "skipped-busy", "skipped-rate"].compactMap { stats[$0] as? Int }.reduce(0, +), counted)
        XCTAssertGreaterThanOrEqual(stats["tracks"] as? Int ?? 0, 6, "\(stats)")
        XCTAssertEqual(stats["live"] as? Bool, false)
        XCTAssertGreaterThan(stats["analysis-ms-mean"] as? Double ?? 0, 0)

        // the page
        let page = try server.get("/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.headers["content-type"]?.hasPrefix("text/html") ?? false)
        XCTAssertTrue(String(decoding: page.body, as: UTF8.self).contains("EventSource(\"/events\")"))

        // a snapshot of the annotated video
        let snap = try server.get("/snapshot.jpg")
        XCTAssertEqual(snap.status, 200)
        let frame = try ImageCodec.decode(snap.body)
        XCTAssertEqual(frame.width, 640); XCTAssertEqual(frame.height, 480)

        // MJPEG: several clients at once all get frames
        let clients = 4
        var parts = [Int](repeating: 0, count: clients)
        DispatchQueue.concurrentPerform(iterations: clients) { i in
            let text = (try? server.stream("/video.mjpg", seconds: 10) { ServeTests.occurrences("Content-Type: image/jpeg", in: $0) >= 5 }) ?? ""
            parts[i] = ServeTests.occurrences("Content-Type: image/jpeg", in: text)
            if i == 0 { XCTAssertTrue(text.contains("multipart/x-mixed-replace; boundary=ferframe")) }
        }
        XCTAssertTrue(parts.allSatisfy { $0 >= 5 }, "JPEG parts per client: \(parts)")

        // Server-Sent Events: per-frame faces with ids, emotions and probabilities
        let sse = try server.stream("/events", seconds: 10) { ServeTests.occurrences("event: frame", in: $0) >= 15 }
        XCTAssertTrue(sse.contains("text/event-stream"))
        XCTAssertGreaterThanOrEqual(ServeTests.occurrences("event: frame", in: sse), 15)
        // the data lines of frame events only (tick events carry a face count under the same key)
        let frames = sse.components(separatedBy: "\n\n").filter { $0.contains("event: frame\n") }
            .compactMap { $0.components(separatedBy: "\n").first { $0.hasPrefix("data: {") } }
        let last = try XCTUnwrap(frames.last)
        for f in frames.suffix(5) { conforms(Array(f.dropFirst(6).utf8), "api-event-frame.schema.json", "a frame event") }
        let obj = try JSONSerialization.jsonObject(with: Data(last.dropFirst(6).utf8)) as! [String: Any]
        let faces = obj["faces"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(faces.count, 4, "the clip has 6 faces: \(last.prefix(300))")
        for f in faces {
            XCTAssertNotNil(f["id"] as? Int)
            let p = f["probabilities"] as! [String: Double]
            XCTAssertEqual(p.count, 7)
            XCTAssertEqual(p.values.reduce(0, +), 1, accuracy: 0.01)
            // the shown emotion is the smoothed one (hysteresis: not always the top probability); its confidence is its probability
            XCTAssertEqual(p[f["emotion"] as! String]!, f["confidence"] as! Double, accuracy: 1e-6)
        }

        // analyze: the clip's own faces as a JPEG and a PNG
        let (img, _) = try sceneImage()
        for (type, body) in [("image/jpeg", [UInt8](try ImageCodec.encodeJPEG(img, quality: 90))), ("image/png", [UInt8](ImageCodec.encodePNG(img)))] {
            let r = try HTTP.send(method: "POST", port: server.port, path: "/api/v1/analyze", headers: ["Content-Type": type], body: body)
            XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
            conforms(r.body, "api-analyze.schema.json", "analyze \(type)")
            let j = try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
            XCTAssertGreaterThanOrEqual((j["faces"] as! [[String: Any]]).count, 5, type)
            let f = (j["faces"] as! [[String: Any]])[0]
            XCTAssertNotNil(f["box"] as? [String: Int]); XCTAssertNotNil(f["emotion"] as? String)
            XCTAssertNotNil(f["confidence"] as? Double); XCTAssertEqual((f["probabilities"] as? [String: Double])?.count, 7)
        }

        // summary and timeline
        Thread.sleep(forTimeInterval: 1.2)
        conforms(try server.get("/api/v1/summary").body, "api-summary.schema.json", "summary")
        conforms(try server.get("/api/v1/timeline?seconds=60").body, "api-timeline.schema.json", "timeline")
        let summary = try server.json("/api/v1/summary")
        XCTAssertGreaterThan(summary["frames"] as! Int, 30)
        XCTAssertGreaterThanOrEqual((summary["tracks"] as! [[String: Any]]).count, 4)
        XCTAssertEqual((summary["overall"] as! [String: Double]).values.reduce(0, +), 1, accuracy: 1e-6)
        let timeline = try server.json("/api/v1/timeline?seconds=60")
        XCTAssertGreaterThanOrEqual((timeline["points"] as! [[String: Any]]).count, 1)
        XCTAssertEqual((timeline["labels"] as! [String]).count, 7)

        // bad requests: clear 4xx, and the server keeps answering
        func post(_ body: [UInt8], type: String?, path: String = "/api/v1/analyze") throws -> HTTP.Response {
            try HTTP.send(method: "POST", port: server.port, path: path, headers: type.map { ["Content-Type": $0] } ?? [:], body: body)
        }
        XCTAssertEqual(try post(Array("{\"x\":1}".utf8), type: "application/json").status, 415)
        for bad in [try post(Array("{\"x\":1}".utf8), type: "application/json"), try post([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], type: "image/jpeg"),
                    try server.get("/api/v1/analyze"), try server.get("/api/v1/timeline?seconds=abc")] {
            conforms(bad.body, "api-error.schema.json", "a \(bad.status) answer")
        }
        XCTAssertEqual(try post(Array("definitely not a picture".utf8), type: "image/jpeg").status, 415)
        XCTAssertEqual(try post([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], type: "image/jpeg").status, 400, "a truncated JPEG")
        XCTAssertEqual(try post([], type: "image/png").status, 400)
        let tooBig = try HTTP.raw(Array("POST /api/v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 99999999\r\n\r\n".utf8), port: server.port)
        XCTAssertEqual(tooBig.status, 413)
        let wrong = try server.get("/api/v1/analyze")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.headers["allow"], "POST")
        XCTAssertTrue(String(decoding: wrong.body, as: UTF8.self).contains("\"error\""))
        XCTAssertEqual(try HTTP.send(method: "DELETE", port: server.port, path: "/api/v1/summary").status, 405)
        XCTAssertEqual(try server.get("/no/such/page").status, 404)
        XCTAssertEqual(try server.get("/api/v1/timeline?seconds=abc").status, 400)
        let garbage = try? HTTP.raw(Array("\u{1}\u{2}NOT HTTP AT ALL\r\n\r\n".utf8), port: server.port)
        XCTAssertTrue(garbage == nil || (400..<500).contains(garbage!.status), "garbage gets a 4xx or a closed connection")
        XCTAssertEqual(try server.get("/api/v1/health").status, 200, "still answering")
        XCTAssertEqual(server.stop(), 0, "SIGTERM stops it cleanly")
    }

    /// A video file plays in a loop: the viewer keeps showing it after its end.
    func testFileSourceLoops() throws {
        let clip = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-loop-\(getpid()).mp4")
        defer { try? FileManager.default.removeItem(at: clip) }
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/gst-launch-1.0")
        make.arguments = ["-q", "videotestsrc", "num-buffers=30", "pattern=ball", "!", "video/x-raw,width=320,height=240,framerate=30/1",
                          "!", "x264enc", "speed-preset=ultrafast", "!", "mp4mux", "!", "filesink", "location=\(clip.path)"]
        try make.run(); make.waitUntilExit()
        XCTAssertEqual(make.terminationStatus, 0, "gst-launch made the 1-second clip")
        let server = try Server(["--source", clip.path])
        defer { server.stop() }
        try waitPlaying(server)
        Thread.sleep(forTimeInterval: 3)
        let h = try server.json("/api/v1/health")
        let pipeline = h["pipeline"] as? [String: Any] ?? [:]
        XCTAssertEqual(pipeline["state"] as? String, "playing", "\(h)")
        XCTAssertGreaterThan(h["frames"] as? Int ?? 0, 60, "a 30-frame clip played at least twice: \(h)")
        XCTAssertEqual(pipeline["width"] as? Int, 320)
    }

    /// A stream that carries its faces (an MPEG-TS from ferfilter draw=false ! x264enc !
    /// ferseiinsert): `--faces-from-stream` shows them, drawn by feroverlay, without analysing the
    /// video; a source that carries none is refused with a message saying what to give.
    func testFacesFromTheStreamItself() throws {
        let data = try fer2013Path()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-serve-sei-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ tool: String, _ args: [String]) throws -> String {
            let (status, text) = try ServeTests.launch(tool, args)
            XCTAssertEqual(status, 0, "\(tool) \(args.joined(separator: " ")): \(text.suffix(1500))")
            return text
        }
        let fer = packageRoot.appendingPathComponent(".build/release/fer").path
        guard FileManager.default.fileExists(atPath: fer) else { throw XCTSkip("fer not built in .build/release") }
        let clip = dir.appendingPathComponent("clip.gray").path, ts = dir.appendingPathComponent("faces.ts").path
        _ = try run(fer, ["scene", data, "--frames", "90", "--faces", "4", "--size", "140", "--output", clip])
        _ = try run("/usr/bin/gst-launch-1.0", ["-q", "filesrc", "location=\(clip)", "!", "rawvideoparse", "format=gray8", "width=640", "height=480",
                                               "framerate=30/1", "!", "timecodestamper", "set-internal-timecode=10:00:00:00",
                                               "!", "ferfilter", "draw=false", "model=\(shippedModel.path)", "!", "videoconvert",
                                               "!", "x264enc", "speed-preset=ultrafast", "!", "ferseiinsert", "!", "mpegtsmux", "!", "filesink", "location=\(ts)"])
        let server = try Server(["--source", ts, "--faces-from-stream"])
        defer { server.stop() }
        try waitPlaying(server)
        XCTAssertTrue(server.output.contains("parsebin ! ferseiextract ! decodebin ! videoconvert ! feroverlay"), server.output.suffix(800).description)
        let sse = try server.stream("/events", seconds: 10) { ServeTests.occurrences("event: frame", in: $0) >= 15 }
        let frames = sse.components(separatedBy: "\n\n").filter { $0.contains("event: frame\n") }
            .compactMap { $0.components(separatedBy: "\n").first { $0.hasPrefix("data: {") } }
        XCTAssertGreaterThanOrEqual(frames.count, 15)
        let withFaces = try frames.filter { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as! [String: Any]
            let faces = obj["faces"] as? [[String: Any]] ?? []
            return faces.count >= 3 && faces.allSatisfy { ($0["emotion"] as? String).map(FERDataset.labels.contains) ?? false }
        }
        XCTAssertGreaterThanOrEqual(withFaces.count, frames.count - 2, "faces read from the stream: \(frames.last?.prefix(300) ?? "")")
        // the sender's time codes (90 frames at 30 fps from 10:00:00:00; the file loops) reach the page's feed
        let timecodes = try frames.map { line in
            (try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as! [String: Any])["timecode"] as? String ?? "none"
        }
        XCTAssertTrue(timecodes.allSatisfy { $0.range(of: #"^10:00:0[0-2]:[0-2][0-9]$"#, options: .regularExpression) != nil }, "\(timecodes)")
        // ...and the page's header shows the latest
        if let chromium = HeadlessChromium.find() {
            let browser = try HeadlessChromium(executable: chromium)
            defer { browser.close() }
            let page = try browser.open("http://127.0.0.1:\(server.port)/")
            let shown = try page.wait(for: "document.getElementById('timecode') !== null && /^TC 10:00:0[0-2]:[0-2][0-9]$/.test(document.getElementById('timecode').textContent) "
                                      + "&& !document.getElementById('timecode').hidden", timeout: 20)
            let header = try page.evaluate("document.querySelector('header').textContent") as? String ?? ""
            XCTAssertTrue(shown, "header: \(header)")
        }
        let snap = try server.get("/snapshot.jpg")
        XCTAssertEqual(snap.status, 200)
        XCTAssertNil((try server.json("/api/v1/health")["pipeline"] as? [String: Any])?["error"])
        XCTAssertNil(try server.json("/api/v1/health")["ferfilter"], "no ferfilter analyses here")
        server.stop()

        // the same video without the SEI: it plays, and the status says why no faces come
        let bare = dir.appendingPathComponent("bare.ts").path
        _ = try run("/usr/bin/gst-launch-1.0", ["-q", "filesrc", "location=\(clip)", "!", "rawvideoparse", "format=gray8", "width=640", "height=480",
                                               "framerate=30/1", "!", "videoconvert", "!", "x264enc", "speed-preset=ultrafast", "!", "mpegtsmux",
                                               "!", "filesink", "location=\(bare)"])
        let silent = try Server(["--source", bare, "--faces-from-stream"])
        defer { silent.stop() }
        try waitPlaying(silent)
        var note = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline && note.isEmpty {
            note = ((try silent.json("/api/v1/health")["pipeline"] as? [String: Any])?["error"] as? String) ?? ""
            Thread.sleep(forTimeInterval: 0.3)
        }
        XCTAssertTrue(note.contains("no emotion metadata in this stream"), "health: \(note)")
        silent.stop()

        let (status, text) = try ServeTests.launch(fer, ["serve", "--port", "0", "--source", "test", "--data", data, "--faces-from-stream"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(text.contains("--faces-from-stream reads faces an encoded stream carries"), text)
    }

    /// `fer serve --publish`: the video's faces go to the broker, `/metrics` counts what was
    /// published, and stopping the server leaves the summary and `offline` (retained); a bad URL
    /// stops it before it starts, saying why.
    func testServePublishesToABroker() throws {
        let data = try fer2013Path()
        let broker: TestBroker
        do { broker = try TestBroker() } catch TestBroker.Failure.missing(let what) { throw XCTSkip("\(what) is not installed (make setup installs it)") }
        let sub = try TestSubscriber(port: broker.port, topic: "serve/#")
        let server = try Server(["--source", "test", "--data", data, "--publish", "mqtt://127.0.0.1:\(broker.port)/serve"])
        try waitPlaying(server)
        XCTAssertTrue(sub.wait(for: 30, on: "serve/frames", timeout: 15), server.output.suffix(1000).description)
        let metrics = String(decoding: try server.get("/metrics").body, as: UTF8.self)
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        XCTAssertGreaterThan(value("fer_element_published_total") ?? 0, 20, metrics)
        XCTAssertEqual(value("fer_element_publish_connected"), 1)
        XCTAssertEqual(value("fer_element_publish_dropped_total"), 0)
        server.stop()
        XCTAssertTrue(sub.wait(timeout: 10) { $0.last == "serve/status offline" }, "\(sub.messages.suffix(2))")
        XCTAssertGreaterThanOrEqual(sub.messages.filter { $0.topic == "serve/summary" }.count, 1, "a summary at each end of the looping clip, and at the stop")

        let fer = packageRoot.appendingPathComponent(".build/release/fer").path
        let bad = try ServeTests.launch(fer, ["serve", "--port", "0", "--source", "none", "--publish", "mqtt://127.0.0.1/"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--publish") && bad.output.contains("no topic prefix"), bad.output)
    }

    /// The edge-to-viewer chain over the network: `fer rtsp --codec h265` annotates a clip and
    /// serves it as H.265 with the emotions inside; `fer serve --faces-from-stream` on its URL
    /// shows them without a model of its own doing any work.
    func testFacesFromAnH265RTSPStream() throws {
        let data = try fer2013Path()
        let fer = packageRoot.appendingPathComponent(".build/release/fer").path
        guard FileManager.default.fileExists(atPath: fer) else { throw XCTSkip("fer not built in .build/release") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-serve-rtsp-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("clip.gray").path
        let scene = try ServeTests.launch(fer, ["scene", data, "--frames", "600", "--faces", "4", "--size", "140", "--output", clip])
        XCTAssertEqual(scene.status, 0, scene.output)
        let port = 8700 + Int(getpid() % 200)
        let edge = Process()
        edge.executableURL = URL(fileURLWithPath: fer)
        // both ends publish to one broker: the edge's ferfilter (fer rtsp --publish) and the viewer's
        // ferseiextract (fer serve --faces-from-stream --publish)
        let broker = try? TestBroker()
        if broker == nil { print("mosquitto is not installed: fer rtsp and fer serve --publish not tested here") }
        let sub = try broker.map { try TestSubscriber(port: $0.port, topic: "chain/#") }
        let publish: (String) -> [String] = { leaf in broker.map { ["--publish", "mqtt://127.0.0.1:\($0.port)/chain/\(leaf)"] } ?? [] }
        edge.arguments = ["rtsp", "--codec", "h265", "--port", "\(port)", "--seconds", "60",
                          "--source", "filesrc location=\(clip) ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1",
                          "--ferfilter", "draw=false model=\(shippedModel.path)"] + publish("edge")
        edge.environment = Server.environment
        let edgeOut = Pipe()
        edge.standardOutput = edgeOut; edge.standardError = edgeOut
        try edge.run()
        defer { if edge.isRunning { edge.terminate() }; edge.waitUntilExit() }
        Thread.sleep(forTimeInterval: 2)
        let server = try Server(["--source", "rtsp://127.0.0.1:\(port)/fer", "--faces-from-stream"] + publish("viewer"))
        defer { server.stop() }
        try waitPlaying(server)
        let sse = try server.stream("/events", seconds: 15) { ServeTests.occurrences("event: frame", in: $0) >= 30 }
        if let sub {
            // what each end published: the frames with the faces, at the edge found, at the viewer read from the stream
            XCTAssertTrue(sub.wait(for: 30, on: "chain/viewer/frames", timeout: 15))
            for end in ["edge", "viewer"] {
                let frames = sub.messages.filter { $0.topic == "chain/\(end)/frames" }.compactMap {
                    (try? JSONSerialization.jsonObject(with: Data($0.payload.utf8))) as? [String: Any]
                }
                XCTAssertGreaterThanOrEqual(frames.count, 30, end)
                let withFaces = frames.filter { ($0["faces"] as? [Any] ?? []).count >= 3 }.count
                XCTAssertGreaterThanOrEqual(withFaces, frames.count - 3, "\(end): faces in what it published")
                XCTAssertEqual(sub.messages.filter { $0.topic == "chain/\(end)/status" }.first?.payload, "online", end)
            }
        }
        let frames = sse.components(separatedBy: "\n\n").filter { $0.contains("event: frame\n") }
            .compactMap { $0.components(separatedBy: "\n").first { $0.hasPrefix("data: {") } }
        XCTAssertGreaterThanOrEqual(frames.count, 30, server.output.suffix(1500).description)
        let withFaces = try frames.filter { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as! [String: Any]
            return (obj["faces"] as? [[String: Any]] ?? []).count >= 3
        }
        XCTAssertGreaterThanOrEqual(withFaces.count, frames.count - 2, "faces read from the H.265 RTSP stream")
        let health = try server.json("/api/v1/health")
        XCTAssertEqual(health["pipeline"].flatMap { ($0 as? [String: Any])?["state"] as? String }, "playing")
        XCTAssertTrue((health["pipeline"] as? [String: Any])?["pipeline"].map { "\($0)".contains("parsebin ! ferseiextract") } ?? false)
    }

    /// Many clients at once over loopback, bounded in count and time: API readers, video watchers
    /// that hang up, picture uploads beyond the queue, pages sending their camera beyond the
    /// session limit, garbage and half-sent requests. Every
    /// answer is a 2xx or a clear 503, and the server still answers quickly afterwards.
    func testLoadOfManyClients() throws {
        let data = try fer2013Path()
        let (img, _) = try sceneImage()
        let jpeg = [UInt8](try ImageCodec.encodeJPEG(img, quality: 85))
        let server = try Server(["--source", "test", "--data", data])
        defer { server.stop() }
        try waitPlaying(server)
        final class Tally: @unchecked Sendable {
            let lock = NSLock(); var counts: [String: Int] = [:]
            func add(_ k: String) { lock.lock(); counts[k, default: 0] += 1; lock.unlock() }
        }
        let tally = Tally()
        let port = server.port
        let until = Date().addingTimeInterval(4)
        let group = DispatchGroup()
        // half-sent requests held open for the whole run
        var stalled: [TCPSocket] = []
        for _ in 0..<20 {
            if let s = try? TCPSocket(host: "127.0.0.1", port: port) { try? s.write(Array("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n".utf8)); stalled.append(s) }
        }
        func worker(_ body: @escaping () -> Void) {   // a thread each: GCD's pool would run only some of them at once
            group.enter()
            Thread.detachNewThread { while Date() < until { body() }; group.leave() }
        }
        for i in 0..<48 {
            let path = ["/api/v1/health", "/api/v1/summary", "/api/v1/timeline?seconds=30", "/"][i % 4]
            worker {
                let r = try? HTTP.send(method: "GET", port: port, path: path)
                tally.add(r.map { "GET \($0.status)" } ?? "GET no answer")
            }
        }
        for _ in 0..<12 {
            worker {
                let text = (try? server.stream("/video.mjpg", seconds: 2) { ServeTests.occurrences("image/jpeg", in: $0) >= 3 }) ?? ""
                tally.add(ServeTests.occurrences("image/jpeg", in: text) >= 3 ? "video ok" : (text.contains(" 503 ") ? "video 503" : "video short"))
            }
        }
        for _ in 0..<12 {
            worker {
                let r = try? HTTP.send(method: "POST", port: port, path: "/api/v1/analyze", headers: ["Content-Type": "image/jpeg"], body: jpeg)
                tally.add(r.map { "analyze \($0.status)" } ?? "analyze no answer")
            }
        }
        for i in 0..<8 {   // 8 pages sending their camera, 4 sessions allowed; each page sends its frames in turn
            worker {
                let r = try? HTTP.send(method: "POST", port: port, path: "/api/v1/camera?session=load-\(i)", headers: ["Content-Type": "image/jpeg"], body: jpeg)
                tally.add(r.map { "camera \($0.status)" } ?? "camera no answer")
            }
        }
        for i in 0..<8 {
            worker {
                var junk = (0..<(1 + (i * 37) % 300)).map { _ in UInt8.random(in: 0...255) }
                if i % 2 == 0 { junk = Array("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\n\r\n".utf8) }
                let r = try? HTTP.raw(junk, port: port)
                tally.add(r.map { "junk \($0.status / 100)xx" } ?? "junk closed")
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "the load ended in time")
        let t0 = Date()
        let after = try server.get("/api/v1/health")
        let answerTime = Date().timeIntervalSince(t0)
        stalled.removeAll()
        let c = tally.counts
        print("load: \(c.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")); health afterwards in \(Int(answerTime * 1000)) ms")
        XCTAssertEqual(after.status, 200)
        XCTAssertLessThan(answerTime, 1.0)
        XCTAssertTrue(server.process.isRunning)
        XCTAssertGreaterThan(c["GET 200"] ?? 0, 500, "API readers were served")
        XCTAssertEqual(c.keys.filter { $0.hasPrefix("GET") && $0 != "GET 200" }, [], "every API read answered 200")
        XCTAssertGreaterThan(c["video ok"] ?? 0, 12, "video watchers got frames")
        XCTAssertGreaterThan(c["analyze 200"] ?? 0, 12, "pictures were analysed")
        XCTAssertEqual(c.keys.filter { $0.hasPrefix("analyze") && !["analyze 200", "analyze 503"].contains($0) }, [], "uploads answered 200 or 503 (queue full)")
        XCTAssertGreaterThan(c["camera 200"] ?? 0, 8, "camera frames were analysed")
        XCTAssertGreaterThan(c["camera 503"] ?? 0, 0, "pages beyond the 4 camera sessions were told so")
        XCTAssertEqual(c.keys.filter { $0.hasPrefix("camera") && !["camera 200", "camera 503"].contains($0) }, [],
                       "camera frames answered 200 or 503 (sessions in use)")
        XCTAssertEqual(c.keys.filter { $0.hasPrefix("junk 5") }, [], "garbage never causes a 5xx")
        let h = try server.json("/api/v1/health")
        XCTAssertEqual((h["clients"] as? [String: Int])?["video"], 0, "hung-up video clients are gone")
    }

    /// `GET /metrics` in Prometheus's text format: the viewer's and the element's figures move as
    /// the video plays, the emotion shares add up, and Prometheus's own linter (promtool, which CI
    /// installs) accepts the page.
    func testMetricsForPrometheus() throws {
        let data = try fer2013Path()
        let server = try Server(["--source", "test", "--data", data])
        defer { server.stop() }
        try waitPlaying(server)
        func scrape() throws -> (text: String, samples: [String: Double]) {
            let r = try server.get("/metrics")
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") ?? false, "\(r.headers)")
            let text = String(decoding: r.body, as: UTF8.self)
            var samples: [String: Double] = [:]
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                XCTAssertEqual(parts.count, 2, String(line))
                samples[String(parts[0])] = Double(parts[1])
            }
            return (text, samples)
        }
        let first = try scrape().samples
        Thread.sleep(forTimeInterval: 1.5)
        let (text, s) = try scrape()
        XCTAssertEqual(s["fer_pipeline_playing"], 1)
        XCTAssertGreaterThan(s["fer_frames_total"] ?? 0, (first["fer_frames_total"] ?? .infinity) + 10, "frames keep coming")
        XCTAssertGreaterThan(s["fer_element_frames_total"] ?? 0, first["fer_element_frames_total"] ?? .infinity)
        XCTAssertGreaterThanOrEqual(s["fer_element_tracks_total"] ?? 0, 6, "the clip's six faces")
        XCTAssertGreaterThan(s["fer_element_analysis_mean_seconds"] ?? 0, 0)
        XCTAssertLessThan(s["fer_element_analysis_mean_seconds"] ?? 1, 1, "seconds, not milliseconds")
        XCTAssertEqual(s["fer_element_skipped_total{reason=\"late\"}"], 0)
        let shares = FERDataset.labels.compactMap { s["fer_emotion_share{emotion=\"\($0)\"}"] }
        XCTAssertEqual(shares.count, 7)
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(s["fer_clients{kind=\"camera\"}"], 0)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else {
            throw XCTSkip("promtool not installed (.ci/run installs Debian's prometheus for it): the format was checked here only")
        }
        let p = Process(), input = Pipe(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        p.arguments = ["check", "metrics"]
        p.standardInput = input; p.standardOutput = out; p.standardError = out
        try p.run()
        input.fileHandleForWriting.write(Data(text.utf8)); try input.fileHandleForWriting.close()
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "promtool check metrics: \(said)")
    }

    func testWithoutVideoThePageAndAPIStillWork() throws {
        let server = try Server(["--source", "none"])
        defer { server.stop() }
        let h = try server.json("/api/v1/health")
        XCTAssertEqual((h["pipeline"] as? [String: Any])?["state"] as? String, "none")
        XCTAssertEqual(try server.get("/").status, 200)
        let video = try server.get("/video.mjpg")
        XCTAssertEqual(video.status, 503)
        XCTAssertTrue(String(decoding: video.body, as: UTF8.self).contains("no video source"))
        XCTAssertEqual(try server.get("/snapshot.jpg").status, 503)
        let (img, _) = try sceneImage()
        let r = try HTTP.send(method: "POST", port: server.port, path: "/api/v1/analyze", headers: ["Content-Type": "image/png"], body: [UInt8](ImageCodec.encodePNG(img)))
        XCTAssertEqual(r.status, 200)
    }

    /// The page in a real browser: video frames arrive, the emotion panel and the timeline fill.
    func testPageInHeadlessChromium() throws {
        guard let chromium = HeadlessChromium.find() else { throw XCTSkip("chromium not installed (make setup installs Debian's chromium)") }
        let data = try fer2013Path()
        _ = try publicTest()
        let server = try Server(["--source", "test", "--data", data])
        defer { server.stop() }
        try waitPlaying(server)
        let browser = try HeadlessChromium(executable: chromium)
        defer { browser.close() }
        let page = try browser.open("http://127.0.0.1:\(server.port)/")
        // document.body is null until the page is parsed: the condition is false then, not an error
        let ready = "document.body !== null && Number(document.body.dataset.events) >= 30 && Number(document.body.dataset.videoUpdates) >= 3 "
            + "&& Number(document.body.dataset.ticks) >= 2 && document.querySelectorAll('#faces .face').length >= 4"
        let ok = try page.wait(for: ready, timeout: 120)
        let state = try page.evaluate("JSON.stringify(document.body.dataset)") as? String ?? ""
        XCTAssertTrue(ok, "page state: \(state)")
        let emotions = try page.evaluate("Array.from(document.querySelectorAll('#faces .face')).map(e => e.dataset.emotion)") as? [String] ?? []
        let labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        XCTAssertTrue(emotions.allSatisfy(labels.contains), "\(emotions)")
        let video = try page.evaluate("[document.getElementById('video').naturalWidth, document.getElementById('video').naturalHeight]") as? [Int]
        XCTAssertEqual(video ?? [], [640, 480])
        XCTAssertTrue((try page.evaluate("document.getElementById('videostate').textContent") as? String ?? "").hasPrefix("video: live"))
        XCTAssertTrue((try page.evaluate("document.getElementById('status').textContent") as? String ?? "").hasPrefix("playing"))
        // the screenshot: the video area shows the clip (not one flat colour)
        let png = try page.screenshot()
        let shot = try ImageCodec.decode([UInt8](png))
        XCTAssertEqual(shot.width, 1400)
        let grey = shot.grey
        var values = Set<UInt8>()
        for y in stride(from: 100, to: 500, by: 7) { for x in stride(from: 40, to: 900, by: 7) { values.insert(grey[y * shot.width + x]) } }
        XCTAssertGreaterThan(values.count, 40, "the video area has picture detail")
        let out = packageRoot.appendingPathComponent(".build/test-artifacts")
        try? FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try? png.write(to: out.appendingPathComponent("fer-serve-page.png"))
        print("page state \(state); faces \(emotions); screenshot .build/test-artifacts/fer-serve-page.png")
    }
}
