import Foundation

/// A real MQTT broker for tests: Debian's `mosquitto` on a free loopback port, with its own
/// configuration and persistence folder, which a test can stop and start again on the same port;
/// and `mosquitto_sub`, the reference client, subscribed to what a test publishes. Tests only:
/// neither the plugin nor `fer` links this.
public final class TestBroker {
    public let port: Int
    public let folder: URL
    public let tls: TestCertificates?
    private var process: Process?

    /// Where `mosquitto` is, or nil (the tests then skip, saying to install it).
    public static let executable: String? = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    public enum Failure: Error, CustomStringConvertible {
        case missing(String), didNotStart(String)
        public var description: String {
            switch self {
            case .missing(let s): return "\(s) is not installed (Debian: apt-get install mosquitto mosquitto-clients openssl)"
            case .didNotStart(let s): return "mosquitto did not start: \(s)"
            }
        }
    }

    /// Writes the configuration and starts the broker. `users`: name -> password (then anonymous
    /// clients are refused); `tls`: the listener speaks TLS with these certificates.
    public init(port: Int? = nil, users: [String: String] = [:], tls: TestCertificates? = nil) throws {
        guard TestBroker.executable != nil else { throw Failure.missing("mosquitto") }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-broker-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.port = try port ?? freePort()
        self.tls = tls
        var conf = ["listener \(self.port) 127.0.0.1", "persistence true", "persistence_location \(folder.path)/",
                    "log_dest file \(folder.path)/broker.log", "log_type all"]
        if let name = ProcessInfo.processInfo.environment["USER"] ?? String(validatingUTF8: getpwuid(getuid()).pointee.pw_name) {
            conf.append("user \(name)")   // as root, mosquitto would drop to the `mosquitto` user, who cannot read our files
        }
        if users.isEmpty {
            conf.append("allow_anonymous true")
        } else {
            let file = folder.appendingPathComponent("passwords")
            try users.map { "\($0.key):\($0.value)" }.joined(separator: "\n").appending("\n").write(to: file, atomically: true, encoding: .utf8)
            try run("mosquitto_passwd", ["-U", file.path])
            conf += ["allow_anonymous false", "password_file \(file.path)"]
        }
        if let tls { conf += ["cafile \(tls.ca)", "certfile \(tls.serverCert)", "keyfile \(tls.serverKey)"] }
        try conf.joined(separator: "\n").appending("\n").write(to: folder.appendingPathComponent("mosquitto.conf"), atomically: true, encoding: .utf8)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Starts the broker (again) and waits until it accepts connections.
    public func start() throws {
        guard process == nil else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestBroker.executable!)
        p.arguments = ["-c", folder.appendingPathComponent("mosquitto.conf").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            if !p.isRunning { process = nil; throw Failure.didNotStart("exited with \(p.terminationStatus); " + log.suffix(800)) }
            if canConnect(port: port) { return }
            usleep(20_000)
        }
        throw Failure.didNotStart("no listener on port \(port) after 10 s; its log: " + log.suffix(800))
    }

    /// Stops the broker (SIGTERM: it saves its persistent sessions, as a service stop does) and waits.
    public func stop() {
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// The broker's log so far.
    public var log: String { (try? String(contentsOf: folder.appendingPathComponent("broker.log"), encoding: .utf8)) ?? "" }
}

/// A test certificate authority and a server certificate for 127.0.0.1 and localhost, made with
/// the `openssl` command in a temporary folder.
public struct TestCertificates {
    public let ca: String, serverCert: String, serverKey: String

    public init() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-ca-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        ca = path("ca.crt"); serverCert = path("server.crt"); serverKey = path("server.key")
        try run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=GstFER test CA",
                            "-keyout", path("ca.key"), "-out", ca])
        try run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", serverKey, "-out", path("server.csr")])
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: path("san.ext"), atomically: true, encoding: .utf8)
        try run("openssl", ["x509", "-req", "-in", path("server.csr"), "-CA", ca, "-CAkey", path("ca.key"), "-CAcreateserial",
                            "-days", "2", "-extfile", path("san.ext"), "-out", serverCert])
    }
}

/// `mosquitto_sub -v` subscribed to `topic` (QoS 1): the messages it prints, as they come. With
/// `session`, a persistent session under that client id (the broker keeps what comes for it
/// while it is away, across a broker restart).
public final class TestSubscriber {
    public struct Message: Equatable { public let topic: String; public let payload: String }
    private let process = Process()
    private let lock = NSCondition()
    private var lines: [String] = []
    private var partial = Data()
    private let probe: String
    private let port: Int, ca: String?

    public init(port: Int, topic: String, session: String? = nil, ca: String? = nil, user: (String, String)? = nil) throws {
        self.port = port; self.ca = ca
        probe = "gstfer-test-probe/\(getpid())/\(UUID().uuidString.prefix(8))"
        process.executableURL = URL(fileURLWithPath: try which("mosquitto_sub"))
        var args = ["-h", ca == nil ? "127.0.0.1" : "localhost", "-p", "\(port)", "-t", topic, "-t", probe, "-v", "-q", "1"]
        if let session { args += ["-c", "-i", session] }
        if let ca { args += ["--cafile", ca] }
        if let (u, p) = user { args += ["-u", u, "-P", p] }
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.withLock {
                self.partial.append(d)
                while let nl = self.partial.firstIndex(of: 0x0A) {
                    self.lines.append(String(decoding: self.partial[self.partial.startIndex..<nl], as: UTF8.self))
                    self.partial = Data(self.partial[(nl + 1)...])
                }
                self.lock.broadcast()
            }
        }
        try process.run()
        // subscribed once a probe published after it comes back
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            try publishOnce(probe, "ready")
            if wait(timeout: 0.3, until: { $0.contains { $0.hasPrefix(self.probe + " ") } }) { return }
        }
        throw TestBroker.Failure.didNotStart("mosquitto_sub did not receive its probe")
    }

    deinit { stop() }

    public func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// Publishes one message with `mosquitto_pub` (QoS 1).
    public func publishOnce(_ topic: String, _ payload: String) throws {
        var args = ["-h", ca == nil ? "127.0.0.1" : "localhost", "-p", "\(port)", "-t", topic, "-m", payload, "-q", "1"]
        if let ca { args += ["--cafile", ca] }
        try run("mosquitto_pub", args)
    }

    /// The messages received so far (not the probes), in order.
    public var messages: [Message] {
        lock.withLock {
            lines.compactMap { line in
                guard let sp = line.firstIndex(of: " ") else { return nil }
                let topic = String(line[..<sp])
                return topic == probe ? nil : Message(topic: topic, payload: String(line[line.index(after: sp)...]))
            }
        }
    }

    /// Waits until `condition` holds for the received lines, or `timeout` seconds; true if it held.
    @discardableResult
    public func wait(timeout: Double, until condition: @escaping ([String]) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        return lock.withLock {
            while !condition(lines) { if !lock.wait(until: deadline) { return condition(lines) } }
            return true
        }
    }

    /// Waits until the messages on `topic` number at least `count`.
    @discardableResult
    public func wait(for count: Int, on topic: String, timeout: Double) -> Bool {
        wait(timeout: timeout) { $0.filter { $0.hasPrefix(topic + " ") }.count >= count }
    }
}

/// Runs a command to its end; throws with its output when it fails.
@discardableResult
func run(_ command: String, _ arguments: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try which(command))
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out; p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard p.terminationStatus == 0 else { throw TestBroker.Failure.didNotStart("\(command) \(arguments.joined(separator: " ")): \(text)") }
    return text
}

func which(_ command: String) throws -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: dir + "/" + command) {
        return dir + "/" + command
    }
    throw TestBroker.Failure.missing(command)
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestBroker.Failure.didNotStart("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw TestBroker.Failure.didNotStart("bind: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
public func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
