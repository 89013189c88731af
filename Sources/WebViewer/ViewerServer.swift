import Foundation
import Hummingbird
import HummingbirdTLS
import NIOSSL
import Logging

/// The web viewer's HTTP side (Hummingbird):
///
/// | route | what |
/// |---|---|
/// | `GET /` | the page: live video and the emotion panel |
/// | `GET /video.mjpg` | the annotated video, MJPEG (`multipart/x-mixed-replace`) |
/// | `GET /snapshot.jpg` | the newest annotated frame |
/// | `GET /events` | Server-Sent Events: `frame` (each frame's faces), `tick` (each second's emotion shares), `status` |
/// | `POST /api/v1/analyze` | a JPEG/PNG/PGM body; `?whole=true` takes it as one cropped face. Answers `{"faces": [...]}` |
/// | `POST /api/v1/camera?session=ID` | one frame of the page's own camera (JPEG/PNG/PGM), through that session's ferfilter: tracked faces |
/// | `DELETE /api/v1/camera?session=ID` | ends the session (idle sessions end on their own) |
/// | `GET /api/v1/summary` | share of each emotion per track and overall since start |
/// | `GET /api/v1/timeline?seconds=N` | the last N seconds (at most 600), one point per second |
/// | `GET /api/v1/health` (also `/healthz`) | pipeline state, frames, fps, clients |
///
/// Errors are JSON `{"error": "..."}` with a 4xx/5xx status: 400 not an image, 405 wrong method
/// (with `Allow`), 413 too large, 415 unsupported image, 429 a camera session's previous frame still
/// in progress, 503 no video yet or too many clients.
public struct ViewerServer: Sendable {
    public let hub: LiveHub
    public let analyzer: ImageAnalyzer
    public let cameras: CameraSessions
    public let modelName: String
    /// Largest request body accepted by `/api/v1/analyze`.
    public var maxUpload = 16 << 20
    /// Most simultaneous `/video.mjpg` and `/events` clients (each).
    public var maxStreams = 64
    let started = Date()

    public init(hub: LiveHub, analyzer: ImageAnalyzer, cameras: CameraSessions, modelName: String) {
        self.hub = hub; self.analyzer = analyzer; self.cameras = cameras; self.modelName = modelName
    }

    /// Routes and their methods, for the 405 answers.
    static let routes: [String: [HTTPRequest.Method]] = [
        "/": [.get, .head], "/video.mjpg": [.get], "/snapshot.jpg": [.get, .head], "/events": [.get],
        "/api/v1/analyze": [.post], "/api/v1/camera": [.post, .delete], "/api/v1/summary": [.get, .head], "/api/v1/timeline": [.get, .head],
        "/api/v1/health": [.get, .head], "/healthz": [.get, .head], "/metrics": [.get, .head],
    ]

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MethodGuard(routes: ViewerServer.routes))
        let hub = self.hub, analyzer = self.analyzer, cameras = self.cameras, maxUpload = self.maxUpload, maxStreams = self.maxStreams

        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: ByteBuffer(string: ViewerPage.html)))
        }

        router.get("/video.mjpg") { _, _ in
            guard hub.currentStatus.state != "none" else { return jsonError(.serviceUnavailable, "no video source: start fer serve with --source") }
            guard hub.frames.count < maxStreams else { return jsonError(.serviceUnavailable, "too many video clients (\(maxStreams))") }
            let sub = hub.frames.subscribe()
            return Response(
                status: .ok,
                headers: [.contentType: "multipart/x-mixed-replace; boundary=ferframe", .cacheControl: "no-cache, no-store"],
                body: ResponseBody { writer in
                    defer { hub.frames.unsubscribe(sub.id) }
                    if let first = hub.snapshot() { try await writer.write(mjpegPart(first)) }
                    for await jpeg in sub.stream { try await writer.write(mjpegPart(jpeg)) }
                    try await writer.finish(nil)
                })
        }

        router.get("/snapshot.jpg") { _, _ in
            guard let jpeg = hub.snapshot() else { return jsonError(.serviceUnavailable, "no video frame yet") }
            return Response(status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "no-cache"],
                            body: .init(byteBuffer: ByteBuffer(bytes: jpeg)))
        }

        router.get("/events") { _, _ in
            guard hub.events.count < maxStreams else { return jsonError(.serviceUnavailable, "too many event clients (\(maxStreams))") }
            let sub = hub.events.subscribe()
            let hello = "retry: 2000\nevent: status\ndata: \(encodeJSON(hub.currentStatus))\n\n"
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    defer { hub.events.unsubscribe(sub.id) }
                    try await writer.write(ByteBuffer(string: hello))
                    for await event in sub.stream { try await writer.write(ByteBuffer(string: event)) }
                    try await writer.finish(nil)
                })
        }

        router.post("/api/v1/analyze") { request, _ in
            let body: [UInt8]
            switch await imageBody(request, limit: maxUpload) {
            case .failure(let refusal): return refusal.response
            case .success(let bytes): body = bytes
            }
            let whole = ["1", "true", "yes"].contains(request.uri.queryParameters.get("whole")?.lowercased() ?? "")
            do {
                return jsonResponse(try await analyzer.analyzeQueued(body, wholeImage: whole))
            } catch let e as AnalysisError {
                return jsonError(HTTPResponse.Status(code: e.status), e.description)
            }
        }

        router.post("/api/v1/camera") { request, _ in
            guard let id = request.uri.queryParameters.get("session") else {
                return jsonError(.badRequest, "no session: POST /api/v1/camera?session=ID (an id the page makes, e.g. a random UUID)")
            }
            let body: [UInt8]
            switch await imageBody(request, limit: maxUpload) {
            case .failure(let refusal): return refusal.response
            case .success(let bytes): body = bytes
            }
            do {
                return jsonResponse(try await cameras.analyze(session: id, image: body))
            } catch let e as CameraError {
                return jsonError(HTTPResponse.Status(code: e.status), e.description)
            }
        }

        router.delete("/api/v1/camera") { request, _ in
            guard let id = request.uri.queryParameters.get("session") else { return jsonError(.badRequest, "no session: DELETE /api/v1/camera?session=ID") }
            return cameras.end(id) ? jsonResponse(["ended": id]) : jsonError(.notFound, "no camera session \(id)")
        }

        router.get("/api/v1/summary") { _, _ in jsonResponse(hub.ledger.summary()) }

        router.get("/api/v1/timeline") { request, _ in
            let raw = request.uri.queryParameters.get("seconds")
            guard let seconds = raw.map({ Int($0) }) ?? 300, seconds > 0 else {
                return jsonError(.badRequest, "seconds must be a positive whole number")
            }
            let points = hub.ledger.timeline(seconds: min(seconds, hub.ledger.historySeconds))
            return jsonResponse(TimelineAnswer(labels: hub.ledger.labels, points: points))
        }

        let modelName = self.modelName, started = self.started
        let health: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            let stats = hub.frameStats
            return jsonResponse(Health(status: "ok", uptime: Date().timeIntervalSince(started), model: modelName,
                                       labels: hub.ledger.labels, pipeline: hub.currentStatus, frames: stats.frames,
                                       fps: (stats.fps * 10).rounded() / 10,
                                       clients: ["video": hub.frames.count, "events": hub.events.count, "camera": cameras.count],
                                       ferfilter: hub.elementStats?()))
        }
        router.get("/api/v1/health", use: health)
        router.get("/healthz", use: health)
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-cache"],
                     body: .init(byteBuffer: ByteBuffer(string: Metrics.text(hub: hub, cameras: cameras.count,
                                                                            uptime: Date().timeIntervalSince(started)))))
        }
        return router
    }

    /// Serves until the process ends, over HTTPS when `tls` is given (see `TLSFiles.configuration`).
    /// `onRunning` gets the bound port (useful with port 0).
    public func run(host: String, port: Int, tls: TLSConfiguration? = nil, onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let hub = self.hub, cameras = self.cameras
        let heartbeat = Task {
            while !Task.isCancelled {
                for _ in 0..<15 {
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                    cameras.reap()
                }
                hub.heartbeat()
            }
        }
        defer { heartbeat.cancel() }
        var logger = Logger(label: "fer-serve")
        logger.logLevel = .warning
        let app = Application(router: router(), server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
                              configuration: .init(address: .hostname(host, port: port), serverName: "fer-serve"),
                              onServerRunning: { channel in onRunning(channel.localAddress?.port ?? port) }, logger: logger)
        try await app.run()
    }
}

/// A certificate (chain) and its private key, PEM files, for serving HTTPS: browsers give a page
/// the camera ("Use my camera") only in a secure context, which for a server on another machine
/// means HTTPS.
public enum TLSFiles {
    /// NIOSSL's server configuration, as `ViewerServer.run` takes it.
    public typealias Configuration = TLSConfiguration

    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// The server configuration, checked before anything listens: the files must be readable PEM
    /// and the key must be the certificate's. Each failure names the file and what is wrong.
    public static func configuration(certificate: String, key: String) throws -> TLSConfiguration {
        for (what, path) in [("certificate", certificate), ("private key", key)] where !FileManager.default.isReadableFile(atPath: path) {
            throw Failure(description: "no readable TLS \(what) at \(path)")
        }
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw Failure(description: "cannot read the TLS certificate \(certificate) (a PEM file: -----BEGIN CERTIFICATE-----): \(error)")
        }
        guard !chain.isEmpty else { throw Failure(description: "no certificate in \(certificate) (a PEM file: -----BEGIN CERTIFICATE-----)") }
        let privateKey: NIOSSLPrivateKey
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw Failure(description: "cannot read the TLS private key \(key) (an unencrypted PEM file: -----BEGIN PRIVATE KEY-----): \(error)")
        }
        let config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        do { _ = try NIOSSLContext(configuration: config) } catch {
            throw Failure(description: "the TLS private key \(key) does not go with the certificate \(certificate): \(error)")
        }
        return config
    }
}

/// Why a request body is not taken as a picture, as the answer to send.
struct Refusal: Error {
    let response: Response
    init(_ status: HTTPResponse.Status, _ message: String) { response = jsonError(status, message) }
}

/// A request's body as the bytes of a picture: refused when it is declared or found to be over
/// `limit` bytes, has a Content-Type that is no image, or is empty.
func imageBody(_ request: Request, limit: Int) async -> Result<[UInt8], Refusal> {
    if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
        return .failure(Refusal(.contentTooLarge, "body of \(length) bytes is over the \(limit)-byte limit"))
    }
    let type = request.headers[.contentType]?.lowercased() ?? ""
    let accepted = ["image/", "application/octet-stream"]
    guard type.isEmpty || accepted.contains(where: { type.hasPrefix($0) }) else {
        return .failure(Refusal(.unsupportedMediaType, "Content-Type \(type): POST a JPEG, PNG or PGM image as the body"))
    }
    let body: ByteBuffer
    do {
        body = try await request.body.collect(upTo: limit)
    } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
        return .failure(Refusal(.contentTooLarge, "body over the \(limit)-byte limit"))
    } catch {
        return .failure(Refusal(.badRequest, "the body could not be read: \(error)"))
    }
    guard body.readableBytes > 0 else { return .failure(Refusal(.badRequest, "empty body: POST a JPEG, PNG or PGM image")) }
    return .success(Array(body.readableBytesView))
}

struct TimelineAnswer: Codable { var labels: [String]; var points: [TimelinePoint] }

struct Health: Codable {
    var status: String
    var uptime: Double
    var model: String
    var labels: [String]
    var pipeline: PipelineStatus
    var frames: Int
    var fps: Double
    var clients: [String: Int]
    /// The ferfilter's `stats` while the pipeline plays (absent with faces from the stream).
    var ferfilter: [String: StatValue]?
}

/// Answers 405 (with `Allow`) for a known path asked with a method it does not take; the router
/// alone would say 404.
struct MethodGuard<Context: RequestContext>: RouterMiddleware {
    let routes: [String: [HTTPRequest.Method]]
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let allowed = routes[request.uri.path], !allowed.contains(request.method) {
            var r = jsonError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path)")
            r.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return r
        }
        return try await next(request, context)
    }
}

private let jsonEncoder: JSONEncoder = {
    let e = JSONEncoder(); e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]; return e
}()

func encodeJSON<T: Encodable>(_ value: T) -> String {
    (try? jsonEncoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
}

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
             body: .init(byteBuffer: ByteBuffer(string: encodeJSON(value))))
}

func jsonError(_ status: HTTPResponse.Status, _ message: String) -> Response {
    jsonResponse(["error": message], status: status)
}

func mjpegPart(_ jpeg: [UInt8]) -> ByteBuffer {
    var b = ByteBuffer(string: "--ferframe\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.count)\r\n\r\n")
    b.writeBytes(jpeg)
    b.writeString("\r\n")
    return b
}
