//! Link-time glue for libtorch, so that `cargo build` output runs without anyone exporting
//! LD_LIBRARY_PATH: we bake an rpath to the libtorch we built against (`LIBTORCH`, set by
//! `.cargo/config.toml` to the `.libtorch` link that `scripts/setup.sh` creates).
//!
//! CUDA: libtorch registers its CUDA backend from `libtorch_cuda.so` at load time. The linker
//! drops that library by default because no symbol of ours references it, and then
//! `tch::Cuda::is_available()` is silently false on a GPU machine. `LONGTAIL_CUDA=1` at build
//! time keeps it linked. It is opt-in because a CPU-only install lacks the CUDA libraries that
//! `libtorch_cuda.so` itself needs, and the binary would then fail to start.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LONGTAIL_CUDA");
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(root) = std::env::var("LIBTORCH") {
        let root = PathBuf::from(&root);
        let root = root.canonicalize().unwrap_or(root);
        let lib = root.join("lib");
        // Record which libtorch this binary was built against, for run metadata.
        let version = std::fs::read_to_string(root.join("version.py"))
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("__version__")).map(|l| l.to_string()))
            .and_then(|l| l.split('\'').nth(1).map(|v| v.to_string()))
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env=LONGTAIL_LIBTORCH_VERSION={version}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        if std::env::var("LONGTAIL_CUDA").as_deref() == Ok("1") {
            println!("cargo:rustc-link-search=native={}", lib.display());
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
