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

    /// Products big enough to be shared between threads are split by columns of C where it is
    /// wider than tall and by rows where it is taller (one face's 6x6 convolutions): both ways,
    /// with either operand transposed and odd sizes, equal a plain loop.
    func testSplitProductsEqualAPlainLoop() {
        var rng = SeededGenerator(seed: 9)
        for (m, n, k) in [(100, 36, 300), (37, 230, 120), (384, 9, 200)] {
            XCTAssertGreaterThanOrEqual(m * n * k, 1 << 18, "large enough to be split")
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = (0..<(m * k)).map { _ in rng.normal() }, b = (0..<(k * n)).map { _ in rng.normal() }
                let lda = ta ? m : k, ldb = tb ? k : n
                var c = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                              beta: 0, c: cp.baseAddress!, ldc: n)
                } } }
                var worst: Float = 0
                for i in 0..<m { for j in 0..<n {
                    var s: Float = 0
                    for p in 0..<k { s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]) }
                    worst = max(worst, abs(c[i * n + j] - s))
                } }
                XCTAssertLessThan(worst, 2e-3, "\(m)x\(n)x\(k) transA \(ta) transB \(tb)")
            }
        }
    }
}
