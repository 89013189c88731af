import Foundation

/// An OpenCV Haar cascade file (XML, as Debian's opencv-data ships them) read and checked: the
/// window size, the stages with their weak classifiers, and the features. Everything read is
/// validated (sizes, rects inside the window, feature and child indices in range), so that the
/// detector's kernels can index without checks of their own; what is wrong is a `CascadeError`
/// naming the file and the element.
struct HaarCascadeFile {
    let windowWidth: Int, windowHeight: Int
    let stages: [HaarCascade.Stage]
    let features: [[HaarCascade.Rect]]

    init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CascadeError(description: "cascade file not found or unreadable: \(path)")
        }
        let root: XMLNode
        do { root = try MiniXML.parse([UInt8](data)) } catch { throw CascadeError(description: "\(path) is not valid XML: \(error)") }
        func fail(_ why: String) -> CascadeError { CascadeError(description: "\(path) is not an OpenCV Haar cascade: \(why)") }
        guard let storage = root.child("opencv_storage"), let cascade = storage.children.first(where: { $0.name != "" && $0.child("stages") != nil }) else {
            throw fail("no <opencv_storage> with a cascade holding <stages>")
        }
        guard cascade.child("featureType").map({ $0.text.trimmingCharacters(in: " \n\r\t") }) == "HAAR" else {
            throw fail("featureType must be HAAR")
        }
        guard let w = cascade.child("width").flatMap({ Int($0.text.trimmingCharacters(in: " \n\r\t")) }),
              let h = cascade.child("height").flatMap({ Int($0.text.trimmingCharacters(in: " \n\r\t")) }), w > 2, h > 2, w < 256, h < 256 else {
            throw fail("missing or bad <width>/<height>")
        }
        windowWidth = w; windowHeight = h
        func numbers(_ n: XMLNode?, _ what: String) throws -> [Double] {
            guard let n else { throw fail("missing <\(what)>") }
            let parts = n.text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" })
            return try parts.map { p in
                guard let v = Double(p) else { throw fail("\"\(p)\" in <\(what)> is not a number") }
                return v
            }
        }
        guard let fnode = cascade.child("features") else { throw fail("missing <features>") }
        var feats: [[HaarCascade.Rect]] = []
        for (fi, f) in fnode.all("_").enumerated() {
            if let t = f.child("tilted"), t.text.trimmingCharacters(in: " \n\r\t") == "1" {
                throw CascadeError(description: "\(path): feature \(fi) is tilted; tilted Haar features are not supported")
            }
            guard let rects = f.child("rects") else { throw fail("feature \(fi) has no <rects>") }
            var rs: [HaarCascade.Rect] = []
            for r in rects.all("_") {
                let v = try numbers(r, "rects")
                guard v.count == 5 else { throw fail("feature \(fi): a rect needs 5 numbers") }
                let x = Int(v[0]), y = Int(v[1]), rw = Int(v[2]), rh = Int(v[3])
                guard x >= 0, y >= 0, rw > 0, rh > 0, x + rw <= w, y + rh <= h else { throw fail("feature \(fi): rect outside the \(w)x\(h) window") }
                rs.append(HaarCascade.Rect(x: Int32(x), y: Int32(y), w: Int32(rw), h: Int32(rh), weight: Float(v[4])))
            }
            guard !rs.isEmpty, rs.count <= 3 else { throw fail("feature \(fi) has \(rs.count) rects") }
            feats.append(rs)
        }
        guard let snode = cascade.child("stages"), !snode.all("_").isEmpty else { throw fail("no stages") }
        var stages: [HaarCascade.Stage] = []
        for (si, s) in snode.all("_").enumerated() {
            let thr = try numbers(s.child("stageThreshold"), "stageThreshold")
            guard thr.count == 1, let wc = s.child("weakClassifiers") else { throw fail("stage \(si) lacks a threshold or weak classifiers") }
            var weak: [HaarCascade.Weak] = []
            for c in wc.all("_") {
                let nodeValues = try numbers(c.child("internalNodes"), "internalNodes")
                let leaves = try numbers(c.child("leafValues"), "leafValues")
                guard nodeValues.count % 4 == 0, !nodeValues.isEmpty, leaves.count == nodeValues.count / 4 + 1 else {
                    throw fail("stage \(si): weak classifier with \(nodeValues.count) node values and \(leaves.count) leaves")
                }
                var nodes: [HaarCascade.Node] = []
                for k in stride(from: 0, to: nodeValues.count, by: 4) {
                    let fi = Int(nodeValues[k + 2])
                    guard fi >= 0, fi < feats.count else { throw fail("stage \(si): feature index \(fi) out of range") }
                    let l = Int(nodeValues[k]), r = Int(nodeValues[k + 1])
                    guard l > -leaves.count - 1, r > -leaves.count - 1, l < nodeValues.count / 4, r < nodeValues.count / 4 else {
                        throw fail("stage \(si): node child out of range")
                    }
                    nodes.append(HaarCascade.Node(feature: Int32(fi), threshold: Float(nodeValues[k + 3]), left: Int32(l), right: Int32(r)))
                }
                weak.append(HaarCascade.Weak(nodes: nodes, leaves: leaves.map(Float.init)))
            }
            guard !weak.isEmpty else { throw fail("stage \(si) has no weak classifiers") }
            stages.append(HaarCascade.Stage(threshold: Float(thr[0]), weak: weak))
        }
        self.stages = stages
        self.features = feats
    }
}
