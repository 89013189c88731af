import Foundation
import CZlib
import CTurboJPEG

/// An 8-bit image, grey (1 channel) or RGB (3 channels), row-major.
public struct Image: Sendable {
    public var width: Int, height: Int, channels: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// Luma (BT.601) of an RGB image, or the image itself when grey.
    public var grey: [UInt8] {
        if channels == 1 { return pixels }
        var out = [UInt8](repeating: 0, count: width * height)
        for i in 0..<(width * height) {
            out[i] = Image.luma(pixels[i * channels], pixels[i * channels + 1], pixels[i * channels + 2])
        }
        return out
    }

    /// BT.601 luma of an RGB pixel in 8-bit integer arithmetic: (77 R + 150 G + 29 B + 128) >> 8.
    /// Every grey picture GstFER analyses is made with this (ferfilter's RGB frames, pictures sent
    /// to `fer serve`, browser camera frames, the `fer` tool), so all of them see the same face
    /// for the same pixels.
    @inlinable @inline(__always)
    public static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (77 &* Int(r) &+ 150 &* Int(g) &+ 29 &* Int(b) &+ 128) &>> 8)
    }

    /// Bilinear resize of a grey image to `w`x`h`.
    public static func resizeGrey(_ src: [UInt8], width: Int, height: Int, to w: Int, _ h: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: w * h)
        let sx = Float(width) / Float(w), sy = Float(height) / Float(h)
        for y in 0..<h { for x in 0..<w {
            let fx = max(0, (Float(x) + 0.5) * sx - 0.5), fy = max(0, (Float(y) + 0.5) * sy - 0.5)
            let x0 = min(Int(fx), width - 1), y0 = min(Int(fy), height - 1)
            let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
            let ax = fx - Float(x0), ay = fy - Float(y0)
            let v = (Float(src[y0 * width + x0]) * (1 - ax) + Float(src[y0 * width + x1]) * ax) * (1 - ay)
                + (Float(src[y1 * width + x0]) * (1 - ax) + Float(src[y1 * width + x1]) * ax) * ay
            out[y * w + x] = UInt8(min(255, max(0, v.rounded())))
        } }
        return out
    }
}

public enum ImageError: Error, CustomStringConvertible {
    case unsupported(String, String)
    case corrupt(String, String)
    public var description: String {
        switch self {
        case .unsupported(let f, let w): return "\(f): unsupported image (\(w)); use JPEG, PNG or PGM"
        case .corrupt(let f, let w): return "\(f): corrupt image (\(w))"
        }
    }
}

/// Minimal PNG (8-bit grey, grey+alpha, RGB, RGBA, palette; non-interlaced) and PGM/PPM codecs.
public enum ImageCodec {
    /// `colour`: a colour JPEG decodes to RGB (three channels) instead of grey.
    public static func read(_ path: String, colour: Bool = false) throws -> Image {
        let d: [UInt8]
        do { d = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch { throw ImageError.corrupt(path, "cannot read: \(error.localizedDescription)") }
        return try decode(d, name: path, colour: colour)
    }

    /// Decodes JPEG, PNG or PGM/PPM bytes (`name` says where they came from in errors). Images of
    /// more than `maxPixels` pixels are refused before any pixel memory is allocated.
    public static func decode(_ d: [UInt8], name: String = "<memory>", maxPixels: Int = 1 << 26, colour: Bool = false) throws -> Image {
        if d.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try decodePNG(d, file: name, maxPixels: maxPixels) }
        if d.count > 2, d[0] == 0x50, d[1] == 0x35 || d[1] == 0x36 { return try decodePNM(d, file: name, maxPixels: maxPixels) }
        if d.starts(with: [0xFF, 0xD8]) { return try decodeJPEG(d, file: name, maxPixels: maxPixels, colour: colour) }
        throw ImageError.unsupported(name, d.isEmpty ? "empty" : "unknown signature")
    }

    static func checkSize(_ w: Int, _ h: Int, _ maxPixels: Int, _ file: String) throws {
        guard w.multipliedReportingOverflow(by: h).partialValue <= maxPixels else {
            throw ImageError.unsupported(file, "\(w)x\(h) is more than \(maxPixels) pixels")
        }
    }

    /// Decodes a JPEG to grey (one channel) with TurboJPEG, or a colour one to RGB with `colour`.
    static func decodeJPEG(_ d: [UInt8], file: String, maxPixels: Int = 1 << 26, colour: Bool = false) throws -> Image {
        guard let h = tjInitDecompress() else { throw ImageError.corrupt(file, "cannot start the JPEG decoder") }
        defer { tjDestroy(h) }
        var w: Int32 = 0, hh: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        let rc = d.withUnsafeBufferPointer { tjDecompressHeader3(h, $0.baseAddress, UInt($0.count), &w, &hh, &sub, &cs) }
        guard rc == 0, w > 0, hh > 0, w < 1 << 15, hh < 1 << 15 else {
            throw ImageError.corrupt(file, String(cString: tjGetErrorStr2(h)))
        }
        try checkSize(Int(w), Int(hh), maxPixels, file)
        let channels = colour && cs != Int32(TJCS_GRAY.rawValue) ? 3 : 1
        var out = [UInt8](repeating: 0, count: Int(w) * Int(hh) * channels)
        let format = channels == 3 ? TJPF_RGB : TJPF_GRAY
        let rc2 = d.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            tjDecompress2(h, src.baseAddress, UInt(src.count), dst.baseAddress, w, 0, hh, Int32(format.rawValue), 0)
        } }
        guard rc2 == 0 else { throw ImageError.corrupt(file, String(cString: tjGetErrorStr2(h))) }
        return Image(width: Int(w), height: Int(hh), channels: channels, pixels: out)
    }

    /// Encodes a grey or RGB image as baseline JPEG with TurboJPEG.
    public static func encodeJPEG(_ img: Image, quality: Int = 85) throws -> Data {
        guard let h = tjInitCompress() else { throw ImageError.corrupt("<memory>", "cannot start the JPEG encoder") }
        defer { tjDestroy(h) }
        var buf: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let grey = img.channels == 1
        let rc = img.pixels.withUnsafeBufferPointer { p in
            tjCompress2(h, p.baseAddress, Int32(img.width), 0, Int32(img.height),
                        Int32(grey ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue), &buf, &size,
                        Int32(grey ? TJSAMP_GRAY.rawValue : TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { if let buf { tjFree(buf) } }
        guard rc == 0, let buf else { throw ImageError.corrupt("<memory>", String(cString: tjGetErrorStr2(h))) }
        return Data(bytes: buf, count: Int(size))
    }

    static func decodePNM(_ d: [UInt8], file: String, maxPixels: Int = 1 << 26) throws -> Image {
        var pos = 2
        func token() throws -> Int {
            while pos < d.count {
                if d[pos] == 35 { while pos < d.count && d[pos] != 10 { pos += 1 } } else if d[pos] <= 32 { pos += 1 } else { break }
            }
            var v = 0, n = 0
            while pos < d.count && d[pos] >= 48 && d[pos] <= 57 && n < 9 { v = v * 10 + Int(d[pos] - 48); pos += 1; n += 1 }
            guard n > 0 else { throw ImageError.corrupt(file, "bad PNM header") }
            return v
        }
        let ch = d[1] == 0x35 ? 1 : 3
        let w = try token(), h = try token(), mx = try token()
        pos += 1
        guard w > 0, h > 0, w < 1 << 15, h < 1 << 15 else { throw ImageError.corrupt(file, "PNM size \(w)x\(h)") }
        try checkSize(w, h, maxPixels, file)
        guard mx == 255, pos + w * h * ch <= d.count else { throw ImageError.corrupt(file, "PNM size or depth") }
        return Image(width: w, height: h, channels: ch, pixels: Array(d[pos..<(pos + w * h * ch)]))
    }

    static func decodePNG(_ d: [UInt8], file: String, maxPixels: Int = 1 << 26) throws -> Image {
        var pos = 8
        var w = 0, h = 0, depth = 0, ctype = 0, interlace = 0
        var idat: [UInt8] = [], palette: [UInt8] = []
        func be32(_ p: Int) -> Int { Int(d[p]) << 24 | Int(d[p + 1]) << 16 | Int(d[p + 2]) << 8 | Int(d[p + 3]) }
        while pos + 12 <= d.count {
            let len = be32(pos), type = String(d[(pos + 4)..<(pos + 8)].map { $0 >= 0x20 && $0 < 0x7f ? Character(UnicodeScalar($0)) : "?" })
            guard len >= 0, pos + 12 + len <= d.count else { throw ImageError.corrupt(file, "truncated \(type) chunk") }
            let body = Array(d[(pos + 8)..<(pos + 8 + len)])
            switch type {
            case "IHDR":
                guard len == 13 else { throw ImageError.corrupt(file, "IHDR") }
                w = be32(pos + 8); h = be32(pos + 12); depth = Int(body[8]); ctype = Int(body[9]); interlace = Int(body[12])
            case "PLTE": palette = body
            case "IDAT": idat += body
            default: break
            }
            pos += 12 + len
            if type == "IEND" { break }
        }
        guard w > 0, h > 0, w < 1 << 15, h < 1 << 15 else { throw ImageError.corrupt(file, "size \(w)x\(h)") }
        try checkSize(w, h, maxPixels, file)
        guard depth == 8, interlace == 0 else { throw ImageError.unsupported(file, "PNG depth \(depth), interlace \(interlace)") }
        let bpp: Int
        switch ctype { case 0: bpp = 1; case 2: bpp = 3; case 3: bpp = 1; case 4: bpp = 2; case 6: bpp = 4
        default: throw ImageError.unsupported(file, "PNG colour type \(ctype)") }
        let stride = w * bpp
        var raw = [UInt8](repeating: 0, count: (stride + 1) * h)
        var destLen = uLongf(raw.count)
        let rc = raw.withUnsafeMutableBufferPointer { r in idat.withUnsafeBufferPointer { s in uncompress(r.baseAddress, &destLen, s.baseAddress, uLong(s.count)) } }
        guard rc == Z_OK, Int(destLen) == raw.count else { throw ImageError.corrupt(file, "PNG data does not inflate to \(w)x\(h)") }
        var img = [UInt8](repeating: 0, count: stride * h)
        for y in 0..<h {
            let f = raw[y * (stride + 1)], src = y * (stride + 1) + 1
            for x in 0..<stride {
                let a = x >= bpp ? Int(img[y * stride + x - bpp]) : 0
                let b = y > 0 ? Int(img[(y - 1) * stride + x]) : 0
                let c = (x >= bpp && y > 0) ? Int(img[(y - 1) * stride + x - bpp]) : 0
                let v = Int(raw[src + x])
                let out: Int
                switch f {
                case 0: out = v
                case 1: out = v + a
                case 2: out = v + b
                case 3: out = v + (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    out = v + ((pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c))
                default: throw ImageError.corrupt(file, "PNG filter \(f)")
                }
                img[y * stride + x] = UInt8(truncatingIfNeeded: out)
            }
        }
        switch ctype {
        case 0: return Image(width: w, height: h, channels: 1, pixels: img)
        case 4: return Image(width: w, height: h, channels: 1, pixels: stride2(img, every: 2))
        case 2: return Image(width: w, height: h, channels: 3, pixels: img)
        case 6:
            var rgb = [UInt8](); rgb.reserveCapacity(w * h * 3)
            for i in 0..<(w * h) { rgb += img[(i * 4)..<(i * 4 + 3)] }
            return Image(width: w, height: h, channels: 3, pixels: rgb)
        default:
            var rgb = [UInt8](repeating: 0, count: w * h * 3)
            for i in 0..<(w * h) {
                let p = Int(img[i]) * 3
                guard p + 2 < palette.count else { throw ImageError.corrupt(file, "palette index") }
                rgb[i * 3] = palette[p]; rgb[i * 3 + 1] = palette[p + 1]; rgb[i * 3 + 2] = palette[p + 2]
            }
            return Image(width: w, height: h, channels: 3, pixels: rgb)
        }
    }

    static func stride2(_ a: [UInt8], every: Int) -> [UInt8] { stride(from: 0, to: a.count, by: every).map { a[$0] } }

    /// Encodes a grey or RGB image as PNG.
    public static func encodePNG(_ img: Image) -> Data {
        let stride = img.width * img.channels
        var raw = [UInt8](); raw.reserveCapacity((stride + 1) * img.height)
        for y in 0..<img.height { raw.append(0); raw += img.pixels[(y * stride)..<((y + 1) * stride)] }
        var bound = compressBound(uLong(raw.count))
        var comp = [UInt8](repeating: 0, count: Int(bound))
        _ = comp.withUnsafeMutableBufferPointer { c in raw.withUnsafeBufferPointer { r in compress2(c.baseAddress, &bound, r.baseAddress, uLong(r.count), 6) } }
        comp.removeSubrange(Int(bound)...)
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func chunk(_ type: String, _ body: [UInt8]) {
            var be = [UInt8](); for s in [24, 16, 8, 0] { be.append(UInt8(body.count >> s & 0xff)) }
            out.append(contentsOf: be)
            let tb = Array(type.utf8) + body
            out.append(contentsOf: tb)
            let c = tb.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
            out.append(contentsOf: [UInt8(c >> 24), UInt8(c >> 16 & 0xff), UInt8(c >> 8 & 0xff), UInt8(c & 0xff)])
        }
        var ihdr = [UInt8]()
        for v in [img.width, img.height] { for s in [24, 16, 8, 0] { ihdr.append(UInt8(v >> s & 0xff)) } }
        ihdr += [8, img.channels == 1 ? 0 : 2, 0, 0, 0]
        chunk("IHDR", ihdr); chunk("IDAT", comp); chunk("IEND", [])
        return out
    }
}
