// bf16 autocast for longtail's training forward pass (tch 0.24 binds only the deprecated CUDA-only
// `at::autocast::set_enabled`, so CPU autocast needs this shim). Compiled by build.rs whenever it
// builds against a local libtorch; the Rust side is src/model/precision.rs.
//
// The function catches C++ exceptions and returns 0 on success or 1 with the message copied into
// `err` (NUL-terminated, truncated to `err_len`), so no exception crosses into Rust.
#include <ATen/autocast_mode.h>

#include <cstring>
#include <exception>

namespace {
int fail(const char* what, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) {
    std::strncpy(err, what, err_len - 1);
    err[err_len - 1] = '\0';
  }
  return 1;
}
}  // namespace

extern "C" {

// Turn bf16 autocast on or off for one device type (0: CPU, 1: CUDA) on the calling thread.
// Turning it off also clears libtorch's cache of casted weights (one cache for the process): it
// holds bf16 copies of the fp32 parameters, which go stale as soon as the optimiser updates them
// (PyTorch's `autocast` context manager clears it on exit for the same reason).
int longtail_autocast_bf16(int cuda, int enabled, char* err, size_t err_len) {
  try {
    const auto device = cuda != 0 ? at::kCUDA : at::kCPU;
    if (enabled != 0) {
      at::autocast::set_autocast_dtype(device, at::kBFloat16);
      at::autocast::set_autocast_enabled(device, true);
    } else {
      at::autocast::set_autocast_enabled(device, false);
      at::autocast::clear_cache();
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), err, err_len);
  } catch (...) {
    return fail("unknown C++ exception", err, err_len);
  }
}

// Whether autocast is on for the device type on the calling thread (for tests).
int longtail_autocast_enabled(int cuda) {
  return at::autocast::is_autocast_enabled(cuda != 0 ? at::kCUDA : at::kCPU) ? 1 : 0;
}
}
