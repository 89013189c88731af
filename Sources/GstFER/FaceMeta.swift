import CGStreamer
import FaceAnalysis

/// Writes a face's fields into a GstStructure (box as guint, ids as gint, probabilities as a
/// GstValueArray of doubles).
struct StructureWriter: FaceFieldWriter {
    let structure: UnsafeMutablePointer<GstStructure>
    func coordinate(_ key: String, _ v: Int) { gstfer_structure_set_uint(structure, key, guint(clamping: v)) }
    func integer(_ key: String, _ v: Int) { gstfer_structure_set_int(structure, key, gint(truncatingIfNeeded: v)) }
    func number(_ key: String, _ v: Double) { gstfer_structure_set_double(structure, key, v) }
    func text(_ key: String, _ v: String) { gstfer_structure_set_string(structure, key, v) }
    func numbers(_ key: String, _ v: [Double]) { gstfer_structure_set_double_array(structure, key, v, guint(v.count)) }
}

/// Reads a face's fields from a GstStructure, whoever wrote it.
struct StructureReader: FaceFieldReader {
    let structure: UnsafePointer<GstStructure>
    func value(_ key: String) -> FaceFieldValue? {
        guard let v = gst_structure_get_value(structure, key) else { return nil }
        switch v.pointee.g_type {
        case gstfer_type_int(): return .integer(Int(g_value_get_int(v)))
        case gstfer_type_uint(): return .integer(Int(g_value_get_uint(v)))
        case gstfer_type_double(): return .number(g_value_get_double(v))
        case gstfer_type_string(): return g_value_get_string(v).map { .text(String(cString: $0)) } ?? .other
        default:
            guard v.pointee.g_type == gst_value_array_get_type() else { return .other }
            var out: [Double] = []
            for i in 0..<min(gst_value_array_get_size(v), guint(EmotionFace.maxLabels + 1)) {
                guard let e = gst_value_array_get_value(v, i), e.pointee.g_type == gstfer_type_double() else { return .other }
                out.append(g_value_get_double(e))
            }
            return .numbers(out)
        }
    }
}

/// The faces of a frame on a buffer and on the bus, the same from ferfilter and ferseiextract:
/// a GstVideoRegionOfInterestMeta per face, the `GstFerFacesMeta` custom meta, and the
/// `ferfilter` element message.
enum FaceMeta {
    /// A GstVideoRegionOfInterestMeta per face: roi_type "face", `id` the track id, and an
    /// "emotion" param with label, label_id, confidence and (when known) probabilities and
    /// landmarks (x, y pairs: right eye, left eye, nose tip, right and left mouth corners); and one
    /// `GstFerFacesMeta` holding every face (see CGStreamer.h: GStreamer 1.22 drops ROI params
    /// when a converter or an encoder copies the meta, this one it copies whole). `GstFerFacesMeta`
    /// also holds the frame's `timecode`, when it has one, so that the time code the faces were
    /// seen at travels with them through encoders (to ferseiinsert).
    static func attach(_ faces: [EmotionFace], timecode: String? = nil, to buffer: UnsafeMutablePointer<GstBuffer>) {
        for f in faces {
            guard let meta = gst_buffer_add_video_region_of_interest_meta(buffer, "face", guint(f.x), guint(f.y),
                                                                           guint(f.width), guint(f.height)) else { continue }
            meta.pointee.id = gint(truncatingIfNeeded: f.id)
            meta.pointee.parent_id = -1
            let st = gst_structure_new_empty("emotion")!
            gstfer_structure_set_string(st, "label", f.emotion)
            gstfer_structure_set_int(st, "label_id", gint(truncatingIfNeeded: f.labelID))
            gstfer_structure_set_double(st, "confidence", f.confidence)
            if !f.probabilities.isEmpty {
                gstfer_structure_set_double_array(st, "probabilities", f.probabilities, guint(f.probabilities.count))
            }
            if !f.landmarks.isEmpty {
                gstfer_structure_set_double_array(st, EmotionFace.Key.landmarks, f.landmarks, guint(f.landmarks.count))
            }
            gst_video_region_of_interest_meta_add_param(meta, st)
        }
        guard let custom = gst_buffer_add_custom_meta(buffer, GSTFER_FACES_META), let st = gst_custom_meta_get_structure(custom) else { return }
        gstfer_structure_set_uint(st, "count", guint(faces.count))
        if let timecode { gstfer_structure_set_string(st, "timecode", timecode) }
        for f in faces { gstfer_structure_append_structure(st, "faces", structure(f)) }
    }

    /// The time code `attach` stored with the faces in `GstFerFacesMeta`, if any.
    static func timecode(from buffer: UnsafeMutablePointer<GstBuffer>) -> String? {
        guard let custom = gst_buffer_get_custom_meta(buffer, GSTFER_FACES_META), let st = gst_custom_meta_get_structure(custom),
              let tc = gst_structure_get_string(st, "timecode") else { return nil }
        return String(cString: tc)
    }

    /// A `face` structure: id, x, y, width, height, emotion, label_id, confidence, probabilities.
    static func structure(_ f: EmotionFace) -> UnsafeMutablePointer<GstStructure> {
        let fs = gst_structure_new_empty("face")!
        var w = StructureWriter(structure: fs)
        f.write(to: &w)
        return fs
    }

    /// The faces ferfilter attached to a buffer, wherever it has travelled since: the boxes of its
    /// "face" ROI metas (which a scaler moves with the picture), each with its own "emotion" param
    /// or else the emotion `GstFerFacesMeta` holds for its id; `GstFerFacesMeta` alone where the ROI
    /// metas were dropped. Nil when the buffer carries neither.
    static func read(from buffer: UnsafeMutablePointer<GstBuffer>) -> [EmotionFace]? {
        var known: [Int: EmotionFace]? = nil
        var listed: [EmotionFace] = []
        if let custom = gst_buffer_get_custom_meta(buffer, GSTFER_FACES_META), let st = gst_custom_meta_get_structure(custom) {
            for i in 0..<gstfer_structure_list_size(st, "faces") {
                if let fs = gstfer_structure_list_get(st, "faces", i), let f = face(fs) { listed.append(f) }
            }
            known = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
        var out: [EmotionFace] = []
        var sawROI = false
        var state: gpointer? = nil
        while let m = gstfer_buffer_iterate_roi(buffer, &state) {
            guard let type = g_quark_to_string(m.pointee.roi_type), String(cString: type) == "face" else { continue }
            sawROI = true
            var f: EmotionFace
            if let s = gst_video_region_of_interest_meta_get_param(m, "emotion"), let label = gst_structure_get_string(s, "label") {
                var labelID: gint = -1, confidence: gdouble = 0
                _ = gst_structure_get_int(s, "label_id", &labelID)
                _ = gst_structure_get_double(s, "confidence", &confidence)
                f = EmotionFace(id: 0, x: 0, y: 0, width: 0, height: 0, emotion: String(cString: label), labelID: Int(labelID),
                                confidence: confidence, probabilities: numbers(s, EmotionFace.Key.probabilities),
                                landmarks: numbers(s, EmotionFace.Key.landmarks))
            } else if let k = known?[Int(m.pointee.id)] {
                f = k
            } else {
                continue
            }
            f.id = Int(m.pointee.id); f.x = Int(m.pointee.x); f.y = Int(m.pointee.y); f.width = Int(m.pointee.w); f.height = Int(m.pointee.h)
            // a scaler moved the box since ferfilter wrote it (GstFerFacesMeta keeps the box as written):
            // the landmarks move with it
            if let k = known?[f.id], k.width > 0, k.height > 0, f.landmarks.count % 2 == 0,
               (k.x, k.y, k.width, k.height) != (f.x, f.y, f.width, f.height) {
                let sx = Double(f.width) / Double(k.width), sy = Double(f.height) / Double(k.height)
                f.landmarks = f.landmarks.enumerated().map { i, v in
                    ((i % 2 == 0 ? Double(f.x) + (v - Double(k.x)) * sx : Double(f.y) + (v - Double(k.y)) * sy) * 10).rounded() / 10
                }
            }
            if f.landmarks.count % 2 != 0 || f.landmarks.count > 2 * EmotionFace.maxLandmarks { f.landmarks = [] }
            out.append(f)
        }
        if !sawROI, known != nil { return listed }
        return sawROI || known != nil ? out : nil
    }

    /// A `face` structure back (nil where a field is missing, of the wrong type or out of bounds).
    static func face(_ fs: UnsafePointer<GstStructure>) -> EmotionFace? {
        try? EmotionFace(reading: StructureReader(structure: fs))
    }

    /// The probabilities or landmarks of an "emotion" ROI param (none when absent or not numbers).
    private static func numbers(_ s: UnsafePointer<GstStructure>, _ key: String) -> [Double] {
        if case .numbers(let p)? = StructureReader(structure: s).value(key) { return p.filter(\.isFinite).count == p.count ? p : [] }
        return []
    }

    /// The `ferfilter` element message, shaped like facedetect's: `timestamp`, `stream-time`,
    /// `running-time`, `duration`, `count`, and `faces`, a list of `face` structures.
    static func message(_ faces: [EmotionFace], times: FrameTimes) -> UnsafeMutablePointer<GstStructure> {
        let st = gst_structure_new_empty("ferfilter")!
        times.set(on: st)
        gstfer_structure_set_clock_time(st, "duration", times.duration)
        gstfer_structure_set_uint(st, "count", guint(faces.count))
        for f in faces { gstfer_structure_append_structure(st, "faces", structure(f)) }
        return st
    }

    /// What `message-mode=on-change` compares: the ids and their labels.
    static func signature(_ faces: [EmotionFace]) -> String {
        faces.map { "\($0.id):\($0.emotion)" }.joined(separator: ",")
    }
}
