import CGstAppLibs
import FERNet
import Foundation

/// What `POST /api/v1/camera` answers for one frame of a browser's camera.
public struct CameraFrameResult: Codable, Sendable {
    public var session: String
    /// Frames this session has analysed, this one included.
    public var frame: Int
    public var width: Int
    public var height: Int
    /// The faces ferfilter tracks in the frame: track ids that last while a face stays in view,
    /// smoothed probabilities and steady labels, as in the element's own messages.
    public var faces: [FaceReading]
    public var elapsedMs: Double

    enum CodingKeys: String, CodingKey { case session, frame, width, height, faces, elapsedMs = "elapsed_ms" }
}

/// Why a camera frame was not analysed, with the HTTP status it deserves.
public enum CameraError: Error, CustomStringConvertible {
    case badRequest(String), picture(AnalysisError), busy(String), full(Int), failed(String)

    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .picture(let e): return e.status
        case .busy: return 429
        case .full: return 503
        case .failed: return 500
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let s), .busy(let s), .failed(let s): return s
        case .picture(let e): return e.description
        case .full(0): return "this server takes no camera sessions (fer serve --camera-sessions 0)"
        case .full(let n): return "all \(n) camera sessions are in use; try again when one ends (idle sessions end on their own)"
        }
    }
}

/// The browser-camera side of the viewer: each page that sends its own camera's frames
/// (`POST /api/v1/camera?session=ID`, one JPEG, PNG or PGM picture per request) gets a ferfilter of
/// its own, `appsrc ! ferfilter ! fakesink`, so its faces are tracked, smoothed and labelled over
/// the frames exactly as in a GStreamer pipeline. A session starts with its first frame and ends
/// when its page says so (`DELETE`) or after `idleTimeout` seconds without a frame.
///
/// Frames are analysed in the order they arrive, one at a time per session; a page sends the next
/// frame when the previous answer is in, so a slow server lowers the frame rate, not the freshness.
public final class CameraSessions: @unchecked Sendable {
    public let maxSessions: Int
    public let idleTimeout: Double
    /// Largest picture accepted, in pixels.
    public let maxPixels: Int
    let labels: [String]
    let ferfilterProperties: String
    private let lock = NSLock()
    private var sessions: [String: CameraSession] = [:]
    private var closed = false

    /// `ferfilterProperties` are appended to each session's element (the model, the cascade and
    /// the user's own `--ferfilter` properties).
    public init(labels: [String], ferfilterProperties: String, maxSessions: Int = 4, idleTimeout: Double = 10,
                maxPixels: Int = 8_000_000) {
        self.labels = labels; self.ferfilterProperties = ferfilterProperties
        self.maxSessions = maxSessions; self.idleTimeout = idleTimeout; self.maxPixels = maxPixels
    }

    /// Sessions now open.
    public var count: Int { lock.lock(); defer { lock.unlock() }; return sessions.count }

    /// A session id as pages make them: 1-64 letters, digits, '-' or '_'.
    static func validID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95
        }
    }

    /// Decodes `bytes` and runs it through the session's ferfilter (starting the session if it is
    /// new). A picture that cannot be decoded is refused before it reaches the session, which
    /// carries on with the next frame as if it had not been sent.
    public func analyze(session id: String, image bytes: [UInt8]) async throws -> CameraFrameResult {
        let t0 = DispatchTime.now()
        guard CameraSessions.validID(id) else {
            throw CameraError.badRequest("session must be 1-64 letters, digits, '-' or '_' (e.g. a random UUID the page makes)")
        }
        guard !bytes.isEmpty else { throw CameraError.badRequest("empty body: POST one camera frame as a JPEG, PNG or PGM picture") }
        let img: Image
        do { img = try ImageAnalyzer.decode(bytes, name: "the frame", maxPixels: maxPixels) } catch let e as AnalysisError { throw CameraError.picture(e) }
        let session = try claim(id)
        defer { release(session) }
        let answer: (faces: [FaceReading], frame: Int)
        do {
            answer = try await withCheckedThrowingContinuation { c in
                session.queue.async {
                    do { c.resume(returning: try session.analyze(grey: img.grey, width: img.width, height: img.height)) } catch { c.resume(throwing: error) }
                }
            }
        } catch {
            // the pipeline failed and is gone: the session's next frame starts a new one
            forget(id, session)
            throw error
        }
        return CameraFrameResult(session: id, frame: answer.frame, width: img.width, height: img.height, faces: answer.faces,
                                 elapsedMs: Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6)
    }

    /// The session `id`, made if new, marked busy; throws when it is busy or all are in use.
    private func claim(_ id: String) throws -> CameraSession {
        lock.lock(); defer { lock.unlock() }
        guard !closed else { throw CameraError.failed("the server is shutting down") }
        let session: CameraSession
        if let s = sessions[id] {
            session = s
        } else {
            guard sessions.count < maxSessions else { throw CameraError.full(maxSessions) }
            session = CameraSession(id: id, labels: labels, ferfilterProperties: ferfilterProperties)
            sessions[id] = session
        }
        guard !session.busy else { throw CameraError.busy("session \(id) is still analysing its previous frame: send the next frame when its answer is in") }
        session.busy = true
        session.lastUsed = DispatchTime.now()
        return session
    }

    private func forget(_ id: String, _ session: CameraSession) {
        lock.lock(); if sessions[id] === session { sessions.removeValue(forKey: id) }; lock.unlock()
    }

    private func release(_ session: CameraSession) {
        lock.lock(); session.busy = false; session.lastUsed = DispatchTime.now(); lock.unlock()
    }

    /// Ends session `id`; false when there is no such session.
    @discardableResult
    public func end(_ id: String) -> Bool {
        lock.lock(); let s = sessions.removeValue(forKey: id); lock.unlock()
        s?.close()
        return s != nil
    }

    /// Ends the sessions that have had no frame for `idleTimeout` seconds.
    public func reap() {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        let idle = sessions.filter { !$0.value.busy && now - $0.value.lastUsed.uptimeNanoseconds > UInt64(idleTimeout * 1e9) }
        for id in idle.keys { sessions.removeValue(forKey: id) }
        lock.unlock()
        for s in idle.values { s.close() }
    }

    /// Ends every session and refuses new ones (server shutdown).
    public func finish() {
        lock.lock(); closed = true; let all = Array(sessions.values); sessions.removeAll(); lock.unlock()
        for s in all { s.close() }
    }
}

/// One browser camera's pipeline: `appsrc ! ferfilter ! fakesink`, fed GRAY8 frames stamped with
/// the time they arrived, read back from ferfilter's per-frame bus message. `busy` and `lastUsed`
/// belong to `CameraSessions` (under its lock); everything else runs on `queue`.
final class CameraSession: @unchecked Sendable {
    let id: String
    let labels: [String]
    let launchLine: String
    let queue: DispatchQueue
    var busy = false
    var lastUsed = DispatchTime.now()
    private var frames = 0
    private var pipeline: UnsafeMutablePointer<GstElement>?
    private var source: UnsafeMutablePointer<GstAppSrc>?
    private var bus: UnsafeMutablePointer<GstBus>?
    private var size = (width: 0, height: 0)
    private var started = DispatchTime.now()
    private var lastPTS: GstClockTime = 0
    /// Longest wait for ferfilter's answer to a frame.
    static let answerTimeout: GstClockTime = 20_000_000_000

    init(id: String, labels: [String], ferfilterProperties: String) {
        self.id = id; self.labels = labels
        queue = DispatchQueue(label: "gstfer.camera.\(id)")
        // Every frame is analysed in full (the frames come at the pace the server answers, so
        // there is no frame rate to spread the work over), unless the user's properties say
        // otherwise; what the session needs to answer each frame comes last, so that nothing in
        // them (message-mode=on-change, say) can leave a frame without its message.
        launchLine = "appsrc name=camerasrc format=time is-live=false ! ferfilter name=fer scan-spread=1 classify-interval=1 "
            + "\(ferfilterProperties) draw=false message-mode=every-frame skip-late=false ! fakesink sync=false async=false"
    }

    /// Builds and starts the pipeline (first frame).
    private func start() throws {
        let (built, err) = LivePipeline.build(launchLine)
        guard let p = built else { throw CameraError.failed("cannot build the camera pipeline: \(err ?? "unknown error")") }
        pipeline = p
        let bin = UnsafeMutableRawPointer(p).assumingMemoryBound(to: GstBin.self)
        guard let src = gst_bin_get_by_name(bin, "camerasrc") else { throw CameraError.failed("the camera pipeline has no appsrc") }
        source = UnsafeMutableRawPointer(src).assumingMemoryBound(to: GstAppSrc.self)
        bus = gst_element_get_bus(p)
        if gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            if let m = gst_bus_timed_pop_filtered(bus, 500_000_000, GST_MESSAGE_ERROR) {
                defer { gst_message_unref(m) }
                throw CameraError.failed(LivePipeline.errorText(m))
            }
            throw CameraError.failed("the camera pipeline does not start")
        }
        started = DispatchTime.now()
    }

    /// Pushes one GRAY8 frame and waits for ferfilter's message about it: the frame's faces and
    /// the session's count of frames. After an error the pipeline is gone.
    func analyze(grey: [UInt8], width: Int, height: Int) throws -> (faces: [FaceReading], frame: Int) {
        do {
            if pipeline == nil { try start() }
            let faces = try push(grey: grey, width: width, height: height)
            return (faces, frames)
        } catch {
            teardown()
            throw error
        }
    }

    private func push(grey: [UInt8], width: Int, height: Int) throws -> [FaceReading] {
        guard let source, let bus else { throw CameraError.failed("the camera pipeline is not running") }
        if size != (width, height) {
            guard let caps = gst_caps_from_string("video/x-raw,format=GRAY8,width=\(width),height=\(height),framerate=0/1") else {
                throw CameraError.failed("no caps for \(width)x\(height)")
            }
            gst_app_src_set_caps(source, caps)
            gst_caps_unref(caps)
            size = (width, height)
        }
        // GStreamer's GRAY8 layout: rows padded to 4 bytes.
        let stride = (width + 3) & ~3
        guard let buffer = gst_buffer_new_allocate(nil, gsize(stride * height), nil) else { throw CameraError.failed("out of memory") }
        var info = GstMapInfo()
        guard gst_buffer_map(buffer, &info, GST_MAP_WRITE) != 0, let data = info.data else {
            gst_buffer_unref(buffer); throw CameraError.failed("cannot map a buffer")
        }
        grey.withUnsafeBufferPointer { src in
            for y in 0..<height { (data + y * stride).update(from: src.baseAddress! + y * width, count: width) }
        }
        gst_buffer_unmap(buffer, &info)
        // Stamped with the time since the session started, so smoothing and track hold act in
        // real seconds; strictly increasing even if two frames arrive within the clock's tick.
        var pts = GstClockTime(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds)
        if frames > 0 && pts <= lastPTS { pts = lastPTS + 1 }
        lastPTS = pts
        buffer.pointee.pts = pts
        buffer.pointee.dts = pts
        guard gst_app_src_push_buffer(source, buffer) == GST_FLOW_OK else { throw CameraError.failed("the camera pipeline refused the frame") }
        frames += 1
        let mask = GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_ELEMENT.rawValue)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(CameraSession.answerTimeout)
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline, let m = gst_bus_timed_pop_filtered(bus, GstClockTime(deadline - now), mask) else {
                throw CameraError.failed("ferfilter gave no answer for the frame within \(CameraSession.answerTimeout / 1_000_000_000) s")
            }
            defer { gst_message_unref(m) }
            if m.pointee.type == GST_MESSAGE_ERROR { throw CameraError.failed(LivePipeline.errorText(m)) }
            guard let st = gst_message_get_structure(m), gst_structure_has_name(st, "ferfilter") != 0 else { continue }
            var t: GstClockTime = 0
            guard gst_structure_get_clock_time(st, "timestamp", &t) != 0, t == pts else { continue }
            return LivePipeline.readings(st, labels: labels).0
        }
    }

    /// Stops and frees the pipeline, after any frame in progress.
    func close() { queue.async { self.teardown() } }

    private func teardown() {
        if let p = pipeline {
            gst_element_set_state(p, GST_STATE_NULL)
            if let source { gst_object_unref(UnsafeMutableRawPointer(source)) }
            if let bus { gst_object_unref(UnsafeMutableRawPointer(bus)) }
            gst_object_unref(UnsafeMutableRawPointer(p))
        }
        pipeline = nil; source = nil; bus = nil
    }
}
