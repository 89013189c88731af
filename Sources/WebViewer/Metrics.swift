import Foundation

/// `GET /metrics`: the viewer's figures in Prometheus's text format (version 0.0.4), for the
/// monitoring a broadcast or operations team already runs (Prometheus, Grafana, VictoriaMetrics).
/// Counters end in `_total`; the element's figures are those of its `stats` property.
enum Metrics {
    struct Family {
        let name: String, help: String, type: String
        var samples: [(labels: String, value: Double)]
    }

    /// Element `stats` fields as metric families: counters for the counts, gauges for the rest;
    /// milliseconds become seconds, Prometheus's base unit (`scale`).
    static let elementFields: [(field: String, name: String, type: String, scale: Double, help: String)] = [
        ("frames", "fer_element_frames_total", "counter", 1, "Frames that passed through ferfilter."),
        ("analysed", "fer_element_analysed_total", "counter", 1, "Frames ferfilter analysed (detection and classification)."),
        ("between", "fer_element_between_total", "counter", 1, "Frames between analyses (detect-interval), where boxes follow the tracks."),
        ("tracks", "fer_element_tracks_total", "counter", 1, "Face tracks ferfilter started."),
        ("faces", "fer_element_faces", "gauge", 1, "Faces on ferfilter's last frame."),
        ("analyses", "fer_element_analyses_total", "counter", 1, "Analyses ferfilter finished."),
        ("analysis-ms-mean", "fer_element_analysis_mean_seconds", "gauge", 1e-3, "Mean time of one analysis."),
        ("analysis-ms-max", "fer_element_analysis_max_seconds", "gauge", 1e-3, "Longest analysis."),
        ("frame-ms-mean", "fer_element_frame_mean_seconds", "gauge", 1e-3, "Mean time a frame spends in ferfilter."),
        ("frame-ms-max", "fer_element_frame_max_seconds", "gauge", 1e-3, "Longest time a frame spent in ferfilter."),
        ("latency-ms", "fer_element_latency_seconds", "gauge", 1e-3, "Latency ferfilter reports (LATENCY query)."),
        ("live", "fer_element_live", "gauge", 1, "1 when ferfilter's source is live."),
        ("published", "fer_element_published_total", "counter", 1, "Messages the MQTT broker took from ferfilter (--publish)."),
        ("publish-dropped", "fer_element_publish_dropped_total", "counter", 1,
         "Messages ferfilter dropped because the MQTT broker was slow or gone (--publish)."),
        ("publish-queued", "fer_element_publish_queued", "gauge", 1, "Messages waiting for the MQTT broker (--publish)."),
        ("publish-connected", "fer_element_publish_connected", "gauge", 1, "1 while ferfilter is connected to the MQTT broker (--publish)."),
        ("publish-connections", "fer_element_publish_connections_total", "counter", 1,
         "Connections ferfilter made to the MQTT broker: the first and each reconnection (--publish)."),
    ]

    static func text(hub: LiveHub, cameras: Int, uptime: Double) -> String {
        let stats = hub.frameStats, status = hub.currentStatus, summary = hub.ledger.summary()
        var families = [
            Family(name: "fer_uptime_seconds", help: "Seconds since fer serve started.", type: "gauge", samples: [("", uptime)]),
            Family(name: "fer_pipeline_playing", help: "1 while the video pipeline plays.", type: "gauge",
                   samples: [("", status.state == "playing" ? 1 : 0)]),
            Family(name: "fer_frames_total", help: "Video frames the viewer has read.", type: "counter", samples: [("", Double(stats.frames))]),
            Family(name: "fer_fps", help: "Frames per second over the last 3 seconds.", type: "gauge", samples: [("", stats.fps)]),
            Family(name: "fer_face_frames_total", help: "Faces reported, summed over frames, since start.", type: "counter",
                   samples: [("", Double(summary.faceFrames))]),
            Family(name: "fer_emotion_share", help: "Share of face-frames showing each emotion since start.", type: "gauge",
                   samples: summary.labels.map { ("emotion=\"\(escaped($0))\"", summary.overall[$0] ?? 0) }),
            Family(name: "fer_clients", help: "Connected clients by kind.", type: "gauge",
                   samples: [("kind=\"video\"", Double(hub.frames.count)), ("kind=\"events\"", Double(hub.events.count)),
                             ("kind=\"camera\"", Double(cameras))]),
        ]
        if let element = hub.elementStats?() {
            for f in elementFields {
                guard let v = element[f.field] else { continue }
                let value: Double
                switch v { case .number(let d): value = d * f.scale; case .flag(let b): value = b ? 1 : 0 }
                families.append(Family(name: f.name, help: f.help, type: f.type, samples: [("", value)]))
            }
            let skipped = ["late", "busy", "rate"].compactMap { reason -> (String, Double)? in
                guard case .number(let d)? = element["skipped-\(reason)"] else { return nil }
                return ("reason=\"\(reason)\"", d)
            }
            families.append(Family(name: "fer_element_skipped_total", help: "Analyses ferfilter left out on a live source, by reason.",
                                   type: "counter", samples: skipped))
        }
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(f.help)\n# TYPE \(f.name) \(f.type)\n"
            for s in f.samples { out += f.name + (s.labels.isEmpty ? "" : "{\(s.labels)}") + " " + number(s.value) + "\n" }
        }
        return out
    }

    /// A sample value: integers without a fraction, others as Swift prints a Double.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "+Inf" : "-Inf") }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// A label value with backslash, quote and newline escaped.
    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
