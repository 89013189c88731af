import Foundation

/// Where and how to publish, read from one URL so that a pipeline string can carry it:
///
///     mqtt://[user[:password]@]host[:port]/prefix[?qos=0|1&client-id=ID&queue=N&keepalive=S]
///     mqtts://[user[:password]@]host[:port]/prefix?ca=/etc/ssl/ca.crt[&cert=client.crt&key=client.key]
///
/// Messages go to `prefix/frames`, `prefix/changes`, `prefix/summary` and `prefix/status`. The
/// port defaults to 1883 (`mqtt`) or 8883 (`mqtts`); `mqtts` without `ca` trusts the system's CAs.
/// User, password and the path segments are percent-decoded, so `%40` in a password is `@`.
public struct PublishTarget: Equatable, Sendable, CustomStringConvertible {
    public var tls = false
    public var host = ""
    public var port = 1883
    public var user: String? = nil
    public var password: String? = nil
    /// Topic prefix, without leading or trailing slash ("site/cam1").
    public var prefix = ""
    /// MQTT quality of service: 0 (at most once) or 1 (at least once; the default).
    public var qos: Int32 = 1
    /// MQTT client id; nil: gstfer-HOSTNAME-PID-N.
    public var clientID: String? = nil
    /// The most messages waiting to be sent; beyond it the oldest is dropped (and counted).
    public var queue = 512
    /// Seconds between keep-alive pings (the broker declares the client gone after 1.5 of them).
    public var keepalive: Int32 = 15
    public var caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil

    /// What a URL gets wrong, said so that the user can fix the pipeline string.
    public struct Invalid: Error, CustomStringConvertible {
        public let url: String, reason: String
        public var description: String { "\(url): \(reason)" }
    }

    public init(url text: String) throws {
        let shown = PublishTarget.redact(text)
        func invalid(_ reason: String) -> Invalid { Invalid(url: shown, reason: reason) }
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased() else {
            throw invalid("not a URL; expected mqtt://host[:port]/prefix or mqtts://...")
        }
        switch scheme {
        case "mqtt": tls = false; port = 1883
        case "mqtts": tls = true; port = 8883
        default: throw invalid("the scheme must be mqtt or mqtts, not \(scheme)")
        }
        guard let h = c.host, !h.isEmpty else { throw invalid("no broker host") }
        host = h
        if let p = c.port {
            guard (1...65535).contains(p) else { throw invalid("port \(p) is outside 1-65535") }
            port = p
        }
        user = c.user.flatMap { $0.isEmpty ? nil : $0 }
        password = c.password
        if password != nil && user == nil { throw invalid("a password needs a user name") }
        if c.fragment != nil {
            throw invalid("the topic prefix holds a wildcard (# or +), which MQTT forbids in a topic one publishes to")
        }
        prefix = c.path.split(separator: "/").joined(separator: "/")
        guard !prefix.isEmpty else { throw invalid("no topic prefix; add one after the host, as in mqtt://\(host)/cameras/cam1") }
        guard !prefix.contains(where: { $0 == "+" || $0 == "#" || $0 == "\0" }) else {
            throw invalid("the topic prefix \(prefix) holds a wildcard (+ or #), which MQTT forbids in a topic one publishes to")
        }
        for item in c.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "qos":
                guard let q = Int32(value), q == 0 || q == 1 else { throw invalid("qos must be 0 or 1, not \(value)") }
                qos = q
            case "client-id", "client_id", "clientid":
                guard !value.isEmpty, value.utf8.count <= 65535 else { throw invalid("client-id is empty or too long") }
                clientID = value
            case "queue":
                guard let n = Int(value), (1...1_000_000).contains(n) else { throw invalid("queue must be a count of messages, 1-1000000, not \(value)") }
                queue = n
            case "keepalive":
                guard let k = Int32(value), (5...3600).contains(k) else { throw invalid("keepalive must be 5-3600 seconds, not \(value)") }
                keepalive = k
            case "ca", "cert", "key":
                guard tls else { throw invalid("\(item.name)= needs mqtts://") }
                guard FileManager.default.isReadableFile(atPath: value) else { throw invalid("the \(item.name) file \(value) cannot be read") }
                if item.name == "ca" { caFile = value } else if item.name == "cert" { certFile = value } else { keyFile = value }
            default:
                throw invalid("unknown option \(item.name); known: qos, client-id, queue, keepalive, ca, cert, key")
            }
        }
        if (certFile == nil) != (keyFile == nil) { throw invalid("a client certificate needs both cert= and key=") }
    }

    /// The topic a kind of message goes to.
    public func topic(_ leaf: String) -> String { prefix + "/" + leaf }

    /// The URL as messages show it: no password.
    public var description: String {
        var s = (tls ? "mqtts://" : "mqtt://")
        if let user { s += user + (password != nil ? ":***" : "") + "@" }
        return s + host + ":\(port)/" + prefix
    }

    /// `text` with any password replaced by `***`, for error messages.
    static func redact(_ text: String) -> String {
        guard let c = URLComponents(string: text), c.password != nil else { return text }
        var r = c; r.password = "***"
        return r.string ?? text
    }
}
