import Foundation
import MQTTBrokerHarness
@testable import MQTTPublish
import XCTest

/// The publisher against a real broker (Debian's mosquitto on a free loopback port) and the
/// reference subscriber (mosquitto_sub): what arrives, what is dropped and counted, reconnection,
/// credentials, TLS, the retained status and the last will.
final class MQTTPublisherTests: XCTestCase {
    func broker(users: [String: String] = [:], tls: TestCertificates? = nil, port: Int? = nil) throws -> TestBroker {
        do { return try TestBroker(port: port, users: users, tls: tls) } catch TestBroker.Failure.missing(let what) {
            throw XCTSkip("\(what) is not installed (make setup installs mosquitto, mosquitto-clients and openssl)")
        }
    }

    func payloads(_ s: TestSubscriber, _ topic: String) -> [String] { s.messages.filter { $0.topic == topic }.map(\.payload) }

    // MARK: URLs

    func testURLsParseAndBadOnesSayWhy() throws {
        let t = try PublishTarget(url: "mqtt://cam:p%40ss@broker.example:1884/site/cam1?qos=0&client-id=cam1&queue=64&keepalive=20")
        XCTAssertEqual(t.host, "broker.example"); XCTAssertEqual(t.port, 1884)
        XCTAssertEqual(t.user, "cam"); XCTAssertEqual(t.password, "p@ss")
        XCTAssertEqual(t.prefix, "site/cam1"); XCTAssertEqual(t.topic("frames"), "site/cam1/frames")
        XCTAssertEqual(t.qos, 0); XCTAssertEqual(t.clientID, "cam1"); XCTAssertEqual(t.queue, 64); XCTAssertEqual(t.keepalive, 20)
        XCTAssertFalse(t.tls)
        XCTAssertEqual(t.description, "mqtt://cam:***@broker.example:1884/site/cam1", "the password never shows")
        let d = try PublishTarget(url: "mqtt://127.0.0.1/fer/")
        XCTAssertEqual(d.port, 1883); XCTAssertEqual(d.qos, 1); XCTAssertEqual(d.prefix, "fer")
        XCTAssertEqual(try PublishTarget(url: "mqtts://h/x").port, 8883)

        let bad: [(String, String)] = [
            ("broker:1883/x", "scheme"), ("http://h/x", "mqtt or mqtts"), ("mqtt:///x", "no broker host"), ("mqtt://h", "no topic prefix"),
            ("mqtt://h:70000/x", "outside"), ("mqtt://h/x/#", "wildcard"), ("mqtt://h/x?qos=2", "qos must be 0 or 1"),
            ("mqtt://h/x?queue=0", "queue"), ("mqtt://h/x?color=red", "unknown option color"), ("mqtt://h/x?ca=/etc/hostname", "needs mqtts"),
            ("mqtts://h/x?ca=/nonexistent/ca.crt", "cannot be read"), ("mqtt://:secret@h/x", "needs a user name"),
        ]
        for (url, words) in bad {
            XCTAssertThrowsError(try PublishTarget(url: url), url) { error in
                XCTAssertTrue("\(error)".contains(words), "\(url): \(error)")
            }
        }
        XCTAssertThrowsError(try PublishTarget(url: "mqtt://u:secret@h/x?qos=9")) { XCTAssertFalse("\($0)".contains("secret"), "\($0)") }
    }

    // MARK: a real broker

    func testEveryMessageArrivesInOrderWithTheStatus() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "t1/#")
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtt://127.0.0.1:\(b.port)/t1?queue=4000"))
        XCTAssertEqual(p.waitForConnection(timeout: 5), .connected)
        for i in 0..<2000 { p.publish("frames", Array("{\"frame\":\(i)}".utf8)) }
        p.publish("summary", Array("{\"summary\":{}}".utf8), retain: true)
        p.close(timeout: 10)
        XCTAssertTrue(sub.wait(for: 1, on: "t1/summary", timeout: 10))
        XCTAssertTrue(sub.wait(timeout: 5) { $0.last == "t1/status offline" })
        let frames = payloads(sub, "t1/frames"), sent = (0..<2000).map { "{\"frame\":\($0)}" }
        XCTAssertEqual(frames.count, 2000)
        XCTAssertTrue(frames == sent, "every message, once, in order; first difference at \(frames.indices.first { $0 < sent.count && frames[$0] != sent[$0] } ?? -1)")
        XCTAssertEqual(payloads(sub, "t1/status"), ["online", "offline"])
        let c = p.currentCounts
        XCTAssertEqual(c.sent, 2001); XCTAssertEqual(c.dropped, 0); XCTAssertEqual(c.connections, 1)
        // retained: a subscriber that comes later gets the last status and summary at once
        let late = try TestSubscriber(port: b.port, topic: "t1/#")
        XCTAssertTrue(late.wait(for: 1, on: "t1/summary", timeout: 5))
        XCTAssertEqual(payloads(late, "t1/status"), ["offline"])
        XCTAssertTrue(payloads(late, "t1/frames").isEmpty)
    }

    /// QoS 0 (at most once) and a client id of one's own: on loopback every message still arrives,
    /// and the broker knows the client by that id.
    func testQoS0AndTheClientID() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "t7/#")
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtt://127.0.0.1:\(b.port)/t7?qos=0&client-id=cam-seven&queue=1000"))
        XCTAssertEqual(p.clientID, "cam-seven")
        XCTAssertEqual(p.waitForConnection(timeout: 5), .connected)
        for i in 0..<500 { p.publish("frames", Array("\(i)".utf8)) }
        p.close(timeout: 5)
        XCTAssertTrue(sub.wait(for: 500, on: "t7/frames", timeout: 10))
        XCTAssertEqual(payloads(sub, "t7/frames"), (0..<500).map { "\($0)" })
        XCTAssertEqual(p.currentCounts.sent, 500); XCTAssertEqual(p.currentCounts.dropped, 0)
        XCTAssertTrue(b.log.contains(" as cam-seven "), "the broker saw the client id: \(b.log.suffix(600))")
    }

    /// The broker stops while messages keep coming: publish never blocks, the queue keeps the
    /// newest `queue` messages and counts the rest dropped; after the restart the publisher
    /// reconnects by itself and what was kept arrives. Every message is sent or dropped.
    func testBrokerGoneDropsAndCountsThenReconnects() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "t2/#", session: "t2-sub-\(getpid())")
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtt://127.0.0.1:\(b.port)/t2?queue=20"))
        XCTAssertEqual(p.waitForConnection(timeout: 5), .connected)
        for i in 0..<15 { p.publish("frames", Array("\(i)".utf8)) }
        XCTAssertTrue(sub.wait(for: 15, on: "t2/frames", timeout: 10))
        b.stop()
        let t0 = Date()
        for i in 15..<150 { p.publish("frames", Array("\(i)".utf8)) }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5, "publishing never waits for the broker")
        try b.start()
        let deadline = Date(timeIntervalSinceNow: 20)
        while p.currentCounts.connections < 2 && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(p.currentCounts.connections, 2, "reconnected by itself")
        for i in 150..<160 { p.publish("frames", Array("\(i)".utf8)) }
        p.close(timeout: 10)
        sub.wait(timeout: 10) { $0.contains("t2/frames 159") }
        let got = Set(payloads(sub, "t2/frames").compactMap { Int($0) })
        let c = p.currentCounts
        XCTAssertEqual(c.sent + c.dropped, 160)
        XCTAssertGreaterThanOrEqual(c.dropped, 100, "at most 20 (and a few in flight) of the 135 published while the broker was gone were kept")
        XCTAssertEqual(160 - got.count, c.dropped, "the drop count is exactly what did not arrive")
        XCTAssertTrue(got.isSuperset(of: Set(130..<160)), "the newest messages were kept and sent")
    }

    func testRefusedCredentialsAreReportedNotRetriedSilently() throws {
        let b = try broker(users: ["cam": "right"])
        let wrong = try MQTTPublisher(target: PublishTarget(url: "mqtt://cam:wrong@127.0.0.1:\(b.port)/t3"))
        guard case .refused(let why) = wrong.waitForConnection(timeout: 5) else { return XCTFail("a wrong password must be refused") }
        XCTAssertTrue(why.lowercased().contains("not authorised") || why.lowercased().contains("password"), why)
        wrong.close(timeout: 0)
        let right = try MQTTPublisher(target: PublishTarget(url: "mqtt://cam:right@127.0.0.1:\(b.port)/t3"))
        XCTAssertEqual(right.waitForConnection(timeout: 5), .connected)
        right.close(timeout: 1)
    }

    func testTLSWithATestCA() throws {
        let certs = try TestCertificates()
        let b = try broker(tls: certs)
        let sub = try TestSubscriber(port: b.port, topic: "t4/#", ca: certs.ca)
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtts://localhost:\(b.port)/t4?ca=\(certs.ca)"))
        XCTAssertEqual(p.waitForConnection(timeout: 5), .connected)
        for i in 0..<100 { p.publish("frames", Array("\(i)".utf8)) }
        p.close(timeout: 5)
        XCTAssertTrue(sub.wait(for: 100, on: "t4/frames", timeout: 10))
        XCTAssertEqual(p.currentCounts.sent, 100)
        // a CA that did not sign the broker's certificate: no connection, no crash, messages counted dropped
        let other = try TestCertificates()
        let q = try MQTTPublisher(target: PublishTarget(url: "mqtts://localhost:\(b.port)/t4?ca=\(other.ca)"))
        XCTAssertNotEqual(q.waitForConnection(timeout: 3), .connected)
        q.publish("frames", Array("x".utf8))
        q.close(timeout: 0.5)
        XCTAssertEqual(q.currentCounts.sent, 0); XCTAssertEqual(q.currentCounts.dropped, 1)
    }

    /// No broker at start: not an error; the publisher keeps trying and connects when it comes.
    func testBrokerThatComesLater() throws {
        let port = try freePort()
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtt://127.0.0.1:\(port)/t5"))
        let t0 = Date()
        guard case .notYet = p.waitForConnection(timeout: 2) else { return XCTFail("nothing listens yet") }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2.5)
        for i in 0..<5 { p.publish("frames", Array("\(i)".utf8)) }
        let b = try broker(port: port)
        let sub = try TestSubscriber(port: b.port, topic: "t5/#")
        let deadline = Date(timeIntervalSinceNow: 20)
        while !p.currentCounts.connected && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(p.currentCounts.connected)
        p.close(timeout: 5)
        XCTAssertTrue(sub.wait(for: 5, on: "t5/frames", timeout: 5), "the messages queued before the broker came went out")
    }

    /// A connection that dies without a DISCONNECT (a crash, a pulled cable): the broker publishes
    /// the last will, `offline`, and the publisher reconnects and says `online` again.
    func testLastWillOnALostConnection() throws {
        let b = try broker()
        let sub = try TestSubscriber(port: b.port, topic: "t6/status")
        let p = try MQTTPublisher(target: PublishTarget(url: "mqtt://127.0.0.1:\(b.port)/t6"))
        XCTAssertEqual(p.waitForConnection(timeout: 5), .connected)
        XCTAssertTrue(sub.wait(for: 1, on: "t6/status", timeout: 5))
        p.dropConnectionForTesting()
        XCTAssertTrue(sub.wait(for: 3, on: "t6/status", timeout: 15))
        XCTAssertEqual(Array(payloads(sub, "t6/status").prefix(3)), ["online", "offline", "online"])
        p.close(timeout: 2)
    }
}
