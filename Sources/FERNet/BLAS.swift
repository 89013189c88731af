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
    /// C[M×N] = alpha · op(A) · op(B) + beta · C, row-major, split over columns of C (rows where C
    /// is taller than wide).
    @inline(__always)
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        // Each part packs the whole of the operand it does not split. With C wider than tall,
        // splitting columns shares out B and repeats A; with C taller than wide (one face's
        // convolutions at 6x6: 384 rows, 36 columns) splitting rows shares out A, the weights.
        let shared = m * n * k >= 1 << 18 && Parallelism.threads > 1 && !Parallelism.isSerialHere
        let byRows = shared && m > n && m >= 32
        let extent = byRows ? m : n
        let parts = shared ? Swift.min(Parallelism.threads, Swift.max(1, extent / 16)) : 1
        if parts <= 1 {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        parallelFor(parts) { r in
            for part in r {
                // block [lo, hi) of rows or columns, kept a multiple of 16 for the kernel
                let lo = (extent * part / parts) & ~15, hi = part == parts - 1 ? extent : (extent * (part + 1) / parts) & ~15
                if hi <= lo { continue }
                if byRows {
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(hi - lo), Int32(n), Int32(k), alpha, a + (transA ? lo : lo * lda), Int32(lda),
                                b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
                } else {
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda),
                                b + (transB ? lo * ldb : lo), Int32(ldb), beta, c + lo, Int32(ldc))
                }
            }
        }
    }

    /// OpenBLAS itself stays single-threaded; `gemm` splits the work over FERNet's threads.
    static func useSingleThreadedKernels() {
        _ = kernels
        openblas_set_num_threads(1)
    }

    /// The kernel set OpenBLAS runs (its "core"), e.g. "Haswell", "SkylakeX", "Zen".
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// OpenBLAS cores (lower case) older than AVX2: on a CPU with AVX2 and FMA, a sign that
    /// OpenBLAS did not recognise it.
    public static let legacyCores: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn",
                                                  "dunnington", "nehalem", "atom", "opteron", "opteron_sse3", "barcelona",
                                                  "bobcat", "nano", "athlon"]

    /// What `kernels` did: nil if OpenBLAS's own choice stands, else the core it was switched to.
    public static var kernelsSwitchedTo: String? { kernels }

    /// OpenBLAS picks its kernels from the CPU's family and model, and a CPU newer than the library
    /// (Debian 12's 0.3.21 on a recent Xeon, for one) gets the fallback for an unknown Intel CPU,
    /// Prescott's SSE3 kernels: 2-6x slower products than the AVX2 or AVX-512 ones the CPU runs.
    /// Where that happens, and OPENBLAS_CORETYPE does not choose, this switches a dynamic-arch
    /// OpenBLAS to the kernels of the CPU's features (SkylakeX with AVX-512, else Haswell with AVX2
    /// and FMA) before any product runs. Once per process.
    private static let kernels: String? = {
        guard getenv("OPENBLAS_CORETYPE") == nil else { return nil }
        guard legacyCores.contains(coreName.lowercased()), gstfer_cpu_has_avx2_fma() != 0 else { return nil }
        // dynamic-arch builds only (Debian's are): the entry points that pick the kernels again
        guard let handle = openBLASHandle(),
              let quit = dlsym(handle, "gotoblas_dynamic_quit"), let initialise = dlsym(handle, "gotoblas_dynamic_init") else { return nil }
        typealias Entry = @convention(c) () -> Void
        let target = gstfer_cpu_has_avx512() != 0 ? "SkylakeX" : "Haswell"
        setenv("OPENBLAS_CORETYPE", target, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(initialise, to: Entry.self)()
        unsetenv("OPENBLAS_CORETYPE")
        return coreName
    }()

    /// A handle on the loaded OpenBLAS library itself, by its soname (`RTLD_NOLOAD`: only if it is
    /// loaded already). `dlopen(nil)` is not enough: in `gst-launch-1.0` the plugin, and OpenBLAS
    /// with it, is loaded with local symbols, which the program's global scope does not see (there
    /// the element ran Prescott's kernels while `fer` ran SkylakeX's).
    static func openBLASHandle() -> UnsafeMutableRawPointer? {
        for name in ["libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so", "libopenblas64_.so.0"] {
            if let handle = dlopen(name, RTLD_NOW | RTLD_NOLOAD), dlsym(handle, "gotoblas_dynamic_init") != nil { return handle }
        }
        return dlopen(nil, RTLD_NOW)
    }

    /// Whether the CPU has AVX2 and FMA, where OpenBLAS should never run a legacy core.
    public static var cpuHasAVX2FMA: Bool { gstfer_cpu_has_avx2_fma() != 0 }

    /// What the element logs once: "OpenBLAS kernels SkylakeX (switched from its fallback for an
    /// unknown CPU)".
    public static var kernelsDescription: String {
        let switched = kernelsSwitchedTo != nil   // first: this makes the switch if it is due
        return "OpenBLAS kernels \(coreName)" + (switched ? " (switched from its fallback for an unknown CPU)" : "")
    }

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
