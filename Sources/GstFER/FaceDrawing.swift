import FaceAnalysis

/// Boxes, labels and probability bars on a frame, in place, in any of the element's formats:
/// ferfilter's own drawing and feroverlay's.
enum FaceDrawing {
    /// A colour per emotion, in label order.
    static let palette: [Colour] = [Colour(230, 40, 40), Colour(60, 160, 60), Colour(150, 80, 200), Colour(250, 200, 20),
                                    Colour(50, 110, 230), Colour(240, 120, 200), Colour(200, 200, 200)]
    static let black = Colour(0, 0, 0)

    /// The colour of a label; any index, since faces read from metas may come from anywhere.
    static func colour(_ label: Int) -> Colour { palette[((label % palette.count) + palette.count) % palette.count] }

    /// A confidence or probability clamped to 0-1 (NaN: 0).
    static func unit(_ v: Double) -> Double { v.isNaN ? 0 : min(max(v, 0), 1) }

    /// Each face's box and "emotion NN%" in its emotion's colour; with `probabilities`, a bar per
    /// label (its initial from `labels`) in a panel beside the box, or under or above it: labels
    /// and panels are laid out (`OverlayLayout`) so that they cover no other face, label or panel
    /// where there is room. With `landmarks`, each face's landmarks as small squares in its
    /// colour, ringed in black.
    static func draw(_ faces: [EmotionFace], on view: FrameView, labels: [String], probabilities: Bool, landmarks: Bool = false) {
        let painter = Painter(f: view)
        let scale = max(1, min(view.width, view.height) / 240)
        let thick = max(2, scale)
        let texts = faces.map(labelText)
        let layout = self.layout(faces, texts: texts, probabilities: probabilities, scale: scale, thick: thick,
                                 frameWidth: view.width, frameHeight: view.height)
        for f in faces { painter.box(f.x, f.y, f.width, f.height, thick, colour(f.labelID)) }
        for (i, f) in faces.enumerated() {
            let c = colour(f.labelID)
            if landmarks {
                let r = max(2, f.width / 40)
                for i in Swift.stride(from: 0, to: f.landmarks.count - 1, by: 2) {
                    let x = Int(f.landmarks[i].rounded()), y = Int(f.landmarks[i + 1].rounded())
                    painter.fill(x - r - 1, y - r - 1, 2 * r + 3, 2 * r + 3, black)
                    painter.fill(x - r, y - r, 2 * r + 1, 2 * r + 1, c)
                }
            }
            let l = layout.labels[i]
            painter.text(texts[i], l.x, l.y, scale: scale, black, c)
            if let p = layout.panels[i], !f.probabilities.isEmpty {
                // the panel's own scale: the layout may have chosen a smaller one than the labels'
                let ps = max(1, p.height / (9 * f.probabilities.count))
                let rowH = 9 * ps, barW = p.width - 7 * ps
                for (k, v) in f.probabilities.enumerated() {
                    let y = p.y + k * rowH
                    let kc = colour(k)
                    painter.text(k < labels.count ? String(labels[k].prefix(1)) : "?", p.x, y, scale: ps, black, kc)
                    painter.fill(p.x + 7 * ps, y + ps, Int(Double(barW) * unit(v)), rowH - 2 * ps, kc)
                }
            }
        }
    }

    /// A face's label: "emotion NN%".
    static func labelText(_ f: EmotionFace) -> String { "\(f.emotion) \(Int((unit(f.confidence) * 100).rounded()))%" }

    /// Where `draw` puts each face's label (`texts`) and probability panel.
    static func layout(_ faces: [EmotionFace], texts: [String], probabilities: Bool, scale: Int, thick: Int,
                       frameWidth: Int, frameHeight: Int) -> OverlayLayout {
        OverlayLayout(boxes: faces.map { OverlayLayout.Rect(x: $0.x, y: $0.y, width: $0.width, height: $0.height) },
                      label: texts.map { Font.size($0, scale: scale) },
                      panel: faces.map { f in
                          guard probabilities, !f.probabilities.isEmpty else { return [] }
                          // a row of initial + bar per label, at the labels' scale and, where that fits nowhere, smaller
                          return stride(from: scale, through: 1, by: -1).map { s in
                              (7 * s + max(f.width / 2 * s / scale, 40 * s), 9 * s * f.probabilities.count)
                          }
                      },
                      gap: thick, frameWidth: frameWidth, frameHeight: frameHeight)
    }
}
