import ArgumentParser
import CGstAppLibs
import FaceAnalysis
import FaceDetect
import FERNet
import FERTraining
import Foundation
import MQTTPublish
import WebViewer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The web viewer: the annotated video and a live emotion panel in a browser, and a JSON API.",
        discussion: """
        Runs SOURCE ! videoconvert ! ferfilter ! ... and serves http://HOST:PORT/: the annotated video (MJPEG), \
        per-face emotion bars and a timeline of the emotions (fed by Server-Sent Events at /events), and \
        POST /api/v1/analyze (a JPEG or PNG body), GET /api/v1/summary, /api/v1/timeline and /api/v1/health. \
        Without --source it uses the first webcam; with no webcam it serves the page and the API without video. \
        The page can also use the camera of the browser's own machine ("Use my camera"): its frames go to \
        POST /api/v1/camera, each page through a ferfilter of its own. Browsers allow that only on \
        http://localhost or over HTTPS: for a remote server give --tls-cert and --tls-key (PEM files; e.g. \
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj /CN=HOST \
        -addext subjectAltName=DNS:HOST -keyout key.pem -out cert.pem), or use ssh -L 8080:localhost:8080 HOST. \
        With --faces-from-stream the video's own emotion metadata is shown instead of analysing it: a stream \
        from `fer rtsp` or any pipeline with ferseiinsert (e.g. --source rtsp://edge:8554/fer), drawn by \
        feroverlay. Needs the plugin installed (plugin/meson-free-build.sh) for video. Stop with Ctrl-C.
        """)

    @Option(help: ArgumentHelp("Video: /dev/videoN, a video file, a URL (rtsp://, http://, file://), `test` (a clip of FER2013 faces), a gst-launch fragment, or `none`.",
                               valueName: "source"))
    var source: String?
    @Option(help: "TCP port (0: any free port).") var port = 8080
    @Option(help: "Address to listen on (0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "Model JSON, for the video and the analyze API.") var model = Defaults.model
    @Option(help: "Face detector for the video, the cameras and the analyze API: yunet or haar (ferfilter's detector).")
    var detector = AnalysisSettings().detector.name
    @Option(help: "YuNet model (ONNX).") var yunet = Defaults.yunet
    @Option(help: "Haar cascade XML (with --detector haar).") var cascade = defaultCascade
    @Option(help: "More ferfilter properties, e.g. \"detect-interval=2 draw-probabilities=true\".") var ferfilter = ""
    @Option(help: ArgumentHelp("Publish the video's faces to an MQTT broker: mqtt://[user[:password]@]host[:port]/prefix or mqtts://...?ca=FILE "
                               + "(ferfilter's publish property; with --faces-from-stream, ferseiextract's).", valueName: "url"))
    var publish: String?
    @Option(help: "FER2013 data, for --source test.") var data = Defaults.data
    @Option(help: "JPEG quality of the video stream (1-100).") var jpegQuality = 80
    @Flag(help: "Show the faces and emotions the video stream carries (SEI from ferseiinsert or fer rtsp) instead of analysing it.")
    var facesFromStream = false
    @Option(help: "Most browsers sending their own camera at once (\"Use my camera\"; 0: none).") var cameraSessions = 4
    @Option(help: ArgumentHelp("Serve HTTPS with this certificate (chain), a PEM file; with --tls-key.", valueName: "pem"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("The certificate's private key, an unencrypted PEM file.", valueName: "pem"))
    var tlsKey: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be 1...100") }
        guard (0...64).contains(cameraSessions) else { throw ValidationError("--camera-sessions must be 0...64") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together: give both for HTTPS") }
        if let publish {
            do { _ = try PublishTarget(url: publish) } catch { throw ValidationError("--publish \(error)") }
        }
    }

    func run() async throws {
        // a bad certificate or key fails here, before the model, the video and the port
        let tls: TLSFiles.Configuration?
        if let tlsCert, let tlsKey {
            tls = try TLSFiles.configuration(certificate: tlsCert, key: tlsKey)
        } else {
            tls = nil
        }
        let modelURL = URL(fileURLWithPath: model)
        let m = try FacialExpressionModel.shared(contentsOf: modelURL)
        var settings = AnalysisSettings()
        guard let kind = DetectorKind(name: detector) else { throw ValidationError("--detector must be yunet or haar") }
        settings.detector = kind
        let faceDetector = try settings.makeDetector(cascade: cascade, yunet: yunet)
        let hub = LiveHub(labels: m.labels, jpegQuality: jpegQuality)
        let analyzer = ImageAnalyzer(model: m, detector: faceDetector, settings: settings)
        var pipeline: LivePipeline?
        var clip: String?
        gst_init(nil, nil)
        let yunetPath = URL(fileURLWithPath: yunet).path
        let elementProperties = "model=\"\(modelURL.path)\" detector=\(kind.name) detector-model=\"\(yunetPath)\" cascade=\"\(cascade)\" \(ferfilter)"
        let cameras = CameraSessions(labels: m.labels, ferfilterProperties: elementProperties, maxSessions: cameraSessions)
        if let spec = source ?? VideoSource.defaultCamera(), spec != "none" {
            guard let factory = gst_element_factory_find("ferfilter") else {
                throw ValidationError("GStreamer does not find ferfilter: install the plugin with plugin/meson-free-build.sh")
            }
            gst_object_unref(UnsafeMutableRawPointer(factory))
            let video: VideoSource
            if spec == "test" {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("fer-serve-\(getpid()).gray").path
                try Serve.writeTestClip(data: data, to: path)
                clip = path
                video = VideoSource.rawClip(path: path, width: 640, height: 480, fps: 30, spec: "test (FER2013 PublicTest faces)")
            } else {
                video = try VideoSource.resolve(spec)
            }
            let publishing = publish.map { "publish=\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" } ?? ""
            let p = LivePipeline(source: facesFromStream ? try video.readingEmotionSEI(properties: publishing) : video,
                                 ferfilterProperties: elementProperties + " " + publishing,
                                 hub: hub, facesFromStream: facesFromStream)
            try p.start()
            pipeline = p
            hub.elementStats = { [weak p] in p?.elementStats() }
            stderr("video: \(p.launchLine)")
        } else {
            hub.setStatus(PipelineStatus(state: "none"))
            stderr("no webcam and no --source: serving the page and the API without video")
        }
        Shutdown.install { [clip] in
            pipeline?.stop()
            cameras.finish()
            hub.finish()
            if let clip { try? FileManager.default.removeItem(atPath: clip) }
        }
        let server = ViewerServer(hub: hub, analyzer: analyzer, cameras: cameras, modelName: modelURL.deletingPathExtension().lastPathComponent)
        let host = self.host
        try await server.run(host: host, port: port, tls: tls) { bound in
            print("serving \(tls == nil ? "http" : "https")://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(bound)/")
            fflush(stdout)
        }
    }

    /// 8 s of 640x480 GRAY8 video in which six PublicTest faces drift (as `fer scene` renders).
    static func writeTestClip(data: String, to path: String) throws {
        let d = try loadData(data).subset([.publicTest])
        let scene = FaceScene.grid(width: 640, height: 480, rows: Array(12..<18), size: 130)
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw ValidationError("cannot write \(path)") }
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        for t in 0..<240 { try fh.write(contentsOf: scene.moved(frame: t).render(d, phase: t)) }
    }
}

/// Ctrl-C and SIGTERM: stop the pipeline, end the streams, clean up, exit.
enum Shutdown {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []

    static func install(_ cleanup: @escaping () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                cleanup()
                exit(0)
            }
            s.resume()
            sources.append(s)
        }
    }
}
