import FERNet
import FERTraining
import SchemaCheck
import Foundation
import XCTest

/// "Use my camera": a browser's own frames through `POST /api/v1/camera`, each session a ferfilter
/// of its own, tested on the real `fer serve` with the FER2013 clip's frames as the camera.
final class CameraTests: XCTestCase {
    typealias Server = ServeTests.Server

    func frame(_ t: Int) throws -> (Image, FaceScene) { try sceneImage(frame: t) }

    func post(_ server: Server, session: String?, _ body: [UInt8], type: String = "image/jpeg") throws -> (Int, [String: Any]) {
        let path = "/api/v1/camera" + (session.map { "?session=\($0)" } ?? "")
        let r = try HTTP.send(method: "POST", port: server.port, path: path, headers: ["Content-Type": type], body: body)
        // every answer holds to its published schema (docs/schemas): a frame's faces, or what was wrong
        let schema = r.status == 200 ? "api-camera.schema.json" : "api-error.schema.json"
        let schemas = SchemaCheck(folder: packageRoot.appendingPathComponent("docs/schemas"))
        XCTAssertEqual((try? schemas.problems(json: String(decoding: r.body, as: UTF8.self), schema: schema)) ?? ["unreadable"], [],
                       "a \(r.status) answer against \(schema)")
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    /// The placement whose square holds the centre of `box`, if any.
    func placement(of box: [String: Int], in scene: FaceScene) -> Int? {
        let cx = box["x"]! + box["width"]! / 2, cy = box["y"]! + box["height"]! / 2
        return scene.placements.firstIndex { cx >= $0.x && cx < $0.x + $0.size && cy >= $0.y && cy < $0.y + $0.size }
    }

    /// Chromium's fake camera playing the clip: 45 frames of the moving scene as Y4M (4:2:0, grey
    /// chroma), which Chromium loops. The caller removes the file.
    func fakeCameraFile() throws -> URL {
        let y4m = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-camera-\(getpid())-\(UUID().uuidString).y4m")
        var video = Data("YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n".utf8)
        let chroma = Data(repeating: 128, count: 2 * 320 * 240)
        for t in 0..<45 {
            video.append(Data("FRAME\n".utf8)); video.append(contentsOf: try frame(t).0.pixels); video.append(chroma)
        }
        try video.write(to: y4m)
        return y4m
    }

    func fakeCameraArguments(_ y4m: URL) -> [String] {
        ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--use-file-for-fake-video-capture=\(y4m.path)"]
    }

    func testCameraSessionsTrackFacesAcrossFramesAndRefuseBadInput() throws {
        _ = try fer2013Path()
        // message-mode=on-change (for the server's own video) must not leave camera frames unanswered
        let server = try Server(["--source", "none", "--camera-sessions", "2", "--ferfilter", "message-mode=on-change draw-probabilities=true"])
        defer { server.stop() }

        // 40 frames of the moving scene, as a page sends them: each answer holds the tracked faces
        var idsByPlacement: [Int: Set<Int>] = [:]
        var placementsByID: [Int: Set<Int>] = [:]
        var fullFrames = 0
        let labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        for t in 0..<40 {
            let (img, scene) = try frame(t)
            let (status, j) = try post(server, session: "page-a", [UInt8](try ImageCodec.encodeJPEG(img, quality: 85)))
            XCTAssertEqual(status, 200, "frame \(t): \(j)")
            XCTAssertEqual(j["frame"] as? Int, t + 1)
            XCTAssertEqual(j["width"] as? Int, 640); XCTAssertEqual(j["height"] as? Int, 480)
            let faces = j["faces"] as? [[String: Any]] ?? []
            if faces.count == 6 { fullFrames += 1 }
            for f in faces {
                let box = try XCTUnwrap(f["box"] as? [String: Int])
                let id = try XCTUnwrap(f["id"] as? Int)
                let k = try XCTUnwrap(placement(of: box, in: scene), "frame \(t): a box on no face: \(box)")
                idsByPlacement[k, default: []].insert(id)
                placementsByID[id, default: []].insert(k)
                let p = try XCTUnwrap(f["probabilities"] as? [String: Double])
                XCTAssertEqual(Set(p.keys), Set(labels))
                XCTAssertEqual(p.values.reduce(0, +), 1, accuracy: 0.01)
                XCTAssertTrue(labels.contains(f["emotion"] as? String ?? ""))
            }
        }
        print("camera session: \(fullFrames) of 40 frames with all 6 faces; ids per face \(idsByPlacement.sorted { $0.key < $1.key }.map { $0.value.sorted() })")
        XCTAssertGreaterThanOrEqual(fullFrames, 34, "every face found on nearly every frame (each frame is searched in full; here the top middle face is first found on frame 5)")
        XCTAssertEqual(idsByPlacement.count, 6)
        XCTAssertTrue(placementsByID.values.allSatisfy { $0.count == 1 }, "a track never jumps to another face: \(placementsByID)")
        XCTAssertTrue(idsByPlacement.values.allSatisfy { $0.count == 1 }, "each face keeps one id over the 40 frames: \(idsByPlacement)")
        let idsBefore = Set(idsByPlacement.values.flatMap { $0 })

        // a broken frame is refused and the session goes on as if it had not been sent
        XCTAssertEqual(try post(server, session: "page-a", [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).0, 400, "a truncated JPEG")
        XCTAssertEqual(try post(server, session: "page-a", Array("not a picture".utf8)).0, 415)
        let (img40, scene40) = try frame(40)
        let (status, j) = try post(server, session: "page-a", [UInt8](ImageCodec.encodePNG(img40)), type: "image/png")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(j["frame"] as? Int, 41, "the refused frames did not count")
        let after = (j["faces"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        XCTAssertEqual(Set(after), idsBefore, "the same tracks after the refused frames")

        // a frame of another, odd size (a camera switched): the session follows it
        let small = Image(width: 333, height: 251, channels: 1,
                          pixels: Image.resizeGrey(img40.pixels, width: 640, height: 480, to: 333, 251))
        let (s2, j2) = try post(server, session: "page-a", [UInt8](try ImageCodec.encodeJPEG(small, quality: 90)))
        XCTAssertEqual(s2, 200, "\(j2)")
        XCTAssertEqual(j2["width"] as? Int, 333); XCTAssertEqual(j2["height"] as? Int, 251)
        XCTAssertEqual((j2["faces"] as? [[String: Any]])?.count, 6, "all six faces (67 px) found in the smaller frame")
        _ = scene40

        // sessions: at most 2 here, ended by DELETE, bad ids refused
        XCTAssertEqual(try post(server, session: "page-b", [UInt8](try ImageCodec.encodeJPEG(img40, quality: 85))).0, 200)
        let health = try server.json("/api/v1/health")
        XCTAssertEqual((health["clients"] as? [String: Int])?["camera"], 2)
        let (full, fullAnswer) = try post(server, session: "page-c", [UInt8](try ImageCodec.encodeJPEG(img40, quality: 85)))
        XCTAssertEqual(full, 503)
        XCTAssertTrue((fullAnswer["error"] as? String ?? "").contains("camera sessions"), "\(fullAnswer)")
        XCTAssertEqual(try HTTP.send(method: "DELETE", port: server.port, path: "/api/v1/camera?session=page-b").status, 200)
        XCTAssertEqual(try HTTP.send(method: "DELETE", port: server.port, path: "/api/v1/camera?session=page-b").status, 404)
        XCTAssertEqual(try post(server, session: "page-c", [UInt8](try ImageCodec.encodeJPEG(img40, quality: 85))).0, 200, "a place was free again")
        XCTAssertEqual(try post(server, session: "../etc", [UInt8](try ImageCodec.encodeJPEG(img40, quality: 85))).0, 400)
        XCTAssertEqual(try post(server, session: nil, [UInt8](try ImageCodec.encodeJPEG(img40, quality: 85))).0, 400)
        let get = try server.get("/api/v1/camera")
        XCTAssertEqual(get.status, 405)
        XCTAssertEqual(get.headers["allow"], "POST, DELETE")

        // idle sessions end on their own (10 s without a frame)
        let deadline = Date().addingTimeInterval(20)
        var open = 2
        while Date() < deadline && open > 0 {
            Thread.sleep(forTimeInterval: 0.5)
            open = ((try server.json("/api/v1/health"))["clients"] as? [String: Int])?["camera"] ?? -1
        }
        XCTAssertEqual(open, 0, "idle camera sessions ended")
        XCTAssertEqual(server.stop(), 0, "SIGTERM stops it cleanly with camera sessions started")
    }

    /// The page's "Use my camera" in a real browser whose camera is Chromium's fake device playing
    /// the clip's frames: the page sends them, draws the tracked faces over its own picture, lists
    /// them in the panel, and ends its session when switched back.
    func testPageUsesTheBrowsersCameraInHeadlessChromium() throws {
        guard let chromium = HeadlessChromium.find() else { throw XCTSkip("chromium not installed (make setup installs Debian's chromium)") }
        _ = try fer2013Path()
        let y4m = try fakeCameraFile()
        defer { try? FileManager.default.removeItem(at: y4m) }
        let server = try Server(["--source", "none"])
        defer { server.stop() }
        let browser = try HeadlessChromium(executable: chromium, arguments: fakeCameraArguments(y4m))
        defer { browser.close() }
        let page = try browser.open("http://127.0.0.1:\(server.port)/")
        XCTAssertTrue(try page.wait(for: "document.body !== null && document.getElementById('camera') !== null", timeout: 120))
        _ = try page.evaluate("document.getElementById('camera').click()")
        let ready = "document.body.dataset.mode === 'camera' && Number(document.body.dataset.cameraFrames) >= 20 "
            + "&& document.querySelectorAll('#faces .face').length >= 5"
        let ok = try page.wait(for: ready, timeout: 120)
        let state = try page.evaluate("JSON.stringify(document.body.dataset) + ' ' + document.getElementById('videostate').textContent") as? String ?? ""
        XCTAssertTrue(ok, "page state: \(state)")
        let labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        let emotions = try page.evaluate("Array.from(document.querySelectorAll('#faces .face')).map(e => e.dataset.emotion)") as? [String] ?? []
        XCTAssertTrue(emotions.allSatisfy(labels.contains), "\(emotions)")
        XCTAssertTrue((try page.evaluate("document.getElementById('videostate').textContent") as? String ?? "").hasPrefix("camera: live · 640x480"), state)
        XCTAssertEqual(try page.evaluate("[document.getElementById('cam').videoWidth, document.getElementById('cam').videoHeight]") as? [Int], [640, 480])
        // the overlay: a box in each face's colour, drawn where the (mirrored) faces are
        let drawn = try page.evaluate("""
            (() => { const c = document.getElementById('overlay'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                     let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()
            """) as? Int ?? 0
        XCTAssertGreaterThan(drawn, 5_000, "boxes and labels drawn on the overlay")
        XCTAssertEqual((try server.json("/api/v1/health")["clients"] as? [String: Int])?["camera"], 1)
        XCTAssertGreaterThan(Int(try page.evaluate("document.body.dataset.ticks") as? String ?? "0") ?? 0, 0, "the camera's timeline has points")
        let png = try page.screenshot()
        let out = packageRoot.appendingPathComponent(".build/test-artifacts")
        try? FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try? png.write(to: out.appendingPathComponent("fer-serve-camera.png"))
        // back to the server's video: the session ends at once
        _ = try page.evaluate("document.getElementById('camera').click()")
        XCTAssertTrue(try page.wait(for: "document.body.dataset.mode === 'server'", timeout: 120))
        let deadline = Date().addingTimeInterval(5)
        var open = 1
        while Date() < deadline && open != 0 {
            Thread.sleep(forTimeInterval: 0.2)
            open = (try server.json("/api/v1/health")["clients"] as? [String: Int])?["camera"] ?? -1
        }
        XCTAssertEqual(open, 0, "the page ended its session")
        print("camera page: \(state); faces \(emotions); screenshot .build/test-artifacts/fer-serve-camera.png")
    }

    /// A self-signed certificate for fer.test and 127.0.0.1 and its key, made by openssl in `dir`.
    static func selfSignedCertificate(in dir: URL, name: String = "fer") throws -> (cert: String, key: String) {
        let cert = dir.appendingPathComponent("\(name)-cert.pem").path, key = dir.appendingPathComponent("\(name)-key.pem").path
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { throw XCTSkip("openssl not installed (make setup installs it)") }
        let (status, text) = try ServeTests.launch("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=fer.test",
            "-addext", "subjectAltName=DNS:fer.test,IP:127.0.0.1", "-keyout", key, "-out", cert])
        XCTAssertEqual(status, 0, text)
        return (cert, key)
    }

    /// HTTPS (`--tls-cert`/`--tls-key`) is what lets a browser on another machine use its camera:
    /// Chromium, reaching the server under a host name that is not localhost (fer.test, mapped to
    /// 127.0.0.1), gives the plain-HTTP page no camera (the page says how to fix it) and the HTTPS
    /// page its camera; the server's video (MJPEG) and feed (SSE) come over TLS too. curl checks
    /// the certificate; plain HTTP on the TLS port gets no answer.
    func testHTTPSGivesAPageOnAnotherHostTheCamera() throws {
        guard let chromium = HeadlessChromium.find() else { throw XCTSkip("chromium not installed (make setup installs Debian's chromium)") }
        _ = try fer2013Path()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try CameraTests.selfSignedCertificate(in: dir)
        let secure = try Server(["--source", "test", "--tls-cert", cert, "--tls-key", key])
        defer { secure.stop() }
        XCTAssertTrue(secure.output.contains("serving https://127.0.0.1:\(secure.port)/"), secure.output)
        let (status, health) = try ServeTests.launch("/usr/bin/curl", ["-sS", "-m", "10", "--cacert", cert, "--resolve", "fer.test:\(secure.port):127.0.0.1",
                                                                      "https://fer.test:\(secure.port)/api/v1/health"])
        XCTAssertEqual(status, 0, health)
        XCTAssertTrue(health.contains("\"labels\":[\"angry\""), health)
        XCTAssertNotEqual(try ServeTests.launch("/usr/bin/curl", ["-sS", "-m", "5", "http://127.0.0.1:\(secure.port)/api/v1/health"]).status, 0)

        let plain = try Server(["--source", "none"])
        defer { plain.stop() }
        let y4m = try fakeCameraFile()
        defer { try? FileManager.default.removeItem(at: y4m) }
        let browser = try HeadlessChromium(executable: chromium, arguments: fakeCameraArguments(y4m)
                                           + ["--host-resolver-rules=MAP fer.test 127.0.0.1", "--ignore-certificate-errors"])
        defer { browser.close() }
        let loaded = "document.body !== null && document.getElementById('camera') !== null"
        let insecure = try browser.open("http://fer.test:\(plain.port)/")
        XCTAssertTrue(try insecure.wait(for: loaded, timeout: 120))
        XCTAssertEqual(try insecure.evaluate("window.isSecureContext") as? Bool, false)
        _ = try insecure.evaluate("document.getElementById('camera').click()")
        let refused = try insecure.wait(for: "document.getElementById('videostate').textContent.includes('--tls-cert')", timeout: 120)
        let said = try insecure.evaluate("document.getElementById('videostate').textContent") as? String ?? ""
        XCTAssertTrue(refused, said)

        let page = try browser.open("https://fer.test:\(secure.port)/")
        XCTAssertTrue(try page.wait(for: loaded, timeout: 120))
        XCTAssertEqual(try page.evaluate("window.isSecureContext") as? Bool, true)
        let state = "JSON.stringify(document.body.dataset) + ' ' + document.getElementById('videostate').textContent"
        let served = try page.wait(for: "Number(document.body.dataset.faces) >= 3 && document.getElementById('video').naturalWidth === 640", timeout: 180)
        let before = try page.evaluate(state) as? String ?? ""
        XCTAssertTrue(served, before)
        _ = try page.evaluate("document.getElementById('camera').click()")
        let ready = "document.body.dataset.mode === 'camera' && Number(document.body.dataset.cameraFrames) >= 10 "
            + "&& document.querySelectorAll('#faces .face').length >= 5"
        let camera = try page.wait(for: ready, timeout: 180)
        let after = try page.evaluate(state) as? String ?? ""
        XCTAssertTrue(camera, after)
        print("HTTPS page: \(after)")
    }

    /// A certificate or key that cannot serve fails at once, naming the file, before anything listens.
    func testBadTLSFilesAreRefusedWithTheirNames() throws {
        let fer = packageRoot.appendingPathComponent(".build/release/fer").path
        guard FileManager.default.fileExists(atPath: fer) else { throw XCTSkip("fer not built in .build/release") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-tls-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try CameraTests.selfSignedCertificate(in: dir)
        let (_, otherKey) = try CameraTests.selfSignedCertificate(in: dir, name: "other")
        let garbage = dir.appendingPathComponent("garbage.pem").path
        try Data("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".utf8).write(to: URL(fileURLWithPath: garbage))
        for (args, expected) in [(["--tls-cert", cert], "--tls-cert and --tls-key go together"),
                                 (["--tls-cert", dir.appendingPathComponent("missing.pem").path, "--tls-key", key], "no readable TLS certificate at \(dir.path)/missing.pem"),
                                 (["--tls-cert", garbage, "--tls-key", key], "cannot read the TLS certificate \(garbage)"),
                                 (["--tls-cert", cert, "--tls-key", cert], "cannot read the TLS private key \(cert)"),
                                 (["--tls-cert", cert, "--tls-key", otherKey], "the TLS private key \(otherKey) does not go with the certificate \(cert)")] {
            let (status, text) = try ServeTests.launch(fer, ["serve", "--port", "0", "--source", "none", "--model", shippedModel.path] + args)
            XCTAssertNotEqual(status, 0, text)
            XCTAssertTrue(text.contains(expected), "\(args): \(text.suffix(600))")
            XCTAssertFalse(text.contains("serving"), text)
        }
    }
}
