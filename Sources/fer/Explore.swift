import ArgumentParser
import FERNet
import FERTraining
import Foundation

struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a sample grid of faces per emotion (PNG) and class-distribution charts (SVG).")

    @Argument(help: "FER2013: Kaggle CSV (.csv or .csv.gz) or an image-folder copy (train/<emotion>/*.jpg, test/...).")
    var data = Defaults.data

    @Option(name: .shortAndLong, help: "Output directory.")
    var output = "out/explore"

    @Option(help: "Faces per emotion in the grid.")
    var perClass = 12

    @Option(help: "Seed for choosing the faces.")
    var seed: UInt64 = 1

    func run() throws {
        let d = try loadData(data)
        let dir = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let labels = FERDataset.labels, side = FERDataset.side, gap = 2
        // grid: one row per emotion
        var rng = SeededGenerator(seed: seed)
        let w = perClass * (side + gap) + gap, h = labels.count * (side + gap) + gap
        var px = [UInt8](repeating: 255, count: w * h)
        for c in 0..<labels.count {
            var rows = (0..<d.count).filter { Int(d.labels[$0]) == c && d.usage[$0] == .training }
            rows.shuffle(using: &rng)
            for (j, r) in rows.prefix(perClass).enumerated() {
                let img = d.image(r), x0 = gap + j * (side + gap), y0 = gap + c * (side + gap)
                for y in 0..<side { for x in 0..<side { px[(y0 + y) * w + x0 + x] = img[y * side + x] } }
            }
        }
        let grid = dir.appendingPathComponent("samples.png")
        try ImageCodec.encodePNG(Image(width: w, height: h, channels: 1, pixels: px)).write(to: grid)
        print("sample grid: \(grid.path) (rows, top to bottom: \(labels.joined(separator: ", ")))")
        for u in Usage.allCases {
            let s = d.subset([u])
            guard s.count > 0 else { continue }
            let f = dir.appendingPathComponent("distribution-\(u.rawValue).svg")
            try Charts.bars(s.classCounts, labels: labels, title: "FER2013 \(u.rawValue): \(s.count) faces per emotion")
                .write(to: f, atomically: true, encoding: .utf8)
            print("\(u.rawValue) \(s.count): " + zip(labels, s.classCounts).map { "\($0) \($1)" }.joined(separator: ", "))
            print("  chart: \(f.path)")
        }
        let norm = Trainer.normalization(of: d.subset([.training]))
        print("Training pixel mean \(fmt(Double(norm.mean))) std \(fmt(Double(norm.std))) (0-1 scale)")
    }
}
