import ArgumentParser
import FERNet
import FERTraining
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on FER2013 Training rows, choosing the best epoch on PublicTest.",
        discussion: """
        Writes to --output: <name>.json + <name>.weights (the best epoch so far), curves.svg (loss \
        and accuracy per epoch, rewritten each epoch: open it in a browser and reload), \
        checkpoint.* (resume with --resume). PrivateTest rows are never read.
        """)

    @Argument(help: "FER2013: Kaggle CSV (.csv or .csv.gz) or an image-folder copy (train/<emotion>/*.jpg, test/...).")
    var data = Defaults.data

    @Option(help: "Architecture: vgg48 (default; vgg with 48 first-stage filters), vgg (32), vgg64 (64), seed (the original project's), tiny.")
    var arch = Architecture.defaultName
    @Option(help: "Epochs (default 40; with --resume: the new total, default the recorded one).") var epochs: Int?
    @Option(help: "Batch size.") var batchSize = 64
    @Option(help: "Optimizer: adamw, adam or sgd (Nesterov momentum 0.9).") var optimizer = "adamw"
    @Option(help: "Peak learning rate.") var lr: Float = 2e-3
    @Option(help: "Weight decay (conv and dense weights only).") var weightDecay: Float = 5e-4
    @Option(help: "Schedule: cosine (with warm-up), plateau or constant.") var schedule = "cosine"
    @Option(help: "Warm-up epochs for the cosine schedule.") var warmup: Float = 1
    @Option(help: "Label smoothing.") var labelSmoothing: Float = 0.1
    @Flag(help: "Turn augmentation off.") var noAugment = false
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Use only the first N Training rows (quick runs).") var limit: Int?
    @Option(name: .shortAndLong, help: "Output directory.") var output = "runs/fernet"
    @Option(help: "Model name (file stem).") var name = "fernet"
    @Flag(help: "Continue the checkpoint in --output.") var resume = false
    @Flag(help: "Start a new run even where --output holds another run's checkpoint (replacing it and its saved model).")
    var overwrite = false
    @Option(help: ArgumentHelp("Start from this model's weights (same --arch) with a fresh optimizer and schedule: a fine-tune or another cosine cycle. The model card's command then begins with the commands that made it.", valueName: "model.json"))
    var initFrom: String?
    @Option(help: ArgumentHelp("Stochastic weight averaging: from this epoch on, the model evaluated, chosen and saved is the average of the weights at the end of each epoch, batch-norm statistics recomputed on 4096 Training faces. Use after a finished run (--init-from) with --schedule constant.", valueName: "epoch"))
    var swaStart: Int?
    @Option(help: ArgumentHelp("FER+ votes (Microsoft's fer2013new.csv, rows in FER2013's order) to blend into the targets with --ferplus-weight.", valueName: "fer2013new.csv"))
    var ferplus: String?
    @Option(help: ArgumentHelp("Each Training face learns (1-w)·its FER2013 label + w·its FER+ vote distribution over the seven emotions.", valueName: "w"))
    var ferplusWeight: Float = 0.3
    @Option(help: ArgumentHelp("Knowledge distillation: a trained model (FER2013's labels, 48x48) whose probabilities for each Training face (as seen and mirrored, averaged) are blended into the targets with --teacher-weight.", valueName: "model.json"))
    var teacher: String?
    @Option(help: ArgumentHelp("Each Training face learns (1-w)·its FER2013 label + w·the teacher's probabilities.", valueName: "w"))
    var teacherWeight: Float = 0.5
    @Option(help: "Stop after this epoch (the checkpoint stays resumable), e.g. to fit a time slot.") var stopAfter: Int?
    @OptionGroup var threads: ThreadOption

    func run() throws {
        threads.apply()
        if resume && initFrom != nil { throw ValidationError("--init-from starts a new run; --resume continues one: pass one of them") }
        if resume && overwrite { throw ValidationError("--overwrite starts a new run; --resume continues one: pass one of them") }
        let directory = URL(fileURLWithPath: output)
        // before the data is read (Trainer checks both again)
        if resume { try Trainer.requireRun(in: directory) } else if !overwrite { try Trainer.refuseNewRun(in: directory) }
        let all = try loadData(data)
        var train = all.subset([.training])
        if let limit { train = FERDataset(images: Array(train.images.prefix(limit * FERDataset.pixels)),
                                          labels: Array(train.labels.prefix(limit)), usage: Array(train.usage.prefix(limit))) }
        let val = all.subset([.publicTest])
        guard train.count > 0, val.count > 0 else { throw ValidationError("the data needs Training and PublicTest rows") }
        var c = TrainConfig()
        c.architecture = arch; c.epochs = epochs ?? 40; c.batchSize = batchSize; c.optimizer = optimizer
        c.learningRate = lr; c.weightDecay = weightDecay; c.schedule = schedule; c.warmupEpochs = warmup
        c.labelSmoothing = labelSmoothing; c.seed = seed
        if let swaStart {
            guard swaStart >= 1 else { throw ValidationError("--swa-start is an epoch number, 1 or more") }
            c.swaStart = swaStart
        }
        if noAugment { c.augmentation = .none }
        if let teacher, !resume {
            guard ferplus == nil else { throw ValidationError("--teacher and --ferplus both set the soft targets: pass one of them") }
            guard teacherWeight > 0, teacherWeight <= 1 else { throw ValidationError("--teacher-weight must be in (0, 1]") }
            c.teacherFile = teacher; c.teacherWeight = teacherWeight
            stderr("teacher \(teacher): targets \(fmt(Double(1 - teacherWeight), 2)) label + \(fmt(Double(teacherWeight), 2)) its probabilities "
                   + "(computing them for \(train.count) Training faces)")
        }
        var votes: FERPlusVotes?
        if let ferplus, !resume {
            guard ferplusWeight > 0, ferplusWeight <= 1 else { throw ValidationError("--ferplus-weight must be in (0, 1]") }
            let v = try FERPlusVotes.load(ferplus)
            let allTraining = all.usage.lazy.filter { $0 == .training }.count
            guard v.count(.training) == allTraining else {
                throw ValidationError("\(ferplus) has \(v.count(.training)) Training rows, \(data) has \(allTraining): not the same rows")
            }
            let agree = FERPlusVotes.agreement(distributions: v.distributions(.training, limit: train.count), labels: train.labels)
            stderr("FER+ votes: the most-voted emotion is the FER2013 label on \(fmt(agree * 100, 1))% of Training rows; targets "
                   + "\(fmt(Double(1 - ferplusWeight), 2)) label + \(fmt(Double(ferplusWeight), 2)) votes")
            guard agree > 0.4 else { throw ValidationError("\(ferplus) does not look like FER+ votes for these rows (agreement \(fmt(agree, 2)))") }
            c.ferPlusFile = ferplus; c.ferPlusWeight = ferplusWeight
            votes = v
        }
        let t = try Trainer(config: c, train: train, val: val, directory: directory, name: name, resume: resume,
                            resumeEpochs: resume ? epochs : nil,
                            initialModel: initFrom.map { URL(fileURLWithPath: $0) }, votes: votes, overwrite: overwrite)
        t.command = "fer " + CommandLine.arguments.dropFirst().joined(separator: " ")
        t.dataDescription = "FER2013 Training \(train.count) faces; model chosen on PublicTest \(val.count)"
        let cfg = t.state.config
        stderr("training \(cfg.architecture) (\(t.network.parameterCount) parameters, \(t.network.macsPerSample / 1_000_000) M MACs/face) "
               + "on \(train.count) faces, \(cfg.epochs) epochs, batch \(cfg.batchSize), \(cfg.optimizer) lr \(cfg.learningRate), "
               + "\(Parallelism.threads) threads" + (resume ? ", resumed after epoch \(t.state.epochsDone)" : "")
               + (initFrom.map { ", starting from \($0)" } ?? ""))
        // On a terminal the bar is redrawn in place twice a second; into a file or a pipe (nohup,
        // a CI log) it is a line of its own every 30 s, so the log stays readable.
        let terminal = isatty(STDERR_FILENO) != 0, every: TimeInterval = terminal ? 0.5 : 30
        var lastDraw = Date(), drawn = false
        t.onProgress = { p in
            guard (terminal && p.batch == p.batches) || Date().timeIntervalSince(lastDraw) > every else { return }
            lastDraw = Date(); drawn = true
            let frac = Double(p.batch) / Double(p.batches), width = 30
            let bar = String(repeating: "█", count: Int(frac * Double(width))) + String(repeating: "·", count: width - Int(frac * Double(width)))
            let epochTime = p.elapsed / max(frac, 1e-9), eta = epochTime - p.elapsed
            // the rest of the run at this epoch's pace (PublicTest evaluations not counted)
            let runETA = eta + Double(p.epochs - p.epoch) * epochTime
            let line = "epoch \(p.epoch)/\(p.epochs) \(bar) \(p.batch)/\(p.batches) loss \(fmt(p.loss)) acc \(fmt(p.accuracy)) "
                + "\(Int(p.imagesPerSecond)) img/s ETA \(hms(eta))" + (p.epoch < p.epochs ? ", run \(hms(runETA))" : "")
            if terminal { stderr("\r" + line + "  ", terminator: "") } else { stderr(line) }
        }
        t.onEpoch = { r, s in
            if terminal && drawn { stderr("") }
            lastDraw = Date(); drawn = false
            print("epoch \(r.epoch): train loss \(fmt(r.trainLoss)) acc \(fmt(r.trainAccuracy)) | PublicTest loss \(fmt(r.valLoss)) "
                  + "acc \(fmt(r.valAccuracy))" + (r.lastWeightsValAccuracy.map { " (average; last weights \(fmt($0)))" } ?? "") + " | lr \(String(format: "%.2e", r.learningRate)) | \(Int(r.seconds)) s"
                  + (s.bestEpoch == r.epoch ? " | best, saved" : " | best \(fmt(s.bestAccuracy)) at epoch \(s.bestEpoch)"))
            fflush(stdout)
        }
        let url = try t.run(until: stopAfter)
        print("best PublicTest accuracy \(fmt(t.state.bestAccuracy)) at epoch \(t.state.bestEpoch): \(url.path)")
    }
}
