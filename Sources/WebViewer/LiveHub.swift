import CTurboJPEG
import Foundation

/// Fans values out to any number of subscribers. Each subscriber keeps only its newest `buffer`
/// values, so a slow client skips frames instead of growing memory or holding up the others.
public final class Broadcast<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<Element>.Continuation] = [:]
    private var nextID: UInt64 = 0
    private var finished = false
    private let buffer: Int

    public init(buffer: Int) { self.buffer = buffer }

    /// A new subscription; call `unsubscribe(id)` when done (the stream also ends at `finish()`).
    public func subscribe() -> (id: UInt64, stream: AsyncStream<Element>) {
        let (stream, continuation) = AsyncStream<Element>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        lock.lock(); defer { lock.unlock() }
        nextID += 1
        if finished { continuation.finish() } else { subscribers[nextID] = continuation }
        return (nextID, stream)
    }

    public func unsubscribe(_ id: UInt64) {
        lock.lock(); let c = subscribers.removeValue(forKey: id); lock.unlock()
        c?.finish()
    }

    public func publish(_ value: Element) {
        lock.lock(); let cs = Array(subscribers.values); lock.unlock()
        for c in cs { c.yield(value) }
    }

    public var count: Int { lock.lock(); defer { lock.unlock() }; return subscribers.count }

    /// Ends every subscription, now and later (server shutdown).
    public func finish() {
        lock.lock(); finished = true; let cs = Array(subscribers.values); subscribers.removeAll(); lock.unlock()
        for c in cs { c.finish() }
    }
}

/// An I420 frame as the pipeline's appsink delivers it (GStreamer's default layout: rows padded
/// to 4 bytes in each plane).
public struct I420Frame: Sendable {
    public var width: Int, height: Int
    public var bytes: [UInt8]

    public init(width: Int, height: Int, bytes: [UInt8]) { self.width = width; self.height = height; self.bytes = bytes }

    /// GStreamer's I420 layout without a video meta: luma and chroma row strides (padded to 4
    /// bytes) and chroma rows.
    static func layout(width: Int, height: Int) -> (lumaStride: Int, chromaStride: Int, chromaRows: Int) {
        ((width + 3) & ~3, ((width + 1) / 2 + 3) & ~3, (height + 1) / 2)
    }

    /// Bytes GStreamer uses for an I420 frame of this size without a video meta.
    public static func size(width: Int, height: Int) -> Int {
        let (ys, cs, ch) = layout(width: width, height: height)
        return ys * height + 2 * cs * ch
    }

    /// The frame as a baseline JPEG (TurboJPEG, 4:2:0, GStreamer's plane layout and strides).
    ///
    /// TurboJPEG reads whole 2x2 chroma blocks: for an odd height it reads one luma row past the
    /// image (PAD(height, 2) rows) and for an odd width one byte past each luma row. The row
    /// padding to 4 bytes covers the width; for an odd height the luma plane is copied with its
    /// last row repeated, so nothing outside the frame's own pixels is ever read.
    public func jpeg(quality: Int) -> [UInt8]? {
        guard width > 0, height > 0, bytes.count >= I420Frame.size(width: width, height: height), let h = tjInitCompress() else { return nil }
        defer { tjDestroy(h) }
        let (ys, cs, ch) = I420Frame.layout(width: width, height: height)
        let uOffset = ys * height, vOffset = uOffset + cs * ch
        // odd height: the luma plane with its last row repeated (empty otherwise)
        let paddedLuma = height % 2 == 1 ? Array(bytes[0..<uOffset] + bytes[(uOffset - ys)..<uOffset]) : []
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        var strides: [Int32] = [Int32(ys), Int32(cs), Int32(cs)]
        let rc = bytes.withUnsafeBufferPointer { all in
            paddedLuma.withUnsafeBufferPointer { padded in
                var planes: [UnsafePointer<UInt8>?] = [paddedLuma.isEmpty ? all.baseAddress : padded.baseAddress,
                                                       all.baseAddress! + uOffset, all.baseAddress! + vOffset]
                return tjCompressFromYUVPlanes(h, &planes, Int32(width), &strides, Int32(height), Int32(TJSAMP_420.rawValue),
                                               &out, &size, Int32(quality), 0)
            }
        }
        defer { if let out { tjFree(out) } }
        guard rc == 0, let out else { return nil }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }
}

/// What the viewer's pipeline is doing, for the page and `/api/v1/health`.
public struct PipelineStatus: Codable, Sendable, Equatable {
    /// "none" (no source), "starting", "playing", "reconnecting", "ended" or "error".
    public var state: String
    /// The source as the user gave it, and the GStreamer launch line built from it.
    public var source: String?
    public var pipeline: String?
    public var error: String?
    public var width: Int?
    public var height: Int?

    public init(state: String, source: String? = nil, pipeline: String? = nil, error: String? = nil) {
        self.state = state; self.source = source; self.pipeline = pipeline; self.error = error
    }
}

/// Everything the pipeline produces and the web server reads: the newest annotated frame (JPEG on
/// demand, MJPEG to subscribers), the per-frame readings (to Server-Sent Events subscribers and
/// the ledger), and the pipeline's status.
public final class LiveHub: @unchecked Sendable {
    public let ledger: EmotionLedger
    public let jpegQuality: Int
    /// Annotated frames as JPEG, to the MJPEG clients.
    public let frames = Broadcast<[UInt8]>(buffer: 1)
    /// Server-Sent Events, ready to write (`event: ...\ndata: ...\n\n`), to the live panels.
    public let events = Broadcast<String>(buffer: 64)
    /// The analysing element's `stats`, for the health answer (set once, before serving).
    public var elementStats: (() -> [String: StatValue]?)?
    private let lock = NSLock()
    private var latest: I420Frame?
    private var latestJPEG: (seq: Int, jpeg: [UInt8])?
    private var frameSeq = 0
    private var readingSeq = 0
    private var status: PipelineStatus
    private var frameTimes: [Double] = []
    private let encoder = JSONEncoder()

    public init(labels: [String], status: PipelineStatus = .init(state: "none"), jpegQuality: Int = 80) {
        ledger = EmotionLedger(labels: labels)
        self.status = status
        self.jpegQuality = jpegQuality
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    // MARK: from the pipeline

    /// A new annotated frame. It is encoded only when someone watches the MJPEG stream.
    public func publish(frame: I420Frame) {
        let now = Date().timeIntervalSince1970
        lock.lock()
        latest = frame; frameSeq += 1
        let seq = frameSeq
        frameTimes.append(now)
        if frameTimes.count > 120 { frameTimes.removeFirst(frameTimes.count - 120) }
        if status.width != frame.width || status.height != frame.height { status.width = frame.width; status.height = frame.height }
        lock.unlock()
        guard frames.count > 0, let jpeg = frame.jpeg(quality: jpegQuality) else { return }
        lock.lock(); if (latestJPEG?.seq ?? -1) < seq { latestJPEG = (seq, jpeg) }; lock.unlock()
        frames.publish(jpeg)
    }

    /// ferfilter's reading of a frame (the frame number is assigned here).
    public func publish(faces: [FaceReading], streamTime: Double?, timecode: String? = nil, wallTime: Double = Date().timeIntervalSince1970) {
        lock.lock(); let n = readingSeq; readingSeq += 1; lock.unlock()
        let r = FrameReading(frame: n, streamTime: streamTime, wallTime: wallTime, timecode: timecode, faces: faces)
        let ticks = ledger.record(r)
        send("frame", r)
        for t in ticks { send("tick", t) }
    }

    public func setStatus(_ s: PipelineStatus) {
        lock.lock()
        var s = s
        if s.width == nil { s.width = status.width; s.height = status.height }
        let changed = s != status
        status = s
        lock.unlock()
        if changed { send("status", s) }
    }

    /// Sends an SSE comment so idle connections stay open through proxies.
    public func heartbeat() { events.publish(": keep-alive\n\n") }

    private func send<T: Encodable>(_ event: String, _ value: T) {
        guard let data = try? encoder.encode(value) else { return }
        events.publish("event: \(event)\ndata: \(String(decoding: data, as: UTF8.self))\n\n")
    }

    // MARK: for the server

    public var currentStatus: PipelineStatus { lock.lock(); defer { lock.unlock() }; return status }

    /// Frames received, and the rate over the last few seconds.
    public var frameStats: (frames: Int, fps: Double) {
        lock.lock(); defer { lock.unlock() }
        let now = Date().timeIntervalSince1970
        let recent = frameTimes.filter { $0 > now - 3 }
        let fps = recent.count >= 2 ? Double(recent.count - 1) / max(recent.last! - recent.first!, 1e-3) : 0
        return (frameSeq, fps)
    }

    /// The newest frame as JPEG (encoded now if no MJPEG client has encoded it).
    public func snapshot() -> [UInt8]? {
        lock.lock()
        let seq = frameSeq, cached = latestJPEG, frame = latest
        lock.unlock()
        if let cached, cached.seq == seq { return cached.jpeg }
        guard let frame, let jpeg = frame.jpeg(quality: jpegQuality) else { return nil }
        lock.lock(); if (latestJPEG?.seq ?? -1) < seq { latestJPEG = (seq, jpeg) }; lock.unlock()
        return jpeg
    }

    /// Ends all streams (shutdown).
    public func finish() { frames.finish(); events.finish() }
}
