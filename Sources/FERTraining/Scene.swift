import FERNet
import Foundation

/// Synthetic frames built from real FER2013 faces: faces scaled up and placed on a textured
/// background, for test clips and demos where no camera is present.
public struct FaceScene: Sendable {
    public struct Placement: Sendable {
        public var row: Int        // dataset row
        public var x: Int, y: Int, size: Int
        public init(row: Int, x: Int, y: Int, size: Int) { self.row = row; self.x = x; self.y = y; self.size = size }
    }

    public var width: Int, height: Int
    public var placements: [Placement]

    public init(width: Int, height: Int, placements: [Placement]) {
        self.width = width; self.height = height; self.placements = placements
    }

    /// Renders the scene as an 8-bit grey image (row-major, stride = width). `phase` shifts the
    /// background texture so consecutive frames differ.
    public func render(_ data: FERDataset, phase: Int = 0) -> [UInt8] {
        var img = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height { for x in 0..<width {
            // a soft gradient with a faint diagonal texture, never a face
            img[y * width + x] = UInt8(90 + (x * 40 / max(width, 1)) + ((x + y + phase) / 7 % 5) * 3)
        } }
        for p in placements {
            let face = data.image(p.row)
            let scaled = Image.resizeGrey(face, width: FERDataset.side, height: FERDataset.side, to: p.size, p.size)
            for yy in 0..<p.size { for xx in 0..<p.size {
                let X = p.x + xx, Y = p.y + yy
                if X >= 0 && X < width && Y >= 0 && Y < height { img[Y * width + X] = scaled[yy * p.size + xx] }
            } }
        }
        return img
    }

    /// The scene at frame `t` of a clip: each face drifts on a small circle of its own phase.
    public func moved(frame t: Int, radius: Double = 12, period: Double = 90) -> FaceScene {
        var s = self
        for i in s.placements.indices {
            let a = 2 * Double.pi * (Double(t) / period + Double(i) / Double(max(placements.count, 1)))
            s.placements[i].x += Int((radius * cos(a)).rounded())
            s.placements[i].y += Int((radius * sin(a)).rounded())
        }
        return s
    }

    /// A grid of `count` faces of `size` pixels from consecutive `rows`, centred in the frame.
    public static func grid(width: Int, height: Int, rows: [Int], size: Int) -> FaceScene {
        let n = rows.count
        let cols = max(1, Int(Double(n).squareRoot().rounded(.up)))
        let lines = (n + cols - 1) / cols
        let gapX = (width - cols * size) / (cols + 1), gapY = (height - lines * size) / (lines + 1)
        let places = rows.enumerated().map { (i, r) in
            Placement(row: r, x: gapX + (i % cols) * (size + gapX), y: gapY + (i / cols) * (size + gapY), size: size)
        }
        return FaceScene(width: width, height: height, placements: places)
    }
}
