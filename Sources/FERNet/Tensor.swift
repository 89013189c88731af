import Foundation

/// A dense float tensor over a flat buffer.
///
/// Layout conventions used across FERNet (documented once here, relied on by every layer):
/// - 4-D activations are **[C, N, H, W]** ("channel-major batch"): every channel of the whole
///   batch is one contiguous block, so a convolution over the batch is a single `cblas_sgemm`
///   and batch normalisation reads each channel contiguously. For one-channel input this is
///   byte-identical to PyTorch's [N, 1, H, W].
/// - 2-D activations are **[N, F]**, row-major, as in PyTorch.
/// - Parameters use PyTorch's layouts: conv weights [Cout, Cin, kH, kW], dense weights [out, in].
public struct Tensor: Sendable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }

    /// Converts a PyTorch-layout [N, C, H, W] buffer to FERNet's [C, N, H, W].
    public static func fromNCHW(_ data: [Float], n: Int, c: Int, h: Int, w: Int) -> Tensor {
        let plane = h * w
        var out = [Float](repeating: 0, count: data.count)
        for ni in 0..<n { for ci in 0..<c {
            let src = (ni * c + ci) * plane, dst = (ci * n + ni) * plane
            for i in 0..<plane { out[dst + i] = data[src + i] }
        } }
        return Tensor(shape: [c, n, h, w], data: out)
    }

    /// Converts FERNet's [C, N, H, W] to PyTorch's [N, C, H, W] order.
    public func toNCHW() -> [Float] {
        precondition(shape.count == 4)
        let c = shape[0], n = shape[1], plane = shape[2] * shape[3]
        var out = [Float](repeating: 0, count: data.count)
        for ni in 0..<n { for ci in 0..<c {
            let src = (ci * n + ni) * plane, dst = (ni * c + ci) * plane
            for i in 0..<plane { out[dst + i] = data[src + i] }
        } }
        return out
    }
}

/// A trainable tensor with its gradient. `decay` marks weights that weight decay applies to
/// (convolution and dense kernels; not biases or batch-norm affine terms).
public final class Parameter {
    public let name: String
    public var shape: [Int]
    public var value: [Float]
    public var grad: [Float]
    public let decay: Bool

    public init(name: String, shape: [Int], value: [Float], decay: Bool) {
        precondition(shape.reduce(1, *) == value.count)
        self.name = name
        self.shape = shape
        self.value = value
        self.grad = [Float](repeating: 0, count: value.count)
        self.decay = decay
    }

    /// Zeroes the gradient (allocating it again after `releaseGradient`).
    public func zeroGrad() {
        if grad.count != value.count { grad = [Float](repeating: 0, count: value.count); return }
        grad.withUnsafeMutableBufferPointer { g in
            for i in g.indices { g[i] = 0 }
        }
    }

    /// Frees the gradient's memory (a model that only predicts); `zeroGrad` allocates it again.
    public func releaseGradient() { grad = [] }
}

/// A non-trainable tensor saved with the model (batch-norm running statistics).
public final class Buffer {
    public let name: String
    public var shape: [Int]
    public var value: [Float]
    public init(name: String, shape: [Int], value: [Float]) {
        self.name = name; self.shape = shape; self.value = value
    }
}

/// Splits `0..<count` into contiguous chunks run concurrently on all cores (`WorkerPool`, or
/// Dispatch while another thread holds the pool). A loop inside a chunk runs in one piece.
@inline(__always)
public func parallelFor(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let workers = Swift.min(Parallelism.threads, Swift.max(1, count / Swift.max(1, minChunk)))
    if workers <= 1 || Parallelism.isSerialHere { body(0..<count); return }
    let chunks = workers
    func chunk(_ k: Int) {
        let lo = count * k / chunks, hi = count * (k + 1) / chunks
        if lo < hi { body(lo..<hi) }
    }
    if chunks <= WorkerPool.shared.helpers + 1 && WorkerPool.shared.run(chunks: chunks, chunk) { return }
    DispatchQueue.concurrentPerform(iterations: chunks) { k in Parallelism.serial { chunk(k) } }
}

/// Marks a thread as running `Parallelism.serial`: a pthread key whose value is non-nil there.
private let serialKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// A thread's own limit on `Parallelism.threads` (`withThreads`): the count, as a pointer's bits.
private let limitKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Thread counts for FERNet's own loops and OpenBLAS: process-wide, or per caller.
public enum Parallelism {
    /// Runs `body` with every `parallelFor` it reaches on this thread run in one piece, on this
    /// thread: for work too small to pay for waking the other cores (one face's small layers).
    /// Other threads are unaffected.
    public static func serial<T>(_ body: () throws -> T) rethrows -> T {
        let was = pthread_getspecific(serialKey)
        pthread_setspecific(serialKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(serialKey, was) }
        return try body()
    }

    /// Whether this thread is inside `serial`.
    public static var isSerialHere: Bool { pthread_getspecific(serialKey) != nil }

    nonisolated(unsafe) private static var processThreads: Int = {
        BLAS.useSingleThreadedKernels()
        BLAS.tuneAllocator()
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Threads FERNet's loops (and so its OpenBLAS calls, each single-threaded) use here: the
    /// innermost `withThreads` on this thread, else the process-wide `setThreads` value (one per
    /// core by default).
    public static var threads: Int {
        if let local = pthread_getspecific(limitKey) { return Int(bitPattern: local) }
        return processThreads
    }

    /// Runs `body` with `threads` equal to `n` (at least 1) on this thread only; other threads,
    /// and other elements of the same process, keep their own. `n` 0: one per core.
    public static func withThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
        let count = n > 0 ? n : ProcessInfo.processInfo.activeProcessorCount
        _ = processThreads   // the one-time OpenBLAS set-up
        let was = pthread_getspecific(limitKey)
        pthread_setspecific(limitKey, UnsafeRawPointer(bitPattern: count))
        defer { pthread_setspecific(limitKey, was) }
        return try body()
    }

    /// Sets the number of threads used by FERNet loops and by OpenBLAS.
    public static func setThreads(_ n: Int) {
        processThreads = Swift.max(1, n)
        BLAS.useSingleThreadedKernels()
        BLAS.tuneAllocator()
    }
}
