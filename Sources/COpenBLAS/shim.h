// OpenBLAS's CBLAS interface (Debian: libopenblas-dev installs it as <cblas.h>).
#include <cblas.h>

// CPU features, for choosing OpenBLAS kernels where its own detection does not know the CPU.
static inline int gstfer_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static inline int gstfer_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

// A spin-wait hint (x86 PAUSE), for FERNet's worker pool; nothing elsewhere.
static inline void fernet_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
