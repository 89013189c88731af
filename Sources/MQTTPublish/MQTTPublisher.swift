import CMosquitto
import Foundation

/// Publishes messages to an MQTT broker without ever making the caller wait: `publish` puts the
/// message on a bounded queue and returns; a sender thread hands queued messages to libmosquitto
/// while the broker is connected, keeping at most `inflightLimit` unacknowledged; libmosquitto's
/// own thread does the network, keep-alive and reconnection (after 1 s, then every 2 s).
///
/// What the counts mean: `sent` messages were acknowledged by the broker (QoS 1) or written to
/// the socket (QoS 0); `dropped` ones never will be: pushed out of a full queue (the oldest go
/// first, so a subscriber catches up on the newest), unwritten when the connection went (QoS 0),
/// or still waiting when the publisher closed. At QoS 1 every message is exactly one of sent,
/// dropped or still queued; at QoS 0 a message written just before the connection died is counted
/// sent, since MQTT gives no receipt for it.
///
/// The status topic holds a retained `online` while connected and `offline` after a clean close;
/// the broker publishes the same `offline` itself (the last will) when the connection dies.
public final class MQTTPublisher: @unchecked Sendable {
    public let target: PublishTarget
    public let clientID: String
    /// Most messages handed to libmosquitto and not yet acknowledged.
    public let inflightLimit: Int

    /// What happened to the connection, for the owner to report (called on libmosquitto's thread).
    public enum Event: Sendable, Equatable {
        case connected(first: Bool)
        /// The broker answered the CONNECT with a refusal (bad credentials, not authorised, ...).
        case refused(String)
        /// The connection ended; libmosquitto retries by itself.
        case lost(String)
    }

    public struct Counts: Sendable, Equatable {
        public var sent = 0, dropped = 0, queued = 0, inflight = 0
        public var connected = false
        /// Connections made (the first and every reconnection).
        public var connections = 0
    }

    /// How the first connection attempt ended (`waitForConnection`).
    public enum FirstConnection: Sendable, Equatable {
        case connected
        case refused(String)
        /// No answer within the wait: the broker is down, unreachable or slow; retrying goes on.
        case notYet(String)
    }

    private struct Message { let topic: String; let payload: [UInt8]; let retain: Bool }

    private let mosq: OpaquePointer
    private let cond = NSCondition()
    // under `cond`:
    private var queue: [Message] = []
    private var head = 0
    /// The mids handed to libmosquitto and not yet acknowledged (or written, at QoS 0).
    private var inflight: Set<Int32> = []
    /// Acknowledgements that came before `mosquitto_publish` returned their mid.
    private var earlyAcks: Set<Int32> = []
    /// The status messages (online, offline) not yet acknowledged: not counted.
    private var statusMids: Set<Int32> = []
    private var counts = Counts()
    private var closing = false, senderDone = false
    private var firstOutcome: FirstConnection?
    /// Why the first attempt failed before any answer (refused port, unknown host), if it did.
    private var firstFailure: String?
    private var lastProblem = "no answer yet"
    /// The first connection attempt failed at once: libmosquitto's thread does not retry such a
    /// one by itself, so the sender thread asks it again every second until an attempt is under way.
    private var kickNeeded = false
    private let onEvent: @Sendable (Event) -> Void
    private var sender: Thread?

    private static let libraryReady: Bool = { mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue }()
    private static let serial = Locked(0)

    /// Sets up the client and starts connecting in the background; throws only for what retrying
    /// cannot fix (the library, TLS files it rejects).
    public init(target: PublishTarget, inflightLimit: Int = 64, onEvent: @escaping @Sendable (Event) -> Void = { _ in }) throws {
        guard MQTTPublisher.libraryReady else { throw PublishError.library("libmosquitto did not initialise") }
        self.target = target
        self.inflightLimit = max(1, inflightLimit)
        self.onEvent = onEvent
        let n = MQTTPublisher.serial.withLock { v -> Int in v += 1; return v }
        clientID = target.clientID ?? "gstfer-\(ProcessInfo.processInfo.hostName.prefix(32))-\(getpid())-\(n)"
        guard let m = mosquitto_new(clientID, true, nil) else { throw PublishError.library("mosquitto_new failed (errno \(errno))") }
        mosq = m
        // from here a throw still runs deinit, whose close() destroys the handle
        mosquitto_user_data_set(m, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(m, { _, obj, rc in MQTTPublisher.from(obj)?.connected(rc) })
        mosquitto_disconnect_callback_set(m, { _, obj, rc in MQTTPublisher.from(obj)?.disconnected(rc) })
        mosquitto_publish_callback_set(m, { _, obj, mid in MQTTPublisher.from(obj)?.acknowledged(mid) })
        _ = mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1)
        mosquitto_reconnect_delay_set(m, 1, 2, false)   // 1 s, then every 2 s: a broker back is used at once
        _ = mosquitto_max_inflight_messages_set(m, UInt32(self.inflightLimit))
        if let user = target.user {
            try check(mosquitto_username_pw_set(m, user, target.password), "the user name or password")
        }
        let offline = Array("offline".utf8)
        try check(mosquitto_will_set(m, target.topic("status"), Int32(offline.count), offline, 1, true), "the last will")
        if target.tls {
            if target.caFile == nil { _ = mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1) }
            try check(mosquitto_tls_set(m, target.caFile, target.caFile == nil ? "/etc/ssl/certs" : nil, target.certFile, target.keyFile, nil),
                      "the TLS files")
        }
        // The first attempt fails at once for an unknown host or a refused port; the loop retries.
        let rc = mosquitto_connect_async(m, target.host, Int32(target.port), target.keepalive)
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            let why = MQTTPublisher.describe(rc)
            cond.withLock { lastProblem = why; firstFailure = why; kickNeeded = true }
        }
        try check(mosquitto_loop_start(m), "the network thread")
        let t = Thread { [unowned self] in self.sendLoop() }
        t.name = "gstfer-mqtt-send"
        sender = t
        t.start()
    }

    deinit { close(timeout: 0) }

    private func check(_ rc: Int32, _ what: String) throws {
        if rc != MOSQ_ERR_SUCCESS.rawValue { throw PublishError.setup("\(target): \(what): \(MQTTPublisher.describe(rc))") }
    }

    private static func from(_ obj: UnsafeMutableRawPointer?) -> MQTTPublisher? {
        obj.map { Unmanaged<MQTTPublisher>.fromOpaque($0).takeUnretainedValue() }
    }

    static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }

    // MARK: the caller's side

    /// Queues a message for `prefix/leaf`; never blocks. When the queue is full the oldest
    /// message is dropped and counted.
    public func publish(_ leaf: String, _ payload: [UInt8], retain: Bool = false) {
        cond.withLock {
            guard !closing else { counts.dropped += 1; return }
            queue.append(Message(topic: target.topic(leaf), payload: payload, retain: retain))
            if queue.count - head > target.queue { head += 1; counts.dropped += 1 }
            if head > 1024 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
            cond.broadcast()
        }
    }

    public func publish(_ leaf: String, _ payload: Data, retain: Bool = false) { publish(leaf, [UInt8](payload), retain: retain) }

    public var currentCounts: Counts {
        cond.withLock { var c = counts; c.queued = queue.count - head; c.inflight = inflight.count; return c }
    }

    /// Waits up to `timeout` seconds for the broker's answer to the first connection.
    public func waitForConnection(timeout: Double) -> FirstConnection {
        let deadline = Date(timeIntervalSinceNow: timeout)
        return cond.withLock {
            while firstOutcome == nil && firstFailure == nil && cond.wait(until: deadline) {}
            return firstOutcome ?? .notYet(firstFailure ?? lastProblem)
        }
    }

    /// Sends what is queued (waiting up to `timeout` seconds for the broker to take it), marks the
    /// status `offline`, disconnects and stops the threads. What did not go is counted dropped.
    /// Later calls do nothing.
    public func close(timeout: Double) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let first = cond.withLock { () -> Bool in
            if closing { return false }
            while (queue.count > head || !inflight.isEmpty) && counts.connected && cond.wait(until: deadline) {}
            closing = true
            cond.broadcast()
            while !senderDone && sender != nil { cond.wait() }
            return true
        }
        guard first else { return }
        let connected = cond.withLock { counts.connected }
        if connected {
            let offline = Array("offline".utf8)
            var mid: Int32 = 0
            if publishStatus(offline, mid: &mid) {
                let until = Date(timeIntervalSinceNow: min(1, max(0.2, timeout)))
                cond.withLock { while statusMids.contains(mid) && counts.connected && cond.wait(until: until) {} }
            }
        }
        mosquitto_disconnect(mosq)
        mosquitto_loop_stop(mosq, false)
        cond.withLock {
            counts.dropped += (queue.count - head) + inflight.count
            queue = []; head = 0; inflight = []
            counts.connected = false
        }
        mosquitto_destroy(mosq)
    }

    /// Cuts the connection under libmosquitto without a DISCONNECT, as a crash or a pulled cable
    /// would: the broker then publishes the last will. For tests.
    func dropConnectionForTesting() {
        let fd = mosquitto_socket(mosq)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    // MARK: the sender thread

    private func sendLoop() {
        cond.lock()
        while true {
            while !closing && !(counts.connected && queue.count > head && inflight.count < inflightLimit) {
                if kickNeeded {
                    if !cond.wait(until: Date(timeIntervalSinceNow: 1)) && !closing {
                        cond.unlock()
                        let rc = mosquitto_reconnect_async(mosq)
                        cond.lock()
                        if rc == MOSQ_ERR_SUCCESS.rawValue { kickNeeded = false } else { lastProblem = MQTTPublisher.describe(rc) }
                    }
                } else {
                    cond.wait()
                }
            }
            if closing { break }
            let m = queue[head]; head += 1
            cond.unlock()
            var mid: Int32 = 0
            let rc = m.payload.withUnsafeBytes {
                mosquitto_publish(mosq, &mid, m.topic, Int32($0.count), $0.baseAddress, target.qos, m.retain)
            }
            cond.lock()
            // At QoS 1 libmosquitto keeps a message it could not write yet and sends it after reconnecting.
            let handed = rc == MOSQ_ERR_SUCCESS.rawValue
                || (target.qos == 1 && (rc == MOSQ_ERR_NO_CONN.rawValue || rc == MOSQ_ERR_CONN_LOST.rawValue))
            if !handed { counts.dropped += 1 } else if earlyAcks.remove(mid) != nil { counts.sent += 1 } else { inflight.insert(mid) }
        }
        senderDone = true
        cond.broadcast()
        cond.unlock()
    }

    // MARK: libmosquitto's thread

    private func connected(_ rc: Int32) {
        if rc != 0 {
            let reason = String(cString: mosquitto_connack_string(rc))
            cond.withLock {
                lastProblem = reason
                if firstOutcome == nil { firstOutcome = .refused(reason) }
                cond.broadcast()
            }
            onEvent(.refused(reason))
            return
        }
        let first = cond.withLock { () -> Bool in
            // QoS 0 messages libmosquitto had not written were discarded with the old connection.
            if target.qos == 0 { counts.dropped += inflight.count; inflight = [] }
            counts.connected = true
            counts.connections += 1
            let first = firstOutcome == nil
            if first { firstOutcome = .connected }
            cond.broadcast()
            return first
        }
        var mid: Int32 = 0
        _ = publishStatus(Array("online".utf8), mid: &mid)
        onEvent(.connected(first: first))
    }

    /// Publishes the retained status (QoS 1), outside the counts.
    private func publishStatus(_ text: [UInt8], mid: inout Int32) -> Bool {
        guard mosquitto_publish(mosq, &mid, target.topic("status"), Int32(text.count), text, 1, true) == MOSQ_ERR_SUCCESS.rawValue else { return false }
        let m = mid
        cond.withLock { if earlyAcks.remove(m) == nil { statusMids.insert(m) } }
        return true
    }

    private func disconnected(_ rc: Int32) {
        let (was, closing) = cond.withLock { () -> (Bool, Bool) in
            let was = counts.connected
            counts.connected = false
            if rc != 0 { lastProblem = MQTTPublisher.describe(rc) }
            if firstOutcome == nil && firstFailure == nil { firstFailure = lastProblem }
            cond.broadcast()
            return (was, self.closing)
        }
        if was && !closing { onEvent(.lost(rc == 0 ? "disconnected" : MQTTPublisher.describe(rc))) }
    }

    private func acknowledged(_ mid: Int32) {
        cond.withLock {
            if inflight.remove(mid) != nil { counts.sent += 1 } else if statusMids.remove(mid) == nil { earlyAcks.insert(mid) }
            cond.broadcast()
        }
    }
}

public enum PublishError: Error, CustomStringConvertible {
    case library(String), setup(String)
    public var description: String {
        switch self {
        case .library(let s): return "MQTT: \(s)"
        case .setup(let s): return s
        }
    }
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R { lock.lock(); defer { lock.unlock() }; return try body(&value) }
}
