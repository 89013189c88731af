import CGStreamer
import FaceDetect
import FERNet

/// How a raw video format lays out its pixels, for the formats ferfilter accepts.
enum PixelLayout: Equatable {
    case grey                                       // GRAY8
    case planar420(u: Int, v: Int)                  // I420 (u 1, v 2), YV12 (u 2, v 1)
    case semiPlanar420(uFirst: Bool)                // NV12, NV21
    case packed422(y: Int, u: Int, v: Int)          // YUY2 (0, 1, 3), UYVY (1, 0, 2): byte offsets in a 4-byte pair
    case rgb(bytes: Int, r: Int, g: Int, b: Int)    // RGB, BGR, RGBx ... ABGR
    /// 16-bit little-endian samples whose 8 most significant bits are `sample >> shift`:
    /// I420_10LE (planes as I420, 10 bits in the low bits: shift 2) and P010_10LE (as NV12, 10
    /// bits in the high bits: shift 8), what 10-bit decoders give.
    case planar420x16(shift: Int)
    case semiPlanar420x16(shift: Int)
    /// v210, 10-bit 4:2:2 as SDI capture cards deliver it: six pixels in four little-endian 32-bit
    /// words, three 10-bit samples each (Cb0 Y0 Cr0 | Y1 Cb2 Y2 | Cr2 Y3 Cb4 | Y4 Cr4 Y5).
    case v210

    init?(_ f: GstVideoFormat) {
        switch f {
        case GST_VIDEO_FORMAT_GRAY8: self = .grey
        case GST_VIDEO_FORMAT_I420: self = .planar420(u: 1, v: 2)
        case GST_VIDEO_FORMAT_YV12: self = .planar420(u: 2, v: 1)
        case GST_VIDEO_FORMAT_NV12: self = .semiPlanar420(uFirst: true)
        case GST_VIDEO_FORMAT_NV21: self = .semiPlanar420(uFirst: false)
        case GST_VIDEO_FORMAT_YUY2: self = .packed422(y: 0, u: 1, v: 3)
        case GST_VIDEO_FORMAT_UYVY: self = .packed422(y: 1, u: 0, v: 2)
        case GST_VIDEO_FORMAT_RGB: self = .rgb(bytes: 3, r: 0, g: 1, b: 2)
        case GST_VIDEO_FORMAT_BGR: self = .rgb(bytes: 3, r: 2, g: 1, b: 0)
        case GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_RGBA: self = .rgb(bytes: 4, r: 0, g: 1, b: 2)
        case GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_BGRA: self = .rgb(bytes: 4, r: 2, g: 1, b: 0)
        case GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_ARGB: self = .rgb(bytes: 4, r: 1, g: 2, b: 3)
        case GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_ABGR: self = .rgb(bytes: 4, r: 3, g: 2, b: 1)
        case GST_VIDEO_FORMAT_I420_10LE: self = .planar420x16(shift: 2)
        case GST_VIDEO_FORMAT_P010_10LE: self = .semiPlanar420x16(shift: 8)
        case GST_VIDEO_FORMAT_v210: self = .v210
        default: return nil
        }
    }

    /// True when plane 0 is already an 8-bit luma image the detector can read in place.
    var hasLumaPlane: Bool {
        switch self { case .grey, .planar420, .semiPlanar420: return true; default: return false }
    }
}

/// A mapped video frame: plane pointers and strides, and the layout to read and draw with.
struct FrameView {
    let width: Int, height: Int
    let layout: PixelLayout
    var planes: [UnsafeMutablePointer<UInt8>] = []
    var strides: [Int] = []
    /// How the YUV formats' samples become RGB, from the caps' colorimetry.
    let matrix: YUVMatrix

    init?(_ frame: UnsafeMutablePointer<GstVideoFrame>) {
        let info = frame.pointee.info
        guard let finfo = info.finfo, let layout = PixelLayout(finfo.pointee.format) else { return nil }
        self.layout = layout
        width = Int(info.width); height = Int(info.height)
        matrix = YUVMatrix(bt709: info.colorimetry.matrix == GST_VIDEO_COLOR_MATRIX_BT709,
                           fullRange: info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255)
        let n = Int(finfo.pointee.n_planes)
        withUnsafeBytes(of: frame.pointee.data) { raw in
            let ptrs = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
            for i in 0..<n { planes.append(ptrs[i]!.assumingMemoryBound(to: UInt8.self)) }
        }
        withUnsafeBytes(of: info.stride) { raw in
            let s = raw.bindMemory(to: Int32.self)
            for i in 0..<n { strides.append(Int(s[i])) }
        }
    }

    /// Where the frame's colour is, for the detector: 8-bit RGB and YUV formats (nil for grey and
    /// the 10-bit formats, whose faces are found in grey).
    var colour: ColourSource? {
        switch layout {
        case let .rgb(bytes, r, g, b):
            return .rgb(UnsafePointer(planes[0]), stride: strides[0], pixelBytes: bytes, r: r, g: g, b: b)
        case let .planar420(u, v) where strides[u] == strides[v]:
            return .chroma(u: UnsafePointer(planes[u]), v: UnsafePointer(planes[v]), stride: strides[u], step: 1, shiftX: 1, shiftY: 1,
                           matrix: matrix)
        case let .semiPlanar420(uFirst):
            let p = UnsafePointer(planes[1])
            return .chroma(u: uFirst ? p : p + 1, v: uFirst ? p + 1 : p, stride: strides[1], step: 2, shiftX: 1, shiftY: 1, matrix: matrix)
        case let .packed422(_, u, v):
            let p = UnsafePointer(planes[0])
            return .chroma(u: p + u, v: p + v, stride: strides[0], step: 4, shiftX: 1, shiftY: 0, matrix: matrix)
        default:
            return nil
        }
    }

    /// The luma of the frame: plane 0 itself when the format has one, else computed into `scratch`
    /// (BT.601 weights). Returns the pointer and row stride to read.
    func luma(into scratch: inout [UInt8]) -> (UnsafePointer<UInt8>, Int) {
        if layout.hasLumaPlane { return (UnsafePointer(planes[0]), strides[0]) }
        if scratch.count != width * height { scratch = [UInt8](repeating: 0, count: width * height) }
        let (width, layout, src, stride) = (width, layout, planes[0], strides[0])
        scratch.withUnsafeMutableBufferPointer { d in
            let dst = d.baseAddress!
            // Bands of rows over the analysis threads. The per-pixel kernel: this target is built with overflow checks, so its arithmetic
            // is written wrapping (&+, &*), as the values cannot overflow (at most 255·256).
            parallelFor(height, minChunk: 64) { rows in
                switch layout {
                case .packed422(let yo, _, _):
                    for y in rows {
                        let row = src + y &* stride, out = dst + y &* width
                        for x in 0..<width { out[x] = row[x &* 2 &+ yo] }
                    }
                case .rgb(let bytes, let r, let g, let b):
                    for y in rows {
                        var p = UnsafePointer(src + y &* stride)
                        let out = dst + y &* width
                        for x in 0..<width {
                            out[x] = Image.luma(p[r], p[g], p[b])
                            p += bytes
                        }
                    }
                case .planar420x16(let shift), .semiPlanar420x16(let shift):
                    for y in rows {
                        let row = UnsafeRawPointer(src + y &* stride), out = dst + y &* width
                        for x in 0..<width {
                            let v = UInt16(littleEndian: row.loadUnaligned(fromByteOffset: 2 &* x, as: UInt16.self))
                            out[x] = UInt8(truncatingIfNeeded: min(Int(v) &>> shift, 255))
                        }
                    }
                case .v210:
                    // six pixels from each group of four words (rows hold whole groups)
                    for y in rows {
                        let row = UnsafeRawPointer(src + y &* stride), out = dst + y &* width
                        var x = 0
                        while x < width {
                            let k = 4 &* (x / 6)
                            let w1 = V210.word(row, k &+ 1), w3 = V210.word(row, k &+ 3)
                            let six = (SIMD8<UInt32>(V210.word(row, k) >> 10, w1, w1 >> 20, V210.word(row, k &+ 2) >> 10, w3, w3 >> 20, 0, 0)
                                       & 0x3FF) &>> 2
                            for i in 0..<min(6, width &- x) { out[x &+ i] = UInt8(truncatingIfNeeded: six[i]) }
                            x &+= 6
                        }
                    }
                default: break
                }
            }
        }
        return scratch.withUnsafeBufferPointer { (UnsafePointer($0.baseAddress!), width) }
    }
}

/// An RGB colour and its BT.601 limited-range YUV equivalent.
struct Colour {
    let r: UInt8, g: UInt8, b: UInt8
    let y: UInt8, u: UInt8, v: UInt8, grey: UInt8

    init(_ r: Int, _ g: Int, _ b: Int) {
        self.r = UInt8(r); self.g = UInt8(g); self.b = UInt8(b)
        let yy: Int = 66 * r + 129 * g + 25 * b + 128
        let uu: Int = -38 * r - 74 * g + 112 * b + 128
        let vv: Int = 112 * r - 94 * g - 18 * b + 128
        let gg: Int = 77 * r + 150 * g + 29 * b + 128
        y = UInt8((yy >> 8) + 16)
        u = UInt8((uu >> 8) + 128)
        v = UInt8((vv >> 8) + 128)
        grey = UInt8(gg >> 8)
    }
}

/// Fills rectangles in any supported layout, clipped to the frame.
struct Painter {
    let f: FrameView

    func fill(_ x0: Int, _ y0: Int, _ w: Int, _ h: Int, _ c: Colour) {
        let xa = max(0, x0), ya = max(0, y0), xb = min(f.width, x0 + w), yb = min(f.height, y0 + h)
        guard xa < xb, ya < yb else { return }
        switch f.layout {
        case .grey:
            for y in ya..<yb { let row = f.planes[0] + y * f.strides[0]; for x in xa..<xb { row[x] = c.grey } }
        case .planar420(let ui, let vi):
            for y in ya..<yb { let row = f.planes[0] + y * f.strides[0]; for x in xa..<xb { row[x] = c.y } }
            for y in (ya / 2)..<((yb + 1) / 2) {
                let ur = f.planes[ui] + y * f.strides[ui], vr = f.planes[vi] + y * f.strides[vi]
                for x in (xa / 2)..<((xb + 1) / 2) { ur[x] = c.u; vr[x] = c.v }
            }
        case .semiPlanar420(let uFirst):
            for y in ya..<yb { let row = f.planes[0] + y * f.strides[0]; for x in xa..<xb { row[x] = c.y } }
            for y in (ya / 2)..<((yb + 1) / 2) {
                let row = f.planes[1] + y * f.strides[1]
                for x in (xa / 2)..<((xb + 1) / 2) { row[2 * x] = uFirst ? c.u : c.v; row[2 * x + 1] = uFirst ? c.v : c.u }
            }
        case .packed422(let yo, let uo, let vo):
            for y in ya..<yb {
                let row = f.planes[0] + y * f.strides[0]
                for x in xa..<xb { row[2 * x + yo] = c.y }
                for pair in (xa / 2)..<((xb + 1) / 2) { row[4 * pair + uo] = c.u; row[4 * pair + vo] = c.v }
            }
        case .rgb(let bytes, let r, let g, let b):
            for y in ya..<yb {
                let row = f.planes[0] + y * f.strides[0]
                for x in xa..<xb { let p = row + x * bytes; p[r] = c.r; p[g] = c.g; p[b] = c.b }
            }
        case .planar420x16(let shift):
            for y in ya..<yb { for x in xa..<xb { put16(0, y, x, c.y, shift) } }
            for y in (ya / 2)..<((yb + 1) / 2) { for x in (xa / 2)..<((xb + 1) / 2) { put16(1, y, x, c.u, shift); put16(2, y, x, c.v, shift) } }
        case .semiPlanar420x16(let shift):
            for y in ya..<yb { for x in xa..<xb { put16(0, y, x, c.y, shift) } }
            for y in (ya / 2)..<((yb + 1) / 2) { for x in (xa / 2)..<((xb + 1) / 2) { put16(1, y, 2 * x, c.u, shift); put16(1, y, 2 * x + 1, c.v, shift) } }
        case .v210:
            for y in ya..<yb {
                let row = UnsafeMutableRawPointer(f.planes[0] + y * f.strides[0])
                for x in xa..<xb { let (w, b) = V210.luma(x); V210.set(row, w, b, UInt32(c.y) << 2) }
                for pair in (xa / 2)..<((xb + 1) / 2) {
                    let (cb, cr) = V210.chroma(pair)
                    V210.set(row, cb.word, cb.bit, UInt32(c.u) << 2); V210.set(row, cr.word, cr.bit, UInt32(c.v) << 2)
                }
            }
        }
    }

    /// Sample `i` of row y of a 16-bit plane: the 8-bit `v` at its bits (`<< shift`).
    private func put16(_ plane: Int, _ y: Int, _ i: Int, _ v: UInt8, _ shift: Int) {
        UnsafeMutableRawPointer(f.planes[plane] + y * f.strides[plane])
            .storeBytes(of: (UInt16(v) << shift).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
    }

    /// A rectangle outline `t` pixels thick.
    func box(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ t: Int, _ c: Colour) {
        fill(x, y, w, t, c); fill(x, y + h - t, w, t, c); fill(x, y, t, h, c); fill(x + w - t, y, t, h, c)
    }

    /// Text in the built-in 5x7 font, each font pixel `scale` pixels wide, on a filled background.
    func text(_ s: String, _ x: Int, _ y: Int, scale: Int, _ fg: Colour, _ bg: Colour) {
        let (w, h) = Font.size(s, scale: scale)
        fill(x, y, w, h, bg)
        var cx = x + scale
        for ch in s.uppercased() {
            if let rows = Font.glyphs[ch] {
                for (ry, bits) in rows.enumerated() {
                    for rx in 0..<5 where bits & (1 << (4 - rx)) != 0 {
                        fill(cx + rx * scale, y + scale + ry * scale, scale, scale, fg)
                    }
                }
            }
            cx += 6 * scale
        }
    }
}

/// A 5x7 bitmap font: letters, digits and a little punctuation.
enum Font {
    static func size(_ s: String, scale: Int) -> (Int, Int) { (s.count * 6 * scale + scale, 9 * scale) }

    static let glyphs: [Character: [UInt8]] = [
        "A": [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], ".": [0, 0, 0, 0, 0, 0x0C, 0x0C],
        "#": [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A], "-": [0, 0, 0, 0x1F, 0, 0, 0],
        ":": [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0], " ": [0, 0, 0, 0, 0, 0, 0],
    ]
}

/// Where v210 keeps each sample: 16-byte groups of six pixels, each group four little-endian
/// 32-bit words of three 10-bit samples (bits 0-9, 10-19, 20-29).
enum V210 {
    /// Word (from the row's start) and bit of pixel x's luma.
    @inline(__always) static func luma(_ x: Int) -> (word: Int, bit: Int) {
        let g = 4 * (x / 6)
        switch x % 6 {
        case 0: return (g, 10)
        case 1: return (g + 1, 0)
        case 2: return (g + 1, 20)
        case 3: return (g + 2, 10)
        case 4: return (g + 3, 0)
        default: return (g + 3, 20)
        }
    }

    /// Words and bits of the Cb and Cr shared by pixels 2·pair and 2·pair + 1.
    static func chroma(_ pair: Int) -> (cb: (word: Int, bit: Int), cr: (word: Int, bit: Int)) {
        let g = 4 * (pair / 3)
        switch pair % 3 {
        case 0: return ((g, 0), (g, 20))
        case 1: return ((g + 1, 10), (g + 2, 0))
        default: return ((g + 2, 20), (g + 3, 10))
        }
    }

    /// Word `word` of a row.
    @inline(__always) static func word(_ row: UnsafeRawPointer, _ word: Int) -> UInt32 {
        UInt32(littleEndian: row.loadUnaligned(fromByteOffset: 4 * word, as: UInt32.self))
    }

    @inline(__always) static func set(_ row: UnsafeMutableRawPointer, _ word: Int, _ bit: Int, _ value: UInt32) {
        let old = V210.word(UnsafeRawPointer(row), word)
        let new = (old & ~(0x3FF << bit)) | ((value & 0x3FF) << bit)
        row.storeBytes(of: new.littleEndian, toByteOffset: 4 * word, as: UInt32.self)
    }
}
