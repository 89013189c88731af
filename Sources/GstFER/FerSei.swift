import CGStreamer
import EmotionSEI
import FaceAnalysis
import FERNet
import Foundation
import MQTTPublish

/// What a user can set on ferseiinsert (`probabilities`) and ferseiextract (`message-mode`,
/// `results`, `publish`).
struct SeiSettings: Sendable {
    var probabilities = true
    var messageMode = MessageMode.everyFrame
    var results: String? = nil
    var publish: String? = nil
}

enum SeiProperty: UInt32, CaseIterable {
    case probabilities = 1, messageMode, results, publish, stats

    var name: String {
        switch self {
        case .probabilities: return "probabilities"
        case .messageMode: return "message-mode"
        case .results: return "results"
        case .publish: return "publish"
        case .stats: return "stats"
        }
    }

    /// The properties of ferseiinsert (true) or ferseiextract (false).
    static func all(insert: Bool) -> [SeiProperty] { insert ? [.probabilities] : [.messageMode, .results, .publish, .stats] }

    static func install(_ klass: UnsafeMutablePointer<GObjectClass>, insert: Bool) {
        let d = SeiSettings(), flags = gstfer_param_flags()
        for p in all(insert: insert) {
            let spec: UnsafeMutablePointer<GParamSpec>?
            switch p {
            case .probabilities:
                spec = g_param_spec_boolean(p.name, p.name, "Carry each face's seven probabilities, not only its emotion and confidence "
                                            + "(about 60 more bytes per face)", d.probabilities ? 1 : 0, flags)
            case .messageMode:
                spec = g_param_spec_enum(p.name, p.name, "When to post the `ferfilter` element message with the faces read from "
                                         + "the stream (shaped as ferfilter's own)", gstfer_message_mode_get_type(), d.messageMode.rawValue, flags)
            case .results:
                spec = g_param_spec_string(p.name, p.name, "Write the faces read from the stream as JSON Lines, one object per frame and a "
                                           + "summary at the end, as ferfilter's results property (\"-\": standard output); read when the element starts",
                                           nil, gstfer_param_flags_at_start())
            case .publish:
                spec = g_param_spec_string(p.name, p.name, "Publish the faces read from the stream to an MQTT broker, as ferfilter's publish "
                                           + "property: mqtt://[user[:password]@]host[:port]/prefix (mqtts://...?ca=FILE for TLS); frames, "
                                           + "changes, summary and status topics; read when the element starts", nil, gstfer_param_flags_at_start())
            case .stats:
                spec = g_param_spec_boxed(p.name, p.name, "Read-only: a 'ferseiextract-stats' structure: frames (that carried faces in SEI); with publish: published, "
                                          + "publish-dropped, publish-queued, publish-connected, publish-connections (as ferfilter's stats)",
                                          gst_structure_get_type(), gstfer_param_flags_read_only())
            }
            g_object_class_install_property(klass, p.rawValue, spec)
        }
    }
}

/// ferseiinsert and ferseiextract. ferfilter's faces live in region-of-interest metas, which an
/// encoder keeps on its output but which end at the encoder's output: a file, an RTP or RTSP
/// stream or an MPEG-TS carries only the bitstream. ferseiinsert, after the encoder, writes each
/// access unit's faces into it as a SEI user-data-unregistered message (`EmotionPayload`: JSON
/// after GstFER's UUID; decoders skip it); ferseiextract, on the receiving side, reads them back
/// into the same ROI metas and the same `ferfilter` bus message, without analysing anything.
final class FerSei: ElementImpl {
    let element: UnsafeMutablePointer<GstFerSei>
    let inserts: Bool
    /// The properties, shared with the application thread.
    private let settings = Locked(SeiSettings())

    // Streaming-thread state (set_caps and transform_ip are serialised by GstBaseTransform).
    private var codec = VideoCodec.h264
    private var framing = NALFraming.byteStream
    /// The stream's frame rate from the caps (0/1 when they give none): a time code needs it.
    private var fps = (n: gint(0), d: gint(1))
    private var lastSignature: String?
    private var warned = false
    private var feed: ResultsFeed?
    /// The faces as published (`publish`).
    private var published: ResultsFeed?
    /// What `stats` reads from the application thread.
    private let counters = Locked((frames: 0, publisher: MQTTPublisher?.none))
    /// Logged once: frames that came without ferfilter's faces.
    private var unannotated = false
    /// Label names by label_id for the results summary: FER2013's, as the stream names them.
    private var labels = fer2013Labels

    init(element: UnsafeMutablePointer<GstFerSei>, inserts: Bool) {
        self.element = element
        self.inserts = inserts
    }

    func setProperty(_ id: guint, _ v: UnsafePointer<GValue>) -> Bool {
        guard let p = SeiProperty(rawValue: id), SeiProperty.all(insert: inserts).contains(p) else { return false }
        settings.withLock { settings in
            switch p {
            case .probabilities: settings.probabilities = g_value_get_boolean(v) != 0
            case .messageMode: settings.messageMode = MessageMode(rawValue: g_value_get_enum(v)) ?? .everyFrame
            case .results: settings.results = g_value_get_string(v).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            case .publish: settings.publish = g_value_get_string(v).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            case .stats: break
            }
        }
        return true
    }

    func getProperty(_ id: guint, _ v: UnsafeMutablePointer<GValue>) -> Bool {
        guard let p = SeiProperty(rawValue: id), SeiProperty.all(insert: inserts).contains(p) else { return false }
        let s = settings.withLock { $0 }
        switch p {
        case .probabilities: g_value_set_boolean(v, s.probabilities ? 1 : 0)
        case .messageMode: g_value_set_enum(v, s.messageMode.rawValue)
        case .results: g_value_set_string(v, s.results)
        case .publish: g_value_set_string(v, s.publish)
        case .stats:
            let st = gst_structure_new_empty("ferseiextract-stats")!
            let (frames, publisher) = counters.withLock { ($0.frames, $0.publisher) }
            gstfer_structure_set_uint64(st, "frames", guint64(frames))
            if let c = publisher?.currentCounts { Publishing.set(c, on: st) }
            g_value_take_boxed(v, st)
        }
        return true
    }

    /// Opens the results file (ferseiextract), failing the state change with an error naming it.
    func start() -> Bool {
        let (path, url) = settings.withLock { ($0.results, $0.publish) }
        lastSignature = nil; warned = false; unannotated = false; labels = fer2013Labels
        feed = nil; published = nil
        counters.withLock { $0 = (0, nil) }
        guard !inserts else { return true }
        if let path {
            do { feed = try ResultsFeed(path: path) } catch {
                gstfersei_element_error(element, "ferseiextract cannot write the results file \(path): \(error.localizedDescription)",
                                        "property results=\(path)")
                return false
            }
        }
        if let url {
            let element = self.element
            let publisher = Publishing.start(url, element: "ferseiextract") { report in
                switch report {
                case .error(let text, let debug): gstfersei_element_error(element, text, debug)
                case .warning(let text, let debug): gstfersei_element_warning(element, text, debug)
                case .info(let text): if gstfersei_log_enabled(GST_LEVEL_INFO) != 0 { gstfersei_log(element, GST_LEVEL_INFO, text) }
                }
            }
            guard let publisher else { feed = nil; return false }
            published = ResultsFeed(publisher: publisher)
            counters.withLock { $0.publisher = publisher }
        }
        return true
    }

    func stop() -> Bool {
        feed?.finish(labels: labels); feed = nil
        published?.finish(labels: labels)
        published?.publisher?.close(timeout: Publishing.closeTimeout)
        published = nil
        return true
    }

    /// At the end of the stream the results file gets its summary.
    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>) {
        if event.pointee.type == GST_EVENT_EOS { feed?.finish(labels: labels); published?.finish(labels: labels) }
    }

    /// Logs `message` (built only when the debug level lets it through).
    private func log(_ level: GstDebugLevel, _ message: @autoclosure () -> String) {
        if gstfersei_log_enabled(level) != 0 { gstfersei_log(element, level, message()) }
    }

    /// A problem with the stream, reported once as an element warning (the stream flows on).
    private func warnOnce(_ text: String, _ debug: String) {
        log(GST_LEVEL_WARNING, "\(text): \(debug)")
        if warned { return }
        warned = true
        gstfersei_element_warning(element, text, debug)
    }

    func setCaps(_ caps: UnsafeMutablePointer<GstCaps>) -> Bool {
        guard let st = gst_caps_get_structure(caps, 0), let c = VideoCodec(capsName: String(cString: gst_structure_get_name(st))) else {
            return false
        }
        codec = c
        var n: gint = 0, d: gint = 1
        fps = gst_structure_get_fraction(st, "framerate", &n, &d) != 0 && n > 0 && d > 0 ? (n, d) : (0, 1)
        let format = gst_structure_get_string(st, "stream-format").map { String(cString: $0) } ?? "byte-stream"
        if format == "byte-stream" {
            framing = .byteStream
        } else if let buf = gstfer_structure_get_buffer(st, "codec_data") {
            var data = [UInt8](repeating: 0, count: Int(gst_buffer_get_size(buf)))
            _ = data.withUnsafeMutableBytes { gst_buffer_extract(buf, 0, $0.baseAddress, gsize($0.count)) }
            guard let n = NALFraming.lengthSize(codecData: data, codec: c) else {
                warnOnce("ferseiinsert/ferseiextract: unreadable codec_data in the caps", "stream-format \(format), \(data.count) bytes")
                return false
            }
            framing = .lengthPrefixed(n)
        } else {
            framing = .lengthPrefixed(4)
            log(GST_LEVEL_INFO, "stream-format \(format) without codec_data: NAL sizes taken as 4 bytes")
        }
        log(GST_LEVEL_INFO, "\(codec), \(framing)")
        lastSignature = nil
        return true
    }

    func transform(buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn {
        let s = settings.withLock { $0 }
        var map = GstMapInfo()
        guard gst_buffer_map(buffer, &map, GST_MAP_READ) != 0 else {
            warnOnce("cannot read a buffer", "gst_buffer_map failed")
            return GST_FLOW_OK
        }
        let au = UnsafeRawBufferPointer(start: map.data, count: Int(map.size))
        let found: [[UInt8]]
        var rewritten: [UInt8]? = nil
        do {
            // split once: the check for an emotion SEI already there and the insertion share it
            let nals = try AccessUnit.nalUnits(au, codec: codec, framing: framing)
            found = AccessUnit.userData(uuid: EmotionPayload.uuid, in: au, codec: codec, nals: nals)
            if inserts && found.isEmpty {
                // no faces known (no ferfilter upstream, or its metas dropped on the way): nothing is
                // written, rather than "no faces"; ferfilter's frames always carry GstFerFacesMeta
                if let faces = FaceMeta.read(from: buffer) {
                    // the time code the faces were seen at (kept with them through the encoder), else the buffer's own
                    let timecode = FaceMeta.timecode(from: buffer) ?? FrameTimes.timecode(of: buffer)
                    let payload = EmotionPayload.encode(faces, probabilities: s.probabilities, timecode: timecode)
                    rewritten = AccessUnit.inserting(uuid: EmotionPayload.uuid, data: payload, into: au, codec: codec, framing: framing,
                                                     nals: nals)
                    if rewritten == nil { log(GST_LEVEL_DEBUG, "buffer of \(au.count) bytes: no slice (or no room in the NAL size field), left as it is") }
                } else if !unannotated {
                    unannotated = true
                    log(GST_LEVEL_WARNING, "a frame carries no faces from ferfilter (none upstream, or its metas dropped): no SEI written for it")
                }
            }
        } catch {
            gst_buffer_unmap(buffer, &map)
            warnOnce("a buffer is not a \(codec == .h264 ? "H.264" : "H.265") access unit as the caps say", "\(error)")
            return GST_FLOW_OK
        }
        gst_buffer_unmap(buffer, &map)

        if inserts {
            if let out = rewritten { replaceContents(of: buffer, with: out) }
            return GST_FLOW_OK
        }
        guard let data = found.last else { return GST_FLOW_OK }
        let payload: EmotionFrame
        do { payload = try EmotionPayload.decodeFrame(data) } catch {
            warnOnce("emotion metadata in the stream cannot be read", "\(error)")
            return GST_FLOW_OK
        }
        let faces = payload.faces
        var times = FrameTimes(buffer, gstfersei_segment(element))
        // the sender's time code (that of the frame it analysed) before any the receiver's buffer has
        times.timecode = payload.timecode ?? times.timecode
        FaceMeta.remove(from: buffer)
        FaceMeta.attach(faces, timecode: times.timecode, to: buffer)
        if let tc = payload.timecode, gstfer_buffer_time_code(buffer) == nil { restoreTimecode(tc, on: buffer) }
        if s.messageMode == .everyFrame || (s.messageMode == .onChange && FaceMeta.signature(faces) != lastSignature) {
            lastSignature = FaceMeta.signature(faces)
            _ = gstfersei_post_element_message(element, FaceMeta.message(faces, times: times))
        }
        counters.withLock { $0.frames += 1 }
        if feed != nil || published != nil {
            for f in faces where f.labelID < EmotionPayload.maxLabels {
                while labels.count <= f.labelID { labels.append("label \(labels.count)") }
                labels[f.labelID] = f.emotion
            }
            let t = times.running != clockTimeNone ? Double(times.running) / 1e9 : Double(times.pts == clockTimeNone ? 0 : times.pts) / 1e9
            feed?.frame(faces, times: times, time: t)
            published?.frame(faces, times: times, time: t)
        }
        return GST_FLOW_OK
    }

    /// Puts the sender's time code back on the frame as a GstVideoTimeCodeMeta (which the decoder
    /// copies to the picture), for `timeoverlay time-mode=time-code`, a muxer or a ferfilter
    /// downstream; only "hh:mm:ss:ff" and drop-frame "hh:mm:ss;ff" at a frame rate the caps give.
    private func restoreTimecode(_ text: String, on buffer: UnsafeMutablePointer<GstBuffer>) {
        let bytes = Array(text.utf8)
        guard fps.n > 0, bytes.count == 11, [2, 5].allSatisfy({ bytes[$0] == UInt8(ascii: ":") }),
              bytes[8] == UInt8(ascii: ":") || bytes[8] == UInt8(ascii: ";") else { return }
        let parts = [0, 3, 6, 9].compactMap { UInt32(String(decoding: bytes[$0..<$0 + 2], as: UTF8.self)) }
        let dropFrame = bytes[8] == UInt8(ascii: ";")
        let framesPerSecond = (Int(fps.n) + Int(fps.d) - 1) / Int(fps.d)
        guard parts.count == 4, parts[0] < 24, parts[1] < 60, parts[2] < 60, Int(parts[3]) < framesPerSecond, !dropFrame || fps.d == 1001 else { return }
        let flags = dropFrame ? GST_VIDEO_TIME_CODE_FLAGS_DROP_FRAME : GST_VIDEO_TIME_CODE_FLAGS_NONE
        // GStreamer refuses (NULL) a time code that is not valid at this frame rate
        _ = gst_buffer_add_video_time_code_meta_full(buffer, guint(fps.n), guint(fps.d), nil, flags, parts[0], parts[1], parts[2], parts[3], 0)
    }

    private func replaceContents(of buffer: UnsafeMutablePointer<GstBuffer>, with bytes: [UInt8]) {
        guard let mem = gst_allocator_alloc(nil, gsize(bytes.count), nil) else { return }
        var map = GstMapInfo()
        guard gst_memory_map(mem, &map, GST_MAP_WRITE) != 0 else { gst_memory_unref(mem); return }
        bytes.withUnsafeBytes { map.data.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count) }
        gst_memory_unmap(mem, &map)
        gst_buffer_replace_memory_range(buffer, 0, -1, mem)   // takes `mem`
    }
}

extension FaceMeta {
    /// Removes what `attach` put on a buffer: "face" ROI metas and `GstFerFacesMeta` (before the
    /// faces read from the stream replace those that came with the buffer).
    static func remove(from buffer: UnsafeMutablePointer<GstBuffer>) {
        var doomed: [UnsafeMutableRawPointer] = []
        var state: gpointer? = nil
        while let m = gstfer_buffer_iterate_roi(buffer, &state) {
            if let t = g_quark_to_string(m.pointee.roi_type), String(cString: t) == "face" { doomed.append(UnsafeMutableRawPointer(m)) }
        }
        if let custom = gst_buffer_get_custom_meta(buffer, GSTFER_FACES_META) { doomed.append(UnsafeMutableRawPointer(custom)) }
        for m in doomed { _ = gst_buffer_remove_meta(buffer, m.assumingMemoryBound(to: GstMeta.self)) }
    }
}
