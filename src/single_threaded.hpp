#pragma once
// One intra-op and BLAS thread for the calling thread, for a scope (internal header).

namespace ddtrain::detail {

// OpenMP's thread-count setting of the calling thread, which LibTorch's OpenMP intra-op pool and
// an OpenMP build of OpenBLAS follow (weak: absent when no OpenMP runtime is loaded).
extern "C" int omp_get_max_threads() __attribute__((weak));
extern "C" void omp_set_num_threads(int) __attribute__((weak));

/// Makes the parallel regions and BLAS calls started from this thread single-threaded for its
/// lifetime. Uses: work too small to gain from threads (a fused-loss chunk), and evaluations
/// that must give the same bits for any thread count (a reduction or a matrix product split
/// over threads adds in another order).
class SingleThreadedSection {
 public:
  SingleThreadedSection() {
    if (omp_get_max_threads && omp_set_num_threads) {
      saved_ = omp_get_max_threads();
      if (saved_ != 1) omp_set_num_threads(1);
    }
  }
  ~SingleThreadedSection() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  SingleThreadedSection(const SingleThreadedSection&) = delete;
  SingleThreadedSection& operator=(const SingleThreadedSection&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace ddtrain::detail
