// CUDA graph capture and replay for longtail (tch binds neither `at::cuda::CUDAGraph` nor CUDA
// streams). Compiled by build.rs only when LONGTAIL_CUDA=1; the Rust side is
// src/train/cuda_graph.rs.
//
// Capture must happen on a non-default stream, and everything the captured work will need
// (cuBLAS/cuDNN handles and workspaces, momentum buffers, gradients) must already exist on that
// stream, so a graph owns a side stream and the Rust code runs its warm-up steps there too:
// `enter` makes the side stream current, `leave` restores the previous one. Both synchronise the
// device so the two streams never overlap (they run only around warm-up and capture, not per step).
//
// Every function catches C++ exceptions and returns 0 on success or 1 with the message copied into
// `err` (NUL-terminated, truncated to `err_len`), so no exception crosses into Rust.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <cstring>
#include <memory>
#include <exception>
#include <optional>

namespace {

// One side stream for the object's whole life: a re-capture (`reset`, then capture again) runs on
// the stream whose handles and workspaces the warm-up already created.
struct Graph {
  std::unique_ptr<at::cuda::CUDAGraph> graph = std::make_unique<at::cuda::CUDAGraph>();
  c10::cuda::CUDAStream side;
  std::optional<c10::cuda::CUDAStream> previous;
  c10::DeviceIndex previous_device = 0;
  explicit Graph(c10::DeviceIndex device) : side(c10::cuda::getStreamFromPool(false, device)) {}
};

int fail(const char* what, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) {
    std::strncpy(err, what, err_len - 1);
    err[err_len - 1] = '\0';
  }
  return 1;
}

template <typename F>
int guarded(char* err, size_t err_len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), err, err_len);
  } catch (...) {
    return fail("unknown C++ exception", err, err_len);
  }
}

}  // namespace

extern "C" {

int longtail_cuda_graph_new(int device, void** out, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { *out = new Graph(static_cast<c10::DeviceIndex>(device)); });
}

void longtail_cuda_graph_free(void* g) { delete static_cast<Graph*>(g); }

int longtail_cuda_graph_enter(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* graph = static_cast<Graph*>(g);
    if (graph->previous) throw std::runtime_error("the graph's side stream is already current");
    // Capture reads the current stream of the current device, so the graph's device becomes
    // current too (it matters for cuda:N with N > 0).
    graph->previous_device = c10::cuda::current_device();
    c10::cuda::set_device(graph->side.device_index());
    c10::cuda::device_synchronize();
    graph->previous = c10::cuda::getCurrentCUDAStream(graph->side.device_index());
    c10::cuda::setCurrentCUDAStream(graph->side);
  });
}

int longtail_cuda_graph_leave(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* graph = static_cast<Graph*>(g);
    if (!graph->previous) throw std::runtime_error("the graph's side stream is not current");
    c10::cuda::device_synchronize();
    c10::cuda::setCurrentCUDAStream(*graph->previous);
    graph->previous.reset();
    c10::cuda::set_device(graph->previous_device);
  });
}

int longtail_cuda_graph_capture_begin(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { static_cast<Graph*>(g)->graph->capture_begin(); });
}

int longtail_cuda_graph_capture_end(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { static_cast<Graph*>(g)->graph->capture_end(); });
}

// Replays on the current stream (the default stream once `leave` has run), so replays, eager
// steps and evaluation stay in one order without further synchronisation.
int longtail_cuda_graph_replay(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { static_cast<Graph*>(g)->graph->replay(); });
}

// Drop the recorded graph (and its memory pool, once its outputs are freed) and start an empty
// one on the same side stream, for a step whose loss changed.
int longtail_cuda_graph_reset(void* g, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto* graph = static_cast<Graph*>(g);
    c10::cuda::device_synchronize();
    graph->graph = std::make_unique<at::cuda::CUDAGraph>();
  });
}

}  // extern "C"
