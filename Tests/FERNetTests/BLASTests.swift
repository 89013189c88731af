import COpenBLAS
import XCTest
@testable import FERNet

final class BLASTests: XCTestCase {
    /// On a CPU with AVX2 and FMA, products run on OpenBLAS kernels for them, not on the SSE3
    /// fallback OpenBLAS picks for a CPU it does not know (unless OPENBLAS_CORETYPE chooses).
    func testOpenBLASRunsKernelsForThisCPU() throws {
        _ = Parallelism.threads   // what sets OpenBLAS up
        guard getenv("OPENBLAS_CORETYPE") == nil else { throw XCTSkip("OPENBLAS_CORETYPE chooses the kernels") }
        guard gstfer_cpu_has_avx2_fma() != 0 else { throw XCTSkip("this CPU has no AVX2 and FMA") }
        XCTAssertFalse(BLAS.legacyCores.contains(BLAS.coreName.lowercased()),
                       "OpenBLAS runs \(BLAS.coreName) kernels on a CPU with AVX2 and FMA")
        // and the products are right on them: a 33x47 by 47x29 product against a plain loop
        var rng = SeededGenerator(seed: 4)
        let (m, n, k) = (33, 29, 47)
        let a = (0..<(m * k)).map { _ in rng.normal() }, b = (0..<(k * n)).map { _ in rng.normal() }
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                      beta: 0, c: cp.baseAddress!, ldc: n)
        } } }
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
            XCTAssertEqual(c[i * n + j], s, accuracy: 1e-3)
        } }
    }
}
