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

    /// One face runs serially and eight in parallel; both give the same numbers as the other way.
    func testPlanGivesTheSameNumbersSerialOrParallel() throws {
        Parallelism.setThreads(2)
        defer { Parallelism.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        let net = try Network(specs: Architecture.vgg, input: (1, 48, 48), seed: 3)
        let plan = InferencePlan(net)
        XCTAssertLessThan(1 * plan.macsPerSample, InferencePlan.parallelMinimumWork, "one face is serial")
        XCTAssertGreaterThanOrEqual(8 * plan.macsPerSample, InferencePlan.parallelMinimumWork, "eight faces are parallel")
        var rng = SeededGenerator(seed: 4)
        for n in [1, 8] {
            let x = Tensor(shape: [1, n, 48, 48], data: (0..<(n * 2304)).map { _ in rng.normal() })
            let auto = plan.forward(x).data
            let serial = Parallelism.serial { plan.forward(x).data }
            XCTAssertEqual(auto, serial, "\(n) faces")
            XCTAssertFalse(auto.contains { !$0.isFinite })
        }
    }
}
