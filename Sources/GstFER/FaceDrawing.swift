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
    /// label (its initial from `labels`) beside the box, or under it where there is no room.
    /// With `landmarks`, each face's landmarks as small squares in its colour, ringed in black.
    static func draw(_ faces: [EmotionFace], on view: FrameView, labels: [String], probabilities: Bool, landmarks: Bool = false) {
        let painter = Painter(f: view)
        let scale = max(1, min(view.width, view.height) / 240)
        let thick = max(2, scale)
        for f in faces {
            let c = colour(f.labelID)
            painter.box(f.x, f.y, f.width, f.height, thick, c)
            if landmarks {
                let r = max(2, f.width / 40)
                for i in Swift.stride(from: 0, to: f.landmarks.count - 1, by: 2) {
                    let x = Int(f.landmarks[i].rounded()), y = Int(f.landmarks[i + 1].rounded())
                    painter.fill(x - r - 1, y - r - 1, 2 * r + 3, 2 * r + 3, black)
                    painter.fill(x - r, y - r, 2 * r + 1, 2 * r + 1, c)
                }
            }
            let text = "\(f.emotion) \(Int((unit(f.confidence) * 100).rounded()))%"
            let (_, th) = Font.size(text, scale: scale)
            let ty = f.y - th >= 0 ? f.y - th : f.y + thick
            painter.text(text, f.x, ty, scale: scale, black, c)
            if probabilities {
                // a row of initial + bar per label, beside the box when there is room, else under it
                let rowH = 9 * scale, barW = max(f.width / 2, 40 * scale), panelW = 7 * scale + barW
                let beside = f.x + f.width + thick + panelW <= view.width
                let px = beside ? f.x + f.width + thick : f.x
                let py = beside ? f.y : f.y + f.height + thick
                for (k, p) in f.probabilities.enumerated() {
                    let y = py + k * rowH
                    let kc = colour(k)
                    painter.text(k < labels.count ? String(labels[k].prefix(1)) : "?", px, y, scale: scale, black, kc)
                    painter.fill(px + 7 * scale, y + scale, Int(Double(barW) * unit(p)), rowH - 2 * scale, kc)
                }
            }
        }
    }
}
