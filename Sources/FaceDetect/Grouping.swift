import Foundation

/// OpenCV's grouping of raw detections, and the suppression of boxes nested in larger ones.
extension HaarCascade {
    /// Keeps the larger of two boxes when the smaller has more than `overlap` of its area inside it.
    public static func suppressNested(_ boxes: [DetectedBox], overlap: Double) -> [DetectedBox] {
        var kept: [DetectedBox] = []
        for b in boxes.sorted(by: { $0.width * $0.height > $1.width * $1.height }) {
            let inside = kept.contains { k in
                let ix = max(0, min(b.x + b.width, k.x + k.width) - max(b.x, k.x))
                let iy = max(0, min(b.y + b.height, k.y + k.height) - max(b.y, k.y))
                return Double(ix * iy) > overlap * Double(b.width * b.height)
            }
            if !inside { kept.append(b) }
        }
        return kept
    }

    /// OpenCV's `groupRectangles`: clusters of similar boxes averaged; clusters with no more than
    /// `minNeighbors` members dropped, as are boxes inside a stronger one.
    public static func group(_ rects: [DetectedBox], minNeighbors: Int, eps: Double) -> [DetectedBox] {
        if minNeighbors <= 0 { return rects.map { var r = $0; r.neighbors = 1; return r } }
        let n = rects.count
        var parent = Array(0..<n)
        func find(_ i: Int) -> Int { var i = i; while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }; return i }
        func similar(_ a: DetectedBox, _ b: DetectedBox) -> Bool {
            let delta = eps * Double(min(a.width, b.width) + min(a.height, b.height)) * 0.5
            return Double(abs(a.x - b.x)) <= delta && Double(abs(a.y - b.y)) <= delta
                && Double(abs(a.x + a.width - b.x - b.width)) <= delta && Double(abs(a.y + a.height - b.y - b.height)) <= delta
        }
        for i in 0..<n { for j in (i + 1)..<max(n, i + 1) where similar(rects[i], rects[j]) {
            let a = find(i), b = find(j); if a != b { parent[a] = b }
        } }
        var sums: [Int: (x: Int, y: Int, w: Int, h: Int, n: Int)] = [:]
        for i in 0..<n {
            let r = find(i), b = rects[i]
            let s = sums[r] ?? (0, 0, 0, 0, 0)
            sums[r] = (s.x + b.x, s.y + b.y, s.w + b.width, s.h + b.height, s.n + 1)
        }
        var avg: [DetectedBox] = []
        for (_, s) in sums.sorted(by: { $0.key < $1.key }) where s.n > minNeighbors {
            let k = 1.0 / Double(s.n)
            avg.append(DetectedBox(x: Int((Double(s.x) * k).rounded()), y: Int((Double(s.y) * k).rounded()),
                                   width: Int((Double(s.w) * k).rounded()), height: Int((Double(s.h) * k).rounded()), neighbors: s.n))
        }
        return avg.enumerated().filter { (i, r1) in
            !avg.enumerated().contains { (j, r2) in
                guard i != j else { return false }
                let dx = Int(Double(r2.width) * eps), dy = Int(Double(r2.height) * eps)
                return r1.x >= r2.x - dx && r1.y >= r2.y - dy && r1.x + r1.width <= r2.x + r2.width + dx
                    && r1.y + r1.height <= r2.y + r2.height + dy && (r2.neighbors > max(3, r1.neighbors) || r1.neighbors < 3)
            }
        }.map { $0.1 }
    }
}
