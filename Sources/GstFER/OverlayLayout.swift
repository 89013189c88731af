/// Where each face's label and probability panel go on a frame, so that neither covers another
/// face, another face's label or panel, or leaves the frame where a place that does not exists.
/// Pure geometry (no frame, no GStreamer): FaceDrawing draws what it decides.
struct OverlayLayout {
    struct Rect: Equatable {
        var x: Int, y: Int, width: Int, height: Int
        func intersection(_ o: Rect) -> Int {
            let w = min(x + width, o.x + o.width) - max(x, o.x), h = min(y + height, o.y + o.height) - max(y, o.y)
            return w > 0 && h > 0 ? w * h : 0
        }
        func inside(width fw: Int, height fh: Int) -> Bool { x >= 0 && y >= 0 && x + width <= fw && y + height <= fh }
    }

    /// Per face: its label's top-left corner, and its panel's rectangle (nil without probabilities).
    var labels: [Rect]
    var panels: [Rect?]

    /// `boxes`: the faces' boxes; `label`: each face's label size; `panel`: each face's panel
    /// sizes, largest first, the smaller ones tried where the largest fits nowhere (empty: no
    /// panel); `gap`: the box's line width. Larger faces are placed first.
    init(boxes: [Rect], label: [(Int, Int)], panel: [[(Int, Int)]], gap: Int, frameWidth fw: Int, frameHeight fh: Int) {
        labels = Array(repeating: Rect(x: 0, y: 0, width: 0, height: 0), count: boxes.count)
        panels = Array(repeating: nil, count: boxes.count)
        var taken: [Rect] = []   // labels and panels placed so far
        func cost(_ r: Rect, face i: Int) -> Int {
            var c = 0
            for (j, b) in boxes.enumerated() where j != i { c += r.intersection(b) }
            for t in taken { c += r.intersection(t) }
            if !r.inside(width: fw, height: fh) {
                // what lies outside the frame counts as covered
                c += r.width * r.height - r.intersection(Rect(x: 0, y: 0, width: fw, height: fh))
            }
            return c
        }
        /// The first candidate that covers nothing, else the one that covers least.
        func best(_ candidates: [Rect], face i: Int) -> Rect {
            var choice = candidates[0], least = Int.max
            for r in candidates {
                let c = cost(r, face: i)
                if c == 0 { return r }
                if c < least { least = c; choice = r }
            }
            return choice
        }
        let order = boxes.indices.sorted { a, b in
            let (x, y) = (boxes[a].width * boxes[a].height, boxes[b].width * boxes[b].height)
            return x != y ? x > y : a < b
        }
        for i in order {
            let b = boxes[i], (lw, lh) = label[i]
            // the label above the box, else inside its top, else under it
            let l = best([Rect(x: b.x, y: b.y - lh, width: lw, height: lh), Rect(x: b.x, y: b.y + gap, width: lw, height: lh),
                          Rect(x: b.x, y: b.y + b.height + gap, width: lw, height: lh)], face: i)
            labels[i] = l
            taken.append(l)
            guard !panel[i].isEmpty else { continue }
            // the panel beside the box (right, then left), under it or above the label, smaller where
            // the largest fits nowhere; where faces crowd the frame, over the lower part of its own
            // face (never over another's)
            let outside = panel[i].flatMap { (pw, ph) in
                [Rect(x: b.x + b.width + gap, y: b.y, width: pw, height: ph), Rect(x: b.x - gap - pw, y: b.y, width: pw, height: ph),
                 Rect(x: b.x, y: b.y + b.height + gap, width: pw, height: ph), Rect(x: b.x, y: min(l.y, b.y) - ph, width: pw, height: ph)]
            }
            let over = panel[i].map { (pw, ph) in Rect(x: b.x + gap, y: b.y + b.height - gap - ph, width: pw, height: ph) }
            let p = best(outside + over, face: i)
            panels[i] = p
            taken.append(p)
        }
    }
}
