/// Cuts a detected face out of a grey frame the way FER2013 faces are framed, and scales it to
/// the model's input size.
public enum FaceCrop {
    /// `box` is the detector's square; `scale` widens (>1) or narrows it about its centre. Pixels
    /// outside the frame repeat the nearest edge.
    public static func crop(grey: [UInt8], width: Int, height: Int, box: (x: Int, y: Int, w: Int, h: Int), side: Int,
                            scale: Double = 1.0) -> [UInt8] {
        grey.withUnsafeBufferPointer { crop(grey: $0.baseAddress!, width: width, height: height, stride: width, box: box, side: side, scale: scale) }
    }

    public static func crop(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, box: (x: Int, y: Int, w: Int, h: Int),
                            side: Int, scale: Double = 1.0) -> [UInt8] {
        let cx = Double(box.x) + Double(box.w) / 2, cy = Double(box.y) + Double(box.h) / 2
        let bw = Double(box.w) * scale, bh = Double(box.h) * scale
        let x0 = cx - bw / 2, y0 = cy - bh / 2
        var out = [UInt8](repeating: 0, count: side * side)
        let sx = bw / Double(side), sy = bh / Double(side)
        for y in 0..<side {
            for x in 0..<side {
                out[y * side + x] = sample(grey, width: width, height: height, stride: stride,
                                           x: x0 + (Double(x) + 0.5) * sx - 0.5, y: y0 + (Double(y) + 0.5) * sy - 0.5)
            }
        }
        return out
    }

    /// The picture at (x, y) by bilinear interpolation, the coordinates clamped to the picture
    /// (outside, the nearest edge repeats).
    @inline(__always)
    public static func sample(_ grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, x: Double, y: Double) -> UInt8 {
        let fx = min(max(x, 0), Double(width - 1)), fy = min(max(y, 0), Double(height - 1))
        let ix = Int(fx), iy = Int(fy), ix1 = min(ix + 1, width - 1), iy1 = min(iy + 1, height - 1)
        let ax = fx - Double(ix), ay = fy - Double(iy)
        let v = (Double(grey[iy * stride + ix]) * (1 - ax) + Double(grey[iy * stride + ix1]) * ax) * (1 - ay)
              + (Double(grey[iy1 * stride + ix]) * (1 - ax) + Double(grey[iy1 * stride + ix1]) * ax) * ay
        return UInt8(min(255, max(0, v.rounded())))
    }
}

extension FaceCrop {
    /// Where FER2013's faces have their five landmarks (right eye, left eye, nose tip, right and
    /// left mouth corners, the person's), in 48x48 crop coordinates (pixel i spans i..<i+1): the
    /// mean over 566 PublicTest faces YuNet found when placed at 110 px in frames.
    public static let ferLandmarks: [(x: Double, y: Double)] = [(15.02, 18.20), (32.64, 18.45), (23.36, 28.40), (16.81, 36.31), (30.89, 36.54)]

    /// A face cut out by its landmarks: rotated and scaled so they lie, as nearly as a rotation, a
    /// scale and a shift can put them, where FER2013's faces have theirs (eyes level), then
    /// sampled to `side` x `side`. `scale` widens (>1) or narrows the view about the crop's centre.
    /// Pixels outside the frame repeat the nearest edge.
    public static func aligned(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                               landmarks: [(x: Double, y: Double)], side: Int, scale: Double = 1.0) -> [UInt8] {
        let k = Double(side) / 48, c = Double(side) / 2
        let template = ferLandmarks.prefix(landmarks.count).map { (x: c + ($0.x * k - c) / scale, y: c + ($0.y * k - c) / scale) }
        let m = similarity(from: template, to: Array(landmarks.prefix(template.count)))
        var out = [UInt8](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                let u = Double(x) + 0.5, v = Double(y) + 0.5
                out[y * side + x] = sample(grey, width: width, height: height, stride: stride,
                                           x: m.a * u - m.b * v + m.tx - 0.5, y: m.b * u + m.a * v + m.ty - 0.5)
            }
        }
        return out
    }

    /// The rotation, scale and shift (x' = a x - b y + tx, y' = b x + a y + ty) taking `p` nearest
    /// to `q` in least squares.
    public static func similarity(from p: [(x: Double, y: Double)], to q: [(x: Double, y: Double)]) -> (a: Double, b: Double, tx: Double, ty: Double) {
        let n = Double(max(p.count, 1))
        let pmx = p.reduce(0) { $0 + $1.x } / n, pmy = p.reduce(0) { $0 + $1.y } / n
        let qmx = q.reduce(0) { $0 + $1.x } / n, qmy = q.reduce(0) { $0 + $1.y } / n
        var sa = 0.0, sb = 0.0, pp = 0.0
        for (u, v) in zip(p, q) {
            let px = u.x - pmx, py = u.y - pmy, qx = v.x - qmx, qy = v.y - qmy
            sa += px * qx + py * qy; sb += px * qy - py * qx; pp += px * px + py * py
        }
        let a = pp > 0 ? sa / pp : 1, b = pp > 0 ? sb / pp : 0
        return (a, b, qmx - (a * pmx - b * pmy), qmy - (b * pmx + a * pmy))
    }
}
