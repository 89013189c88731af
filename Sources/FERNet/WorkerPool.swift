import COpenBLAS
import Foundation
import Synchronization

/// The threads behind `parallelFor`: one helper per extra core, which after each job spins for a
/// short while (`spinNanoseconds`) watching for the next one before it sleeps.
///
/// A forward pass over one face is some thirty parallel loops of 20-300 µs each. Handing each to
/// Dispatch's `concurrentPerform` wakes a sleeping worker every time, and the wake-up costs about
/// as much as the other core saves, so one face ran on one thread. A helper that is still spinning
/// from the previous loop picks the next one up in well under a microsecond.
///
/// One caller at a time holds the pool; a `parallelFor` that finds it held (another thread's
/// loop, e.g. the element's and a test's) uses `concurrentPerform` as before. Work is claimed in
/// the same chunks whoever runs it, so results do not depend on which thread ran what. A loop
/// inside a chunk runs serially on its thread.
final class WorkerPool: @unchecked Sendable {
    /// The process's pool, with `activeProcessorCount - 1` helpers (none on one core, and none
    /// with `FERNET_WORKER_POOL=off`, which leaves every loop to Dispatch, for measuring).
    static let shared = WorkerPool(helpers: ProcessInfo.processInfo.environment["FERNET_WORKER_POOL"] == "off"
                                   ? 0 : ProcessInfo.processInfo.activeProcessorCount - 1)

    /// How long an idle helper spins before it sleeps: long enough to bridge the gaps between the
    /// loops of one forward pass or training step, short enough to cost nothing between frames.
    static let spinNanoseconds: UInt64 = 200_000

    let helpers: Int
    /// Whether a caller is running a job.
    private let held = Atomic<Bool>(false)
    /// The job's generation (high 32 bits), its chunk count (next 16) and the next chunk to claim
    /// (low 16). Claims are compare-and-swaps on the whole word, so a helper that wakes up late
    /// can never claim a chunk of a later job.
    private let state = Atomic<UInt64>(0)
    /// Chunks finished of the current job.
    private let done = Atomic<Int>(0)
    /// Helpers asleep (or about to be) on `condition`.
    private let sleepers = Atomic<Int>(0)
    /// The current job's body; written only while no chunk of any job is unclaimed or running.
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    private init(helpers: Int) {
        self.helpers = Swift.max(0, helpers)
        mutex = .allocate(capacity: 1); pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1); pthread_cond_init(condition, nil)
        for _ in 0..<self.helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.name = "fernet-worker"
            thread.start()
        }
    }

    /// Runs `body(k)` for every k in 0..<chunks on this thread and the helpers, and returns true
    /// when all are done; returns false at once, running nothing, if another caller holds the pool.
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool {
        precondition(chunks > 0 && chunks < 1 << 16)
        guard helpers > 0, held.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { held.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            job = body
            done.store(0, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 32) &+ 1
            state.store(generation << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex); pthread_cond_broadcast(condition); pthread_mutex_unlock(mutex)
            }
            Parallelism.serial { claim(generation: generation) }
            while done.load(ordering: .acquiring) < chunks { fernet_cpu_relax() }
            job = nil
        }
        return true
    }

    /// Claims and runs chunks of job `generation` until none is left.
    private func claim(generation: UInt64) {
        var s = state.load(ordering: .acquiring)
        while s >> 32 == generation, s & 0xFFFF < (s >> 16) & 0xFFFF {
            let (exchanged, original) = state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            if !exchanged { s = original; continue }
            job!(Int(s & 0xFFFF))
            done.add(1, ordering: .releasing)
            s = state.load(ordering: .acquiring)
        }
    }

    private func helperLoop() {
        Parallelism.serial {
            var seen: UInt64 = 0
            while true {
                var spunSince: UInt64 = 0
                while state.load(ordering: .acquiring) >> 32 == seen {
                    let now = DispatchTime.now().uptimeNanoseconds
                    if spunSince == 0 { spunSince = now }
                    if now - spunSince < WorkerPool.spinNanoseconds { fernet_cpu_relax(); continue }
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_lock(mutex)
                    while state.load(ordering: .sequentiallyConsistent) >> 32 == seen { pthread_cond_wait(condition, mutex) }
                    pthread_mutex_unlock(mutex)
                    sleepers.subtract(1, ordering: .relaxed)
                }
                seen = state.load(ordering: .acquiring) >> 32
                claim(generation: seen)
            }
        }
    }
}
