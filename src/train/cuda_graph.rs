//! A CUDA graph: record a sequence of kernels once, then launch it with one call. tch binds neither
//! `at::cuda::CUDAGraph` nor CUDA streams, so this wraps the C++ shim `csrc/cuda_graph.cpp`, which
//! build.rs compiles only for CUDA builds (`LONGTAIL_CUDA=1`, cfg `longtail_cuda_graphs`). In other
//! builds [`CudaGraph::new`] returns an error that says how to get one.
use std::fmt;

/// An error from the shim (libtorch's own message) or from a build without graph support.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError(pub String);

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CUDA graph: {}", self.0)
    }
}

impl std::error::Error for GraphError {}

#[cfg(longtail_cuda_graphs)]
mod ffi {
    use std::os::raw::{c_char, c_int, c_void};
    extern "C" {
        pub fn longtail_cuda_graph_new(device: c_int, out: *mut *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_free(g: *mut c_void);
        pub fn longtail_cuda_graph_enter(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_leave(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_capture_begin(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_capture_end(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_replay(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
        pub fn longtail_cuda_graph_reset(g: *mut c_void, err: *mut c_char, len: usize) -> c_int;
    }
}

/// A graph (recorded or not yet) with its side stream (see the shim for why capture needs one).
pub struct CudaGraph {
    #[cfg(longtail_cuda_graphs)]
    ptr: *mut std::os::raw::c_void,
    /// Without graph support no value of this type can exist.
    #[cfg(not(longtail_cuda_graphs))]
    never: std::convert::Infallible,
}

/// The shim's operations on an existing graph.
#[derive(Clone, Copy)]
enum Op {
    Enter,
    Leave,
    CaptureBegin,
    CaptureEnd,
    Replay,
    Reset,
}

/// Each operation once, for every build; [`CudaGraph::run`] is the only part that differs.
impl CudaGraph {
    /// Make the graph's side stream current (for warm-up steps and capture).
    pub fn enter(&mut self) -> Result<(), GraphError> {
        self.run(Op::Enter)
    }

    /// Restore the stream that was current before [`CudaGraph::enter`].
    pub fn leave(&mut self) -> Result<(), GraphError> {
        self.run(Op::Leave)
    }

    pub fn capture_begin(&mut self) -> Result<(), GraphError> {
        self.run(Op::CaptureBegin)
    }

    pub fn capture_end(&mut self) -> Result<(), GraphError> {
        self.run(Op::CaptureEnd)
    }

    pub fn replay(&mut self) -> Result<(), GraphError> {
        self.run(Op::Replay)
    }

    /// Forget the recorded graph; the next capture records a new one on the same side stream.
    pub fn reset(&mut self) -> Result<(), GraphError> {
        self.run(Op::Reset)
    }
}

/// Call a shim function with an error buffer; its message on failure.
#[cfg(longtail_cuda_graphs)]
fn call(f: impl FnOnce(*mut std::os::raw::c_char, usize) -> std::os::raw::c_int) -> Result<(), GraphError> {
    let mut buf = vec![0u8; 1024];
    if f(buf.as_mut_ptr().cast(), buf.len()) == 0 {
        return Ok(());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Err(GraphError(String::from_utf8_lossy(&buf[..end]).into_owned()))
}

#[cfg(longtail_cuda_graphs)]
impl CudaGraph {
    /// Whether this binary can capture graphs at all.
    pub const SUPPORTED: bool = true;

    pub fn new(device: usize) -> Result<Self, GraphError> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: the shim writes a valid pointer into `ptr` when it returns 0.
        call(|e, n| unsafe { ffi::longtail_cuda_graph_new(device as i32, &mut ptr, e, n) })?;
        Ok(CudaGraph { ptr })
    }

    fn run(&mut self, op: Op) -> Result<(), GraphError> {
        let f = match op {
            Op::Enter => ffi::longtail_cuda_graph_enter,
            Op::Leave => ffi::longtail_cuda_graph_leave,
            Op::CaptureBegin => ffi::longtail_cuda_graph_capture_begin,
            Op::CaptureEnd => ffi::longtail_cuda_graph_capture_end,
            Op::Replay => ffi::longtail_cuda_graph_replay,
            Op::Reset => ffi::longtail_cuda_graph_reset,
        };
        // SAFETY: `ptr` came from `longtail_cuda_graph_new` and is freed only in Drop.
        call(|e, n| unsafe { f(self.ptr, e, n) })
    }
}

#[cfg(longtail_cuda_graphs)]
impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `longtail_cuda_graph_new` and is not used after this.
        unsafe { ffi::longtail_cuda_graph_free(self.ptr) }
    }
}

#[cfg(not(longtail_cuda_graphs))]
impl CudaGraph {
    /// Whether this binary can capture graphs at all.
    pub const SUPPORTED: bool = false;

    pub fn new(_device: usize) -> Result<Self, GraphError> {
        Err(GraphError(
            "this longtail was built without CUDA graph support; rebuild it with LONGTAIL_CUDA=1 \
             against a CUDA libtorch (README, \"GPU\")"
                .into(),
        ))
    }

    fn run(&mut self, _op: Op) -> Result<(), GraphError> {
        match self.never {}
    }
}
