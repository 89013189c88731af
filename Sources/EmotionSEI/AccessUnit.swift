/// H.264 and H.265 access units as NAL units: finding them, and writing and reading SEI
/// "user data unregistered" messages (payload type 5: a 16-byte UUID, then any bytes), which
/// every decoder skips and every muxer and payloader (MP4, MPEG-TS, Matroska, RTP) carries.

/// The codec of an access unit: it decides the NAL header and the type numbers.
public enum VideoCodec: Sendable, Equatable {
    case h264, h265

    /// From a caps name, `video/x-h264` or `video/x-h265`.
    public init?(capsName: String) {
        switch capsName {
        case "video/x-h264": self = .h264
        case "video/x-h265": self = .h265
        default: return nil
        }
    }

    var headerSize: Int { self == .h264 ? 1 : 2 }

    func type(ofHeader b: UInt8) -> Int { self == .h264 ? Int(b & 0x1F) : Int((b >> 1) & 0x3F) }

    /// Slices: the NAL units that hold the picture (H.264 1-5; H.265 0-31).
    func isVCL(_ type: Int) -> Bool { self == .h264 ? (1...5).contains(type) : type < 32 }

    /// SEI NAL units (H.264 6; H.265 39 prefix, 40 suffix).
    func isSEI(_ type: Int) -> Bool { self == .h264 ? type == 6 : (type == 39 || type == 40) }
}

/// How the NAL units of an access unit are delimited.
public enum NALFraming: Sendable, Equatable {
    /// Annex B: each NAL unit after a 00 00 01 or 00 00 00 01 start code (`stream-format=byte-stream`).
    case byteStream
    /// Each NAL unit after its size, big-endian, in 1, 2 or 4 bytes (`avc`, `avc3`, `hvc1`, `hev1`;
    /// the size's length is in the caps' `codec_data`).
    case lengthPrefixed(Int)

    /// The size field's length from `codec_data` (avcC: byte 4, hvcC: byte 21, low two bits, plus one).
    public static func lengthSize(codecData: [UInt8], codec: VideoCodec) -> Int? {
        let at = codec == .h264 ? 4 : 21
        guard codecData.count > at else { return nil }
        let n = Int(codecData[at] & 0x03) + 1
        return n == 3 ? nil : n
    }
}

/// One NAL unit of an access unit.
public struct NALUnit: Sendable, Equatable {
    /// Where its start code or size field begins.
    public var prefixStart: Int
    /// Its bytes, header first (emulation prevention bytes included).
    public var range: Range<Int>
    /// nal_unit_type.
    public var type: Int
}

public enum AccessUnitError: Error, Equatable, CustomStringConvertible {
    case truncated(at: Int)
    case noStartCode

    public var description: String {
        switch self {
        case .truncated(let at): return "a NAL unit's size at byte \(at) runs past the end of the buffer"
        case .noStartCode: return "no start code (00 00 01) in a byte-stream buffer"
        }
    }
}

public enum AccessUnit {
    /// The NAL units of `au` in order.
    public static func nalUnits(_ au: UnsafeRawBufferPointer, codec: VideoCodec, framing: NALFraming) throws -> [NALUnit] {
        let b = au.bindMemory(to: UInt8.self)
        var out: [NALUnit] = []
        switch framing {
        case .lengthPrefixed(let n):
            var i = 0
            while i < b.count {
                guard i + n <= b.count else { throw AccessUnitError.truncated(at: i) }
                var size = 0
                for k in 0..<n { size = size << 8 | Int(b[i + k]) }
                let start = i + n
                guard start + size <= b.count else { throw AccessUnitError.truncated(at: i) }
                if size >= codec.headerSize {
                    out.append(NALUnit(prefixStart: i, range: start..<(start + size), type: codec.type(ofHeader: b[start])))
                }
                i = start + size
            }
        case .byteStream:
            // start codes: 00 00 01, the 00 before it (a 4-byte start code) belonging to it
            var starts: [(prefix: Int, payload: Int)] = []
            var i = 0
            while i + 2 < b.count {
                if b[i + 2] > 1 { i += 3; continue }
                if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
                    starts.append((i > 0 && b[i - 1] == 0 ? i - 1 : i, i + 3))
                    i += 3
                } else {
                    i += 1
                }
            }
            if starts.isEmpty {
                if b.isEmpty { return [] }
                throw AccessUnitError.noStartCode
            }
            for (k, s) in starts.enumerated() {
                var end = k + 1 < starts.count ? starts[k + 1].prefix : b.count
                while end > s.payload && b[end - 1] == 0 { end -= 1 }   // trailing_zero_8bits
                if end - s.payload >= codec.headerSize {
                    out.append(NALUnit(prefixStart: s.prefix, range: s.payload..<end, type: codec.type(ofHeader: b[s.payload])))
                }
            }
        }
        return out
    }

    /// `au` with a SEI NAL unit holding one user-data-unregistered message (`uuid` then `data`)
    /// placed before its first slice, where SEI belongs (after any SEI already there, so a
    /// buffering-period message stays first). Nil when `au` has no slice, or when the message does
    /// not fit the stream's size field.
    public static func inserting(uuid: [UInt8], data: [UInt8], into au: UnsafeRawBufferPointer, codec: VideoCodec,
                                 framing: NALFraming) throws -> [UInt8]? {
        inserting(uuid: uuid, data: data, into: au, codec: codec, framing: framing,
                  nals: try nalUnits(au, codec: codec, framing: framing))
    }

    /// The same with `au`'s NAL units already split (`nalUnits`), for a caller that reads them too.
    public static func inserting(uuid: [UInt8], data: [UInt8], into au: UnsafeRawBufferPointer, codec: VideoCodec,
                                 framing: NALFraming, nals: [NALUnit]) -> [UInt8]? {
        precondition(uuid.count == 16, "a user-data-unregistered UUID is 16 bytes")
        guard let slice = nals.first(where: { codec.isVCL($0.type) }) else { return nil }
        let b = au.bindMemory(to: UInt8.self)
        // H.265: the SEI's nuh_layer_id and TemporalId are those of the access unit's pictures
        let header: [UInt8] = codec == .h264 ? [6] : [39 << 1 | (b[slice.range.lowerBound] & 1), b[slice.range.lowerBound + 1]]
        let nal = header + escape(seiMessage(type: 5, payload: uuid + data) + [0x80])
        guard let prefix = prefix(size: nal.count, framing: framing) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(au.count + nal.count + prefix.count)
        out.append(contentsOf: b[0..<slice.prefixStart])
        out.append(contentsOf: prefix)
        out.append(contentsOf: nal)
        out.append(contentsOf: b[slice.prefixStart...])
        return out
    }

    /// What goes before a NAL unit of `size` bytes: a 4-byte start code, or its size in the
    /// stream's field; nil when the size does not fit that field.
    static func prefix(size: Int, framing: NALFraming) -> [UInt8]? {
        switch framing {
        case .byteStream:
            return [0, 0, 0, 1]
        case .lengthPrefixed(let n):
            guard n == 4 || size < 1 << (8 * n) else { return nil }
            return (0..<n).reversed().map { UInt8(truncatingIfNeeded: size >> (8 * $0)) }
        }
    }

    /// NAL units (header first) laid out as one access unit in `framing` (units too long for the
    /// size field are left out).
    public static func framed(_ units: [[UInt8]], framing: NALFraming) -> [UInt8] {
        units.flatMap { u in prefix(size: u.count, framing: framing).map { $0 + u } ?? [] }
    }

    /// The data after `uuid` of every user-data-unregistered message with that UUID in `au`'s SEI
    /// NAL units, in order. Malformed SEI is skipped, never trusted past its end.
    public static func userData(uuid: [UInt8], in au: UnsafeRawBufferPointer, codec: VideoCodec, framing: NALFraming) throws -> [[UInt8]] {
        userData(uuid: uuid, in: au, codec: codec, nals: try nalUnits(au, codec: codec, framing: framing))
    }

    /// The same with `au`'s NAL units already split (`nalUnits`).
    public static func userData(uuid: [UInt8], in au: UnsafeRawBufferPointer, codec: VideoCodec, nals: [NALUnit]) -> [[UInt8]] {
        let b = au.bindMemory(to: UInt8.self)
        var out: [[UInt8]] = []
        for nal in nals where codec.isSEI(nal.type) {
            let rbsp = unescape(b[(nal.range.lowerBound + codec.headerSize)..<nal.range.upperBound])
            for (type, payload) in seiMessages(rbsp) where type == 5 && payload.count >= 16 && Array(payload.prefix(16)) == uuid {
                out.append(Array(payload.dropFirst(16)))
            }
        }
        return out
    }

    /// sei_message(): payload type and size, each as 0xFF bytes plus a last byte, then the payload.
    static func seiMessage(type: Int, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for var v in [type, payload.count] {
            while v >= 255 { out.append(255); v -= 255 }
            out.append(UInt8(v))
        }
        return out + payload
    }

    /// The messages of a SEI RBSP, up to its trailing bits or the first one that does not fit.
    static func seiMessages(_ rbsp: [UInt8]) -> [(type: Int, payload: ArraySlice<UInt8>)] {
        var out: [(Int, ArraySlice<UInt8>)] = []
        var i = 0
        func number() -> Int? {
            var v = 0
            while i < rbsp.count {
                let byte = rbsp[i]; i += 1
                v += Int(byte)
                if byte != 255 { return v }
            }
            return nil
        }
        while i < rbsp.count - 1 || (i == rbsp.count - 1 && rbsp[i] != 0x80) {
            guard let type = number(), let size = number(), i + size <= rbsp.count else { break }
            out.append((type, rbsp[i..<(i + size)]))
            i += size
        }
        return out
    }

    /// Emulation prevention: a 03 after every two zero bytes that precede a byte of 00-03.
    static func escape(_ rbsp: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rbsp.count + rbsp.count / 64 + 1)
        var zeros = 0
        for v in rbsp {
            if zeros >= 2 && v <= 3 { out.append(3); zeros = 0 }
            out.append(v)
            zeros = v == 0 ? zeros + 1 : 0
        }
        return out
    }

    /// Removes emulation prevention bytes (a 03 after two zero bytes).
    static func unescape<C: Collection>(_ ebsp: C) -> [UInt8] where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(ebsp.count)
        var zeros = 0
        for v in ebsp {
            if zeros >= 2 && v == 3 { zeros = 0; continue }
            out.append(v)
            zeros = v == 0 ? zeros + 1 : 0
        }
        return out
    }
}
