import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Typed wrappers over the OpenBLAS calls FERNet uses. All matrices are row-major.
///
/// OpenBLAS runs single-threaded here; FERNet splits each product into column blocks over its own
/// worker threads. (OpenBLAS's own pool spin-yields against FERNet's parallel loops and lost a
/// quarter of the time to `sched_yield` when both were on.)
public enum BLAS {
    /// C[M×N] = alpha · op(A) · op(B) + beta · C, row-major, split over columns of C.
    @inline(__always)
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let work = m * n * k
        let parts = work < 1 << 18 ? 1 : Swift.min(Parallelism.threads, Swift.max(1, n / 16))
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        if parts <= 1 {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        parallelFor(parts) { r in
            for part in r {
                // column block [lo, hi), kept a multiple of 16 wide for the kernel
                let lo = (n * part / parts) & ~15, hi = part == parts - 1 ? n : (n * (part + 1) / parts) & ~15
                if hi <= lo { continue }
                let bOff = transB ? lo * ldb : lo
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda),
                            b + bOff, Int32(ldb), beta, c + lo, Int32(ldc))
            }
        }
    }

    /// OpenBLAS itself stays single-threaded; `gemm` splits the work over FERNet's threads.
    static func useSingleThreadedKernels() { openblas_set_num_threads(1) }

    /// Keeps large buffers in the heap instead of fresh mmaps, so per-batch allocations reuse
    /// memory rather than page-faulting it in each time.
    static func tuneAllocator() {
        #if os(Linux)
        _ = glibcMallopt(-3, 1 << 30)   // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
        #endif
    }
}

#if os(Linux)
/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
