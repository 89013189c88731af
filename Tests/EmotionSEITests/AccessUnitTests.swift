@testable import EmotionSEI
import XCTest
import FaceAnalysis

/// NAL units and SEI over hand-built access units: every byte placed is checked where the two
/// codecs and two framings put it. `SEIElementTests` (GstFERTests) runs the same code on real
/// x264enc/x265enc output and has GStreamer's own h264parse/h265parse read what it writes.
final class AccessUnitTests: XCTestCase {
    let uuid = EmotionPayload.uuid

    /// An H.264 access unit: AUD, SPS, PPS, a SEI (buffering period), an IDR slice whose payload
    /// holds bytes that needed emulation prevention, then a non-IDR slice.
    func h264Units() -> [[UInt8]] {
        [[0x09, 0xF0], [0x67, 0x42, 0x00, 0x1E, 0x95], [0x68, 0xCE, 0x38, 0x80], [0x06, 0x00, 0x01, 0xC0, 0x80],
         [0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01, 0x21], [0x41, 0x9A, 0x00, 0x00, 0x03, 0x00, 0x10]]
    }

    func byteStream(_ units: [[UInt8]], shortFirst: Bool = false) -> [UInt8] {
        let au = AccessUnit.framed(units, framing: .byteStream)
        return shortFirst ? Array(au.dropFirst()) : au   // 00 00 01 before the first unit
    }

    func lengthPrefixed(_ units: [[UInt8]], size n: Int) -> [UInt8] { AccessUnit.framed(units, framing: .lengthPrefixed(n)) }

    func units(_ au: [UInt8], _ codec: VideoCodec, _ framing: NALFraming) throws -> [[UInt8]] {
        try au.withUnsafeBytes { raw in try AccessUnit.nalUnits(raw, codec: codec, framing: framing).map { Array(au[$0.range]) } }
    }

    func testByteStreamSplitsAtThreeAndFourByteStartCodes() throws {
        let au = byteStream(h264Units(), shortFirst: true) + [0, 0]   // trailing zero bytes belong to no NAL
        XCTAssertEqual(try units(au, .h264, .byteStream), h264Units())
        let types = try au.withUnsafeBytes { try AccessUnit.nalUnits($0, codec: .h264, framing: .byteStream).map(\.type) }
        XCTAssertEqual(types, [9, 7, 8, 6, 5, 1])
        XCTAssertThrowsError(try units([0x65, 0x88, 0x84], .h264, .byteStream)) { XCTAssertEqual($0 as? AccessUnitError, .noStartCode) }
        XCTAssertEqual(try units([], .h264, .byteStream), [])
    }

    func testLengthPrefixedSplitsAndRefusesSizesPastTheEnd() throws {
        for n in [1, 2, 4] { XCTAssertEqual(try units(lengthPrefixed(h264Units(), size: n), .h264, .lengthPrefixed(n)), h264Units()) }
        var au = lengthPrefixed(h264Units(), size: 4)
        au.removeLast()
        XCTAssertThrowsError(try units(au, .h264, .lengthPrefixed(4))) { XCTAssertEqual($0 as? AccessUnitError, .truncated(at: 44)) }
    }

    func testCodecDataGivesTheSizeFieldLength() {
        var avcC = [UInt8](repeating: 0, count: 7); avcC[4] = 0xFF   // lengthSizeMinusOne = 3
        XCTAssertEqual(NALFraming.lengthSize(codecData: avcC, codec: .h264), 4)
        avcC[4] = 0xFD
        XCTAssertEqual(NALFraming.lengthSize(codecData: avcC, codec: .h264), 2)
        var hvcC = [UInt8](repeating: 0, count: 23); hvcC[21] = 0x0F
        XCTAssertEqual(NALFraming.lengthSize(codecData: hvcC, codec: .h265), 4)
        XCTAssertNil(NALFraming.lengthSize(codecData: [1, 2, 3], codec: .h264))
        avcC[4] = 0xFE   // 3 bytes: not a size ISO 14496-15 allows
        XCTAssertNil(NALFraming.lengthSize(codecData: avcC, codec: .h264))
    }

    func testEscapeInsertsPreventionBytesAndUnescapeUndoesThem() {
        XCTAssertEqual(AccessUnit.escape([0, 0, 0, 0, 1, 0, 0, 4, 0, 0, 3]), [0, 0, 3, 0, 0, 3, 1, 0, 0, 4, 0, 0, 3, 3])
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let rbsp = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...4, using: &rng) }
            let ebsp = AccessUnit.escape(rbsp)
            XCTAssertEqual(AccessUnit.unescape(ebsp), rbsp)
            for i in 2..<max(2, ebsp.count) where ebsp[i - 2] == 0 && ebsp[i - 1] == 0 { XCTAssertGreaterThanOrEqual(ebsp[i], 3) }
        }
    }

    func testSEIGoesBeforeTheFirstSliceAfterTheSEIAlreadyThere() throws {
        let data = Array("{\"v\":1,\"faces\":[]}".utf8)
        for framing in [NALFraming.byteStream, .lengthPrefixed(4), .lengthPrefixed(2)] {
            let au = framing == .byteStream ? byteStream(h264Units()) : lengthPrefixed(h264Units(), size: framing == .lengthPrefixed(2) ? 2 : 4)
            let out = try XCTUnwrap(try au.withUnsafeBytes { try AccessUnit.inserting(uuid: uuid, data: data, into: $0, codec: .h264, framing: framing) })
            let nals = try units(out, .h264, framing)
            XCTAssertEqual(nals.count, 7)
            XCTAssertEqual(Array(nals[0..<4]), Array(h264Units()[0..<4]), "\(framing)")
            XCTAssertEqual(Array(nals[5...]), Array(h264Units()[4...]), "\(framing)")
            // header 6, payload type 5, size 16 + data, UUID, data, rbsp trailing bits
            XCTAssertEqual(nals[4], [6, 5, UInt8(16 + data.count)] + uuid + data + [0x80], "\(framing)")
            XCTAssertEqual(try out.withUnsafeBytes { try AccessUnit.userData(uuid: uuid, in: $0, codec: .h264, framing: framing) }, [data])
        }
    }

    func testH265SEITakesTheSlicesLayerAndTemporalID() throws {
        // VPS 32, SPS 33, PPS 34, a TRAIL_R slice (type 1) with nuh_temporal_id_plus1 = 3
        let units: [[UInt8]] = [[0x40, 0x01, 0x0C], [0x42, 0x01, 0x01], [0x44, 0x01, 0xC1], [0x02, 0x03, 0xAF, 0x00, 0x00, 0x03, 0x02]]
        let out = try XCTUnwrap(try byteStream(units).withUnsafeBytes {
            try AccessUnit.inserting(uuid: uuid, data: [0x7B, 0x7D], into: $0, codec: .h265, framing: .byteStream)
        })
        let nals = try self.units(out, .h265, .byteStream)
        XCTAssertEqual(nals.map { ($0[0] >> 1) & 0x3F }, [32, 33, 34, 39, 1])
        XCTAssertEqual(Array(nals[3].prefix(2)), [39 << 1, 0x03])
        XCTAssertEqual(try out.withUnsafeBytes { try AccessUnit.userData(uuid: uuid, in: $0, codec: .h265, framing: .byteStream) }, [[0x7B, 0x7D]])
    }

    func testLongPayloadsUseExtendedSizesAndEscapedUUIDs() throws {
        for size in [238, 239, 300, 70_000] {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 7 == 0 ? 0 : $0) }   // zeros in it: escaped
            let zeroUUID = [UInt8](repeating: 0, count: 16)
            for id in [uuid, zeroUUID] {
                let out = try XCTUnwrap(try byteStream(h264Units()).withUnsafeBytes {
                    try AccessUnit.inserting(uuid: id, data: data, into: $0, codec: .h264, framing: .byteStream)
                })
                XCTAssertEqual(try out.withUnsafeBytes { try AccessUnit.userData(uuid: id, in: $0, codec: .h264, framing: .byteStream) }, [data])
                XCTAssertEqual(try units(out, .h264, .byteStream).count, 7, "no start code emulated inside the SEI")
            }
        }
    }

    func testNothingIsInsertedWithoutASliceOrWhereTheSizeFieldIsTooSmall() throws {
        let headers = byteStream(Array(h264Units()[0..<3]))
        XCTAssertNil(try headers.withUnsafeBytes { try AccessUnit.inserting(uuid: uuid, data: [1], into: $0, codec: .h264, framing: .byteStream) })
        let au = lengthPrefixed(h264Units(), size: 1)
        XCTAssertNil(try au.withUnsafeBytes {
            try AccessUnit.inserting(uuid: uuid, data: [UInt8](repeating: 65, count: 300), into: $0, codec: .h264, framing: .lengthPrefixed(1))
        })
        XCTAssertNotNil(try au.withUnsafeBytes { try AccessUnit.inserting(uuid: uuid, data: [65], into: $0, codec: .h264, framing: .lengthPrefixed(1)) })
    }

    func testOtherUUIDsAndMalformedSEIAreSkipped() throws {
        var other = uuid; other[0] ^= 1
        // a SEI with another UUID, then one whose declared size runs past its end, then ours
        let foreign = [6] + AccessUnit.escape(AccessUnit.seiMessage(type: 5, payload: other + [1, 2]) + [0x80])
        let broken: [UInt8] = [6, 5, 200] + uuid + [1, 2, 3]
        let ours = [6] + AccessUnit.escape(AccessUnit.seiMessage(type: 5, payload: uuid + [9]) + [0x80])
        let au = byteStream([foreign, broken, ours, [0x65, 0x88]])
        XCTAssertEqual(try au.withUnsafeBytes { try AccessUnit.userData(uuid: uuid, in: $0, codec: .h264, framing: .byteStream) }, [[9]])
        // random bytes never crash the reader
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let junk = [0, 0, 1, 6] + (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? junk.withUnsafeBytes { try AccessUnit.userData(uuid: uuid, in: $0, codec: .h264, framing: .byteStream) }
            _ = try? junk.withUnsafeBytes { try AccessUnit.userData(uuid: uuid, in: $0, codec: .h265, framing: .lengthPrefixed(2)) }
        }
    }
}

final class EmotionPayloadTests: XCTestCase {
    let faces = [
        EmotionFace(id: 3, x: 380, y: 272, width: 140, height: 140, emotion: "happy", labelID: 3, confidence: 0.91234,
                    probabilities: [0.0041, 0, 0.0109, 0.91234, 0.02, 0.013, 0.0396]),
        EmotionFace(id: 12, x: 0, y: 5, width: 48, height: 50, emotion: "say \"hi\"\n", labelID: 6, confidence: 1, probabilities: []),
    ]

    func testEncodesCompactJSONWithThreeDecimals() {
        let text = String(decoding: EmotionPayload.encode(Array(faces.prefix(1))), as: UTF8.self)
        XCTAssertEqual(text, #"{"v":1,"faces":[{"id":3,"x":380,"y":272,"width":140,"height":140,"emotion":"happy","label_id":3,"#
                       + #""confidence":0.912,"probabilities":[0.004,0,0.011,0.912,0.02,0.013,0.04]}]}"#)
        XCTAssertEqual(String(decoding: EmotionPayload.encode([]), as: UTF8.self), #"{"v":1,"faces":[]}"#)
        XCTAssertFalse(String(decoding: EmotionPayload.encode(faces, probabilities: false), as: UTF8.self).contains("probabilities"))
        XCTAssertEqual(["0", "1", "0.5", "0.012", "-0.25", "0"], [0.0, 1.0, 0.5, 0.0123, -0.25, .nan].map(EmotionPayload.decimal3))
    }

    func testRoundTripsToThreeDecimals() throws {
        let back = try EmotionPayload.decode(EmotionPayload.encode(faces))
        XCTAssertEqual(back.count, 2)
        XCTAssertEqual(back[0].id, 3); XCTAssertEqual(back[0].x, 380); XCTAssertEqual(back[0].height, 140)
        XCTAssertEqual(back[0].emotion, "happy"); XCTAssertEqual(back[0].labelID, 3)
        XCTAssertEqual(back[0].confidence, 0.912)
        XCTAssertEqual(back[0].probabilities, [0.004, 0, 0.011, 0.912, 0.02, 0.013, 0.04])
        XCTAssertEqual(back[1].emotion, "say \"hi\"\n")
        XCTAssertEqual(back[1].probabilities, [])
    }

    func testMalformedPayloadsSayWhatIsWrong() {
        func reason(_ text: String) -> String {
            do { _ = try EmotionPayload.decode(Array(text.utf8)); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(reason("{\"v\":1,"), "malformed emotion SEI payload: not JSON (7 bytes)")
        XCTAssertEqual(reason("[1]"), "malformed emotion SEI payload: not a JSON object")
        XCTAssertEqual(reason("{\"v\":2,\"faces\":[]}"), "malformed emotion SEI payload: version 2; this build reads version 1")
        XCTAssertEqual(reason("{\"v\":1}"), "malformed emotion SEI payload: no \"faces\" list")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1,"x":1,"y":1,"width":4,"height":4,"emotion":"sad","label_id":4}]}"#),
                       "malformed emotion SEI payload: face 0: \"confidence\" is not a number")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1.5,"x":1,"y":1,"width":4,"height":4,"emotion":"sad","label_id":4,"confidence":1}]}"#),
                       "malformed emotion SEI payload: face 0: \"id\" is not an integer")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1,"x":1,"y":1,"width":0,"height":4,"emotion":"sad","label_id":4,"confidence":1}]}"#),
                       "malformed emotion SEI payload: face 0: negative or empty box, or negative label_id")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1,"x":1,"y":1,"width":4,"height":4,"emotion":"sad","label_id":4,"confidence":1,"probabilities":"x"}]}"#),
                       "malformed emotion SEI payload: face 0: \"probabilities\" is not a list of numbers")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1,"x":99999999999,"y":1,"width":4,"height":4,"emotion":"sad","label_id":4,"confidence":1}]}"#),
                       "malformed emotion SEI payload: face 0: box beyond 65536 pixels or label_id beyond 64")
        XCTAssertEqual(reason(#"{"v":1,"faces":[{"id":1,"x":1,"y":1,"width":4,"height":4,"emotion":"sad","label_id":4,"confidence":1e300}]}"#),
                       "malformed emotion SEI payload: face 0: a confidence or probability outside 0-1, or over 64 probabilities")
        let long = String(repeating: "1", count: 33)
        for tc in ["5", #""10:00:00:00\"x""#, "\"\(long)\"", #""ab:cd""#, #""""#] {
            XCTAssertEqual(reason(#"{"v":1,"timecode":"# + tc + #","faces":[]}"#),
                           "malformed emotion SEI payload: \"timecode\" is not a time code (digits and :;., up to 32 characters)", tc)
        }
    }

    /// The sender's SMPTE time code rides beside the faces when its frame had one, drop-frame
    /// ";" included; without one the payload is as before, and a reader of it sees none.
    func testTimecodeRoundTripsWhenThereIsOne() throws {
        let text = String(decoding: EmotionPayload.encode(Array(faces.prefix(1)), timecode: "10:00:59;29"), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix(#"{"v":1,"timecode":"10:00:59;29","faces":[{"id":3,"#), text)
        let back = try EmotionPayload.decodeFrame(Array(text.utf8))
        XCTAssertEqual(back.timecode, "10:00:59;29")
        XCTAssertEqual(back.faces, try EmotionPayload.decode(EmotionPayload.encode(Array(faces.prefix(1)))))
        XCTAssertNil(try EmotionPayload.decodeFrame(EmotionPayload.encode(faces)).timecode)
        XCTAssertEqual(try EmotionPayload.decodeFrame(EmotionPayload.encode([], timecode: "23:59:59:24.1")).timecode, "23:59:59:24.1")
        // what is not a time code is not written
        XCTAssertEqual(String(decoding: EmotionPayload.encode([], timecode: #"10:00","x"#), as: UTF8.self), #"{"v":1,"faces":[]}"#)
    }
}
