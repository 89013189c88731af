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
            let fy = min(max(y0 + (Double(y) + 0.5) * sy - 0.5, 0), Double(height - 1))
            let iy = Int(fy), iy1 = min(iy + 1, height - 1), ay = fy - Double(iy)
            for x in 0..<side {
                let fx = min(max(x0 + (Double(x) + 0.5) * sx - 0.5, 0), Double(width - 1))
                let ix = Int(fx), ix1 = min(ix + 1, width - 1), ax = fx - Double(ix)
                let v = (Double(grey[iy * stride + ix]) * (1 - ax) + Double(grey[iy * stride + ix1]) * ax) * (1 - ay)
                      + (Double(grey[iy1 * stride + ix]) * (1 - ax) + Double(grey[iy1 * stride + ix1]) * ax) * ay
                out[y * side + x] = UInt8(min(255, max(0, v.rounded())))
            }
        }
        return out
    }
}
