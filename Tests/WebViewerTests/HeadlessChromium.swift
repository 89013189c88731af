import FERTraining
import Foundation

/// Drives Debian's `chromium` in headless mode through the Chrome DevTools Protocol, over a
/// WebSocket spoken here on a plain socket (no client library): open a page, evaluate JavaScript
/// in it, take a screenshot.
final class HeadlessChromium {
    let process = Process()
    let profile: URL
    let port: Int

    static func find() -> String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `arguments` go before the first page (e.g. a fake camera).
    init(executable: String, width: Int = 1400, height: Int = 900, arguments: [String] = []) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("gstfer-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--remote-debugging-port=0", "--user-data-dir=\(profile.path)", "--window-size=\(width),\(height)"] + arguments + ["about:blank"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let portFile = profile.appendingPathComponent("DevToolsActivePort")
        let deadline = Date().addingTimeInterval(30)
        var port = 0
        while Date() < deadline {
            if let s = try? String(contentsOf: portFile, encoding: .utf8), let p = s.split(separator: "\n").first.flatMap({ Int($0) }) { port = p; break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        self.port = port
        guard port > 0 else { close(); throw CDPError("chromium did not open its DevTools port within 30 s") }
    }

    func close() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: profile)
    }

    /// Opens `url` in a new tab and returns a connection to it.
    func open(_ url: String) throws -> Page {
        let (_, body) = try HTTP.request("PUT", host: "127.0.0.1", port: port, path: "/json/new?\(url)")
        guard let j = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let ws = j["webSocketDebuggerUrl"] as? String,
              let path = URL(string: ws)?.path else { throw CDPError("no page target: \(String(decoding: body, as: UTF8.self))") }
        return try Page(socket: WebSocket(host: "127.0.0.1", port: port, path: path))
    }

    final class Page {
        let socket: WebSocket
        var nextID = 0
        init(socket: WebSocket) { self.socket = socket }

        /// Sends a DevTools command and returns its `result`.
        func call(_ method: String, _ params: [String: Any] = [:]) throws -> [String: Any] {
            nextID += 1
            let id = nextID
            let msg = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
            try socket.send(text: msg)
            while true {
                let reply = try socket.receive()
                guard let j = try JSONSerialization.jsonObject(with: reply) as? [String: Any] else { continue }
                guard (j["id"] as? Int) == id else { continue }   // events and other replies
                if let e = j["error"] { throw CDPError("\(method): \(e)") }
                return j["result"] as? [String: Any] ?? [:]
            }
        }

        /// The value of a JavaScript expression (JSON-compatible values).
        func evaluate(_ expression: String) throws -> Any? {
            let r = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true])
            if let ex = r["exceptionDetails"] { throw CDPError("\(expression): \(ex)") }
            return (r["result"] as? [String: Any])?["value"]
        }

        /// Polls `expression` until it is true, for at most `timeout` seconds.
        func wait(for expression: String, timeout: Double) throws -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if (try evaluate(expression) as? Bool) == true { return true }
                Thread.sleep(forTimeInterval: 0.25)
            }
            return false
        }

        func screenshot() throws -> Data {
            let r = try call("Page.captureScreenshot", ["format": "png"])
            guard let b64 = r["data"] as? String, let d = Data(base64Encoded: b64) else { throw CDPError("no screenshot data") }
            return d
        }
    }
}

struct CDPError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

/// A blocking TCP connection.
final class TCPSocket {
    let fd: Int32
    init(host: String, port: Int, timeout: Int = 30) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CDPError("socket: \(errno)") }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { Glibc.close(fd); throw CDPError("connect \(host):\(port): errno \(errno)") }
    }
    deinit { Glibc.close(fd) }

    func write(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw CDPError("send failed: errno \(errno)") }
            off += n
        }
    }

    /// Up to `max` bytes; empty at end of stream.
    func read(max: Int = 65536) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        guard n >= 0 else { throw CDPError("recv failed: errno \(errno)") }
        return Array(buf[0..<n])
    }
}

/// HTTP/1.1 requests on a fresh connection (`Connection: close`), raw enough to send malformed ones.
enum HTTP {
    struct Response { var status: Int; var headers: [String: String]; var body: [UInt8] }

    static func request(_ method: String, host: String, port: Int, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (Int, [UInt8]) {
        let r = try send(method: method, host: host, port: port, path: path, headers: headers, body: body)
        return (r.status, r.body)
    }

    static func send(method: String, host: String = "127.0.0.1", port: Int, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try raw(Array(head.utf8) + body, port: port)
    }

    /// Sends `bytes` as they are and parses the answer (Content-Length, chunked or until close).
    static func raw(_ bytes: [UInt8], host: String = "127.0.0.1", port: Int) throws -> Response {
        let s = try TCPSocket(host: host, port: port)
        try s.write(bytes)
        var data: [UInt8] = []
        while true {
            let chunk = try s.read()
            if chunk.isEmpty { break }
            data += chunk
            if let r = parse(data), r.complete { return r.response }
        }
        guard let r = parse(data) else { throw CDPError("no HTTP response (\(data.count) bytes)") }
        return r.response
    }

    static func parse(_ data: [UInt8]) -> (response: Response, complete: Bool)? {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<($0 + 4)]) == sep }) else { return nil }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines.first.flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? 0
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            if let c = l.firstIndex(of: ":") { headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces) }
        }
        let rest = Array(data[(end + 4)...])
        if let n = headers["content-length"].flatMap({ Int($0) }) {
            return (Response(status: status, headers: headers, body: Array(rest.prefix(n))), rest.count >= n)
        }
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var out: [UInt8] = [], i = 0
            while let lineEnd = (i..<max(i, rest.count - 1)).first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }) {
                let size = Int(String(decoding: rest[i..<lineEnd], as: UTF8.self), radix: 16) ?? 0
                if size == 0 { return (Response(status: status, headers: headers, body: out), true) }
                let start = lineEnd + 2
                guard start + size + 2 <= rest.count else { break }
                out += rest[start..<(start + size)]
                i = start + size + 2
            }
            return (Response(status: status, headers: headers, body: out), false)
        }
        return (Response(status: status, headers: headers, body: rest), false)
    }
}

/// A client WebSocket (RFC 6455): text frames out (masked), whole messages in.
final class WebSocket {
    let tcp: TCPSocket
    var buffer: [UInt8] = []

    init(host: String, port: Int, path: String) throws {
        tcp = try TCPSocket(host: host, port: port)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try tcp.write(Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        while true {
            let chunk = try tcp.read()
            guard !chunk.isEmpty else { throw CDPError("WebSocket handshake: connection closed") }
            buffer += chunk
            if let end = (0..<max(0, buffer.count - 3)).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 101") else { throw CDPError("WebSocket handshake refused: \(head)") }
                buffer.removeFirst(end + 4)
                break
            }
        }
    }

    func send(text: Data) throws {
        var frame: [UInt8] = [0x81]
        let n = text.count
        if n < 126 { frame.append(0x80 | UInt8(n)) } else if n < 65536 { frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xff)] } else {
            frame.append(0x80 | 127); for s in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((n >> s) & 0xff)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += text.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try tcp.write(frame)
    }

    private func need(_ n: Int) throws {
        while buffer.count < n {
            let chunk = try tcp.read()
            guard !chunk.isEmpty else { throw CDPError("WebSocket closed") }
            buffer += chunk
        }
    }

    /// The next whole message (fragments joined; control frames skipped).
    func receive() throws -> Data {
        var message: [UInt8] = []
        while true {
            try need(2)
            let fin = buffer[0] & 0x80 != 0, opcode = buffer[0] & 0x0f
            var len = Int(buffer[1] & 0x7f), off = 2
            if len == 126 { try need(4); len = Int(buffer[2]) << 8 | Int(buffer[3]); off = 4 }
            else if len == 127 { try need(10); len = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }; off = 10 }
            try need(off + len)
            let payload = Array(buffer[off..<(off + len)])
            buffer.removeFirst(off + len)
            if opcode == 8 { throw CDPError("WebSocket closed by peer") }
            if opcode >= 8 { continue }
            message += payload
            if fin { return Data(message) }
        }
    }
}
