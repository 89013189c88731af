import CGStreamer
import Foundation
import MQTTPublish

/// The `publish` property of ferfilter and ferseiextract: starting the MQTT publisher, deciding
/// what fails the state change, and the stats fields.
///
/// - A URL that does not parse, TLS files libmosquitto rejects, or a broker that refuses the
///   client (bad credentials, not authorised) fail the start with an error: retrying cannot fix them.
/// - A broker not reachable within `connectWait` (down, unknown host, not started yet) is a
///   warning: cameras often start before the broker, so the element goes on and keeps trying.
/// - Losing the connection while running is a warning (once per outage); the reconnection is logged.
enum Publishing {
    enum Report {
        case error(String, String), warning(String, String), info(String)
    }

    /// How long the start waits for the broker's first answer.
    static let connectWait = 2.0
    /// How long stopping waits for queued messages and the summary to reach the broker.
    static let closeTimeout = 2.0

    /// Starts publishing to `url`, or reports an error through `post` and returns nil.
    static func start(_ url: String, element name: String, post: @escaping (Report) -> Void) -> MQTTPublisher? {
        let target: PublishTarget
        do { target = try PublishTarget(url: url) } catch {
            post(.error("\(name) cannot publish to \(error)", "property publish"))
            return nil
        }
        let warned = LockedText()
        let publisher: MQTTPublisher
        do {
            publisher = try MQTTPublisher(target: target) { event in
                switch event {
                case .connected(let first):
                    warned.set(nil)
                    post(.info("\(first ? "connected" : "reconnected") to the MQTT broker \(target)"))
                case .lost(let reason):
                    if warned.replace("lost: " + reason) {
                        post(.warning("\(name) lost its connection to the MQTT broker \(target) (\(reason)); reconnecting by itself",
                                      "frames go on; messages wait in a queue of \(target.queue), the oldest dropped beyond it (stats: publish-dropped)"))
                    }
                case .refused(let reason):
                    if warned.replace("refused: " + reason) {
                        post(.warning("the MQTT broker \(target) refused \(name): \(reason)", "retrying; messages are dropped meanwhile"))
                    }
                }
            }
        } catch {
            post(.error("\(name) cannot publish: \(error)", "property publish"))
            return nil
        }
        switch publisher.waitForConnection(timeout: connectWait) {
        case .connected:
            break
        case .refused(let reason):
            publisher.close(timeout: 0)
            post(.error("the MQTT broker \(target) refused \(name): \(reason)", "check the user name and password in the publish URL"))
            return nil
        case .notYet(let reason):
            warned.set("lost: " + reason)
            post(.warning("\(name) cannot reach the MQTT broker \(target) yet (\(reason)); it keeps trying",
                          "frames go on; messages wait in a queue of \(target.queue), the oldest dropped beyond it (stats: publish-dropped)"))
        }
        return publisher
    }

    /// The publishing fields of a `ferfilter-stats` (or `ferseiextract-stats`) structure.
    static func set(_ c: MQTTPublisher.Counts, on st: UnsafeMutablePointer<GstStructure>) {
        gstfer_structure_set_uint64(st, "published", guint64(c.sent))
        gstfer_structure_set_uint64(st, "publish-dropped", guint64(c.dropped))
        gstfer_structure_set_uint64(st, "publish-queued", guint64(c.queued + c.inflight))
        gstfer_structure_set_boolean(st, "publish-connected", c.connected ? 1 : 0)
        gstfer_structure_set_uint64(st, "publish-connections", guint64(c.connections))
    }
}

/// The last warning given, so that a retry loop warns once per cause.
private final class LockedText: @unchecked Sendable {
    private var text: String?
    private let lock = NSLock()
    func set(_ t: String?) { lock.lock(); text = t; lock.unlock() }
    /// Stores `t`; true when it differs from what was there.
    func replace(_ t: String) -> Bool { lock.lock(); defer { lock.unlock() }; if text == t { return false }; text = t; return true }
}
