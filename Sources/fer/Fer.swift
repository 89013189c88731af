import ArgumentParser
import FERNet
import FERTraining
import Foundation

@main
struct Fer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fer",
        abstract: "Train, evaluate, explore and benchmark GstFER's facial expression models.",
        subcommands: [Explore.self, Train.self, Eval.self, Predict.self, Detect.self, Scene.self, Card.self, RecomputeStats.self, CropCheck.self, Bench.self, Rtsp.self, Serve.self, Fuzz.self])
}

/// Where the project keeps its data and models, relative to the checkout.
enum Defaults {
    static let data = "../shared/data/fer2013/fer2013.csv.gz"
    static let model = "Models/fernet.json"
    static let yunet = "Models/face_detection_yunet_2023mar.onnx"
}

struct ThreadOption: ParsableArguments {
    @Option(help: "Threads for FERNet and OpenBLAS (default: all cores).")
    var threads: Int?

    func apply() { Parallelism.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount) }
}

func loadData(_ path: String) throws -> FERDataset {
    let t0 = Date()
    let d = try FERDataset.load(path)
    let counts = Usage.allCases.map { u in "\(u.rawValue) \(d.usage.filter { $0 == u }.count)" }.joined(separator: ", ")
    stderr("loaded \(d.count) faces from \(path) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s (\(counts))")
    return d
}

func stderr(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write((s + terminator).data(using: .utf8)!)
}

func fmt(_ v: Double, _ d: Int = 4) -> String { String(format: "%.\(d)f", v) }

func hms(_ s: Double) -> String {
    let t = Int(s.rounded()); return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
}

func printReport(_ c: Confusion) {
    print("label      precision  recall     f1  support")
    for r in c.perClass {
        print(r.label.padding(toLength: 10, withPad: " ", startingAt: 0) + " " +
              [r.precision, r.recall, r.f1].map { fmt($0).leftPad(9) }.joined(separator: " ") + String(r.support).leftPad(9))
    }
    print("macro-F1: \(fmt(c.macroF1))")
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
