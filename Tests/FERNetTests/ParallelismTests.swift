import Foundation
import XCTest
@testable import FERNet

final class ParallelismTests: XCTestCase {
    /// Inside `Parallelism.serial` a parallel loop runs in one piece on the calling thread; outside
    /// it is split over the workers; other threads are not affected.
    func testSerialRunsParallelLoopsOnThisThread() {
        Parallelism.setThreads(2)
        defer { Parallelism.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        func pieces() -> [Range<Int>] {
            let lock = NSLock()
            var seen: [Range<Int>] = []
            parallelFor(1000) { r in lock.lock(); seen.append(r); lock.unlock() }
            return seen.sorted { $0.lowerBound < $1.lowerBound }
        }
        XCTAssertEqual(pieces(), [0..<500, 500..<1000])
        XCTAssertFalse(Parallelism.isSerialHere)
        Parallelism.serial {
            XCTAssertTrue(Parallelism.isSerialHere)
            XCTAssertEqual(pieces(), [0..<1000])
            var elsewhere = true
            let done = DispatchSemaphore(value: 0)
            Thread { elsewhere = Parallelism.isSerialHere; done.signal() }.start()
            done.wait()
            XCTAssertFalse(elsewhere, "another thread is not serial")
        }
        XCTAssertFalse(Parallelism.isSerialHere)
        XCTAssertEqual(pieces(), [0..<500, 500..<1000])
    }

    /// A pass under `parallelMinimumWork` (one face of `tiny`) runs serially, larger ones (one
    /// face of `vgg`, eight of `tiny`) in parallel; all give the same numbers as the other way, to
    /// rounding: bit for bit on the Xeon hosts (OpenBLAS's SkylakeX kernels), within a few units in
    /// the sixth digit on an AMD EPYC host, whose kernels round the edge blocks of a split matrix
    /// differently (2026-12-02: at most 6e-6 on logits of about 10). A wrong split would be off by
    /// whole units.
    func testPlanGivesTheSameNumbersSerialOrParallel() throws {
        Parallelism.setThreads(2)
        defer { Parallelism.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        var rng = SeededGenerator(seed: 4)
        for (arch, serialFaces) in [(Architecture.tiny, 1), (Architecture.vgg, 0)] {
            let plan = InferencePlan(try Network(specs: arch, input: (1, 48, 48), seed: 3))
            for n in [1, 8] {
                if n <= serialFaces {
                    XCTAssertLessThan(n * plan.macsPerSample, InferencePlan.parallelMinimumWork, "\(n) faces are serial")
                } else {
                    XCTAssertGreaterThanOrEqual(n * plan.macsPerSample, InferencePlan.parallelMinimumWork, "\(n) faces are parallel")
                }
                let x = Tensor(shape: [1, n, 48, 48], data: (0..<(n * 2304)).map { _ in rng.normal() })
                let auto = plan.forward(x).data
                let serial = Parallelism.serial { plan.forward(x).data }
                XCTAssertEqual(auto.count, serial.count)
                let scale = max(1, serial.map(abs).max() ?? 1)
                let worst = zip(auto, serial).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(n) faces: serial and parallel differ by \(worst)")
                XCTAssertFalse(auto.contains { !$0.isFinite })
            }
        }
    }

    /// One model serving several threads at once (ferfilter elements sharing a model file): every
    /// architecture's plan (flatten, dense and unfused batch norm included) gives each thread the
    /// numbers it gives alone. Under `make tsan` this is where a layer writing state during
    /// inference would show.
    func testOnePlanPredictsOnManyThreadsAtOnce() throws {
        var rng = SeededGenerator(seed: 5)
        for arch in [Architecture.tiny, Architecture.seed, Architecture.vgg] {
            let plan = InferencePlan(try Network(specs: arch, input: (1, 48, 48), seed: 3))
            let inputs = (0..<4).map { k in Tensor(shape: [1, 1 + k % 3, 48, 48], data: (0..<((1 + k % 3) * 2304)).map { _ in rng.normal() }) }
            let alone = inputs.map { plan.forward($0).data }
            final class Results: @unchecked Sendable { let lock = NSLock(); var wrong: [Int] = [] }
            let results = Results()
            DispatchQueue.concurrentPerform(iterations: 16) { i in
                let k = i % inputs.count
                if plan.forward(inputs[k]).data != alone[k] { results.lock.lock(); results.wrong.append(i); results.lock.unlock() }
            }
            XCTAssertEqual(results.wrong, [], "\(arch.first?.type ?? "?")...: runs that differ from the single-threaded numbers")
        }
    }

    /// The pool runs every chunk of every job exactly once, job after job with no gap (helpers
    /// spinning) and after pauses long enough for them to sleep; and its helpers really do run
    /// chunks: in each rendezvous job, chunk 0 waits for chunk 1 to start, which only another
    /// thread can do while the caller is held in chunk 0.
    func testWorkerPoolRunsEveryChunkOnceAndWakesItsHelpers() throws {
        let pool = WorkerPool.shared
        try XCTSkipIf(pool.helpers == 0, "one core: the pool has no helpers")
        let lock = NSLock()
        let chunks = pool.helpers + 1
        var counts = [Int](repeating: 0, count: chunks)
        for job in 0..<20_000 {
            var ran = [Int](repeating: 0, count: chunks)
            XCTAssertTrue(pool.run(chunks: chunks) { k in lock.lock(); ran[k] += 1; lock.unlock() })
            if ran != [Int](repeating: 1, count: chunks) { XCTFail("job \(job) ran its chunks \(ran) times"); break }
            for k in 0..<chunks { counts[k] += ran[k] }
        }
        XCTAssertEqual(counts, [Int](repeating: 20_000, count: chunks))

        for round in 0..<20 {
            if round % 2 == 1 { usleep(2_000) }   // ten times the spin: the helpers are asleep
            var started = 0, threads = Set<UInt>()
            let met = pool.run(chunks: 2) { k in
                lock.lock(); started += 1; threads.insert(UInt(pthread_self())); lock.unlock()
                if k == 0 {
                    let deadline = Date().addingTimeInterval(2)
                    while Date() < deadline { lock.lock(); let s = started; lock.unlock(); if s == 2 { break } }
                }
            }
            XCTAssertTrue(met)
            XCTAssertEqual(started, 2)
            XCTAssertEqual(threads.count, 2, "round \(round): chunk 1 ran on another thread while chunk 0 waited")
        }
    }

    /// Several threads calling `parallelFor` at once (one gets the pool, the others Dispatch) all
    /// get their loops run in full, and a loop inside a chunk runs serially on that chunk's thread.
    func testParallelLoopsFromManyThreadsAndNested() {
        Parallelism.setThreads(2)
        defer { Parallelism.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        let group = DispatchGroup(), lock = NSLock()
        var failures: [String] = []
        for caller in 0..<4 {
            group.enter()
            Thread {
                for round in 0..<500 {
                    let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
                    hits.initialize(repeating: 0)
                    defer { hits.deallocate() }
                    var nestedSerial = true
                    parallelFor(10) { outer in
                        for i in outer {
                            parallelFor(100) { inner in
                                if !Parallelism.isSerialHere || inner != 0..<100 { lock.lock(); nestedSerial = false; lock.unlock() }
                                for j in inner { hits[i * 100 + j] += 1 }
                            }
                        }
                    }
                    if hits.contains(where: { $0 != 1 }) || !nestedSerial {
                        lock.lock(); failures.append("caller \(caller) round \(round)"); lock.unlock()
                        break
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        XCTAssertEqual(failures, [])
    }
}
