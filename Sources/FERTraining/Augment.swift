import FERNet
import Foundation

extension Augmentation {
    /// Augments one image in place.
    public func apply(_ img: inout [Float], size: Int, rng: inout SeededGenerator) {
        let n = size
        let doFlip = flip && rng.uniform() < 0.5
        let angle = rng.uniform(-maxRotation, maxRotation) * .pi / 180
        let sc = rng.uniform(scale.lowerBound, scale.upperBound)
        let tx = rng.uniform(-maxShift, maxShift) * Float(n), ty = rng.uniform(-maxShift, maxShift) * Float(n)
        if doFlip || angle != 0 || sc != 1 || tx != 0 || ty != 0 {
            let src = img
            let c = Float(n - 1) / 2
            let cosA = cosf(angle) / sc, sinA = sinf(angle) / sc
            for y in 0..<n { for x in 0..<n {
                // inverse map output pixel to source
                let dx = Float(x) - c - tx, dy = Float(y) - c - ty
                var sx = cosA * dx + sinA * dy + c
                let sy = -sinA * dx + cosA * dy + c
                if doFlip { sx = Float(n - 1) - sx }
                img[y * n + x] = Augmentation.bilinear(src, n, sx, sy)
            } }
        }
        if brightness > 0 || contrast > 0 {
            let b = rng.uniform(-brightness, brightness), k = 1 + rng.uniform(-contrast, contrast)
            var mean: Float = 0
            for v in img { mean += v }
            mean /= Float(img.count)
            for i in img.indices { img[i] = min(1, max(0, (img[i] - mean) * k + mean + b)) }
        }
        if eraseProbability > 0 && rng.uniform() < eraseProbability {
            let area = rng.uniform(eraseArea.lowerBound, eraseArea.upperBound) * Float(n * n)
            let aspect = expf(rng.uniform(logf(0.3), logf(3.3)))
            let eh = min(n, max(1, Int((area * aspect).squareRoot()))), ew = min(n, max(1, Int((area / aspect).squareRoot())))
            let y0 = Int(rng.uniform() * Float(n - eh + 1)), x0 = Int(rng.uniform() * Float(n - ew + 1))
            for y in y0..<min(n, y0 + eh) { for x in x0..<min(n, x0 + ew) { img[y * n + x] = rng.uniform() } }
        }
    }

    /// Bilinear sample with edge replication.
    @inline(__always)
    static func bilinear(_ s: [Float], _ n: Int, _ x: Float, _ y: Float) -> Float {
        let xc = min(max(x, 0), Float(n - 1)), yc = min(max(y, 0), Float(n - 1))
        let x0 = Int(xc), y0 = Int(yc)
        let x1 = min(x0 + 1, n - 1), y1 = min(y0 + 1, n - 1)
        let fx = xc - Float(x0), fy = yc - Float(y0)
        let a = s[y0 * n + x0], b = s[y0 * n + x1], c = s[y1 * n + x0], d = s[y1 * n + x1]
        return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    }
}
