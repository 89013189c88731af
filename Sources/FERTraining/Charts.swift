import FERNet
import Foundation

/// SVG charts a person opens in a browser: training curves, class distribution, confusion matrix.
public enum Charts {
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
    static func f(_ v: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", v) }

    /// Loss and accuracy per epoch, train and PublicTest, in two panels.
    public static func trainingCurves(_ h: [EpochRecord], title: String) -> String {
        let w = 900.0, ph = 300.0, m = 50.0
        var s = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(2 * ph + 60))' font-family='sans-serif' font-size='12'>\n"
        s += "<rect width='100%' height='100%' fill='white'/>\n<text x='\(m)' y='20' font-size='15'>\(esc(title)) — \(h.count) epochs</text>\n"
        let panels: [(String, [(String, String, (EpochRecord) -> Double)])] = [
            ("loss", [("train", "#1f77b4", { $0.trainLoss }), ("PublicTest", "#d62728", { $0.valLoss })]),
            ("accuracy", [("train", "#1f77b4", { $0.trainAccuracy }), ("PublicTest", "#d62728", { $0.valAccuracy })]),
        ]
        for (pi, (name, series)) in panels.enumerated() {
            let top = 40.0 + Double(pi) * (ph + 10), bottom = top + ph - 40
            let all = h.flatMap { r in series.map { $0.2(r) } }
            var lo = all.min() ?? 0, hi = all.max() ?? 1
            if hi - lo < 1e-6 { hi = lo + 1 }
            let pad = (hi - lo) * 0.05; lo -= pad; hi += pad
            let n = max(h.count, 2)
            func X(_ i: Int) -> Double { m + (w - 2 * m) * Double(i) / Double(n - 1) }
            func Y(_ v: Double) -> Double { bottom - (bottom - top) * (v - lo) / (hi - lo) }
            s += "<rect x='\(m)' y='\(top)' width='\(w - 2 * m)' height='\(bottom - top)' fill='none' stroke='#999'/>\n"
            s += "<text x='\(m + 5)' y='\(top + 15)' font-weight='bold'>\(name)</text>\n"
            for t in 0...4 {
                let v = lo + (hi - lo) * Double(t) / 4
                s += "<text x='\(m - 5)' y='\(f(Y(v) + 4))' text-anchor='end'>\(f(v, name == "loss" ? 2 : 3))</text>\n"
            }
            for (li, (sname, color, get)) in series.enumerated() {
                let pts = h.enumerated().map { "\(f(X($0.offset))),\(f(Y(get($0.element))))" }.joined(separator: " ")
                s += "<polyline fill='none' stroke='\(color)' stroke-width='2' points='\(pts)'/>\n"
                s += "<text x='\(w - m - 120)' y='\(top + 15 + Double(li) * 15)' fill='\(color)'>\(sname)\(h.last.map { ": " + f(get($0), 3) } ?? "")</text>\n"
            }
            s += "<text x='\(w / 2)' y='\(bottom + 15)' text-anchor='middle'>epoch (1–\(h.count))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// A bar chart of counts per label.
    public static func bars(_ counts: [Int], labels: [String], title: String) -> String {
        let w = 700.0, hgt = 380.0, m = 50.0
        let mx = Double(counts.max() ?? 1)
        let bw = (w - 2 * m) / Double(max(counts.count, 1))
        var s = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(hgt))' font-family='sans-serif' font-size='12'>\n"
        s += "<rect width='100%' height='100%' fill='white'/>\n<text x='\(m)' y='22' font-size='15'>\(esc(title))</text>\n"
        let total = Double(counts.reduce(0, +))
        for (i, c) in counts.enumerated() {
            let bh = (hgt - 2 * m - 20) * Double(c) / max(mx, 1)
            let x = m + Double(i) * bw + 6, y = hgt - m - bh
            s += "<rect x='\(f(x))' y='\(f(y))' width='\(f(bw - 12))' height='\(f(bh))' fill='\(color(i))'/>\n"
            s += "<text x='\(f(x + (bw - 12) / 2))' y='\(f(y - 4))' text-anchor='middle'>\(c) (\(f(100 * Double(c) / max(total, 1)))%)</text>\n"
            s += "<text x='\(f(x + (bw - 12) / 2))' y='\(f(hgt - m + 16))' text-anchor='middle'>\(esc(labels[i]))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// A confusion matrix, cells shaded by row-normalised share, with counts.
    public static func confusion(_ c: Confusion, title: String) -> String {
        let k = c.labels.count, cell = 70.0, left = 100.0, top = 80.0
        let w = left + cell * Double(k) + 20, h = top + cell * Double(k) + 60
        var s = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(h))' font-family='sans-serif' font-size='12'>\n"
        s += "<rect width='100%' height='100%' fill='white'/>\n<text x='10' y='22' font-size='15'>\(esc(title))</text>\n"
        s += "<text x='\(left + cell * Double(k) / 2)' y='\(top - 30)' text-anchor='middle'>predicted</text>\n"
        for i in 0..<k {
            s += "<text x='\(left + cell * (Double(i) + 0.5))' y='\(top - 8)' text-anchor='middle'>\(esc(c.labels[i]))</text>\n"
            s += "<text x='\(left - 8)' y='\(top + cell * (Double(i) + 0.5) + 4)' text-anchor='end'>\(esc(c.labels[i]))</text>\n"
            let rowTotal = Double(max(c.matrix[i].reduce(0, +), 1))
            for j in 0..<k {
                let share = Double(c.matrix[i][j]) / rowTotal
                let shade = Int(255 - 200 * share)
                s += "<rect x='\(left + cell * Double(j))' y='\(top + cell * Double(i))' width='\(cell)' height='\(cell)' fill='rgb(\(shade),\(shade),255)' stroke='#ccc'/>\n"
                s += "<text x='\(left + cell * (Double(j) + 0.5))' y='\(top + cell * (Double(i) + 0.5))' text-anchor='middle' fill='\(share > 0.5 ? "white" : "black")'>\(c.matrix[i][j])</text>\n"
                s += "<text x='\(left + cell * (Double(j) + 0.5))' y='\(top + cell * (Double(i) + 0.5) + 14)' text-anchor='middle' font-size='10' fill='\(share > 0.5 ? "white" : "#555")'>\(f(100 * share))%</text>\n"
            }
        }
        s += "<text x='10' y='\(h - 20)'>true label in rows; accuracy \(f(100 * c.accuracy, 2))% over \(c.total) faces</text>\n"
        return s + "</svg>\n"
    }

    static func color(_ i: Int) -> String {
        ["#d62728", "#8c564b", "#9467bd", "#ff7f0e", "#1f77b4", "#e377c2", "#7f7f7f"][i % 7]
    }
}
