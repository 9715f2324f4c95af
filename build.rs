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
    record_build_commit();
    println!("cargo:rustc-check-cfg=cfg(longtail_cuda_graphs)");
    println!("cargo:rustc-check-cfg=cfg(longtail_autocast)");
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
        println!("cargo:rustc-link-search=native={}", lib.display());
        compile_autocast_shim(&root);
        if std::env::var("LONGTAIL_CUDA").as_deref() == Ok("1") {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
            compile_cuda_graph_shim(&root);
        }
    }
}

/// CUDA graphs (`csrc/cuda_graph.cpp`, see src/train/cuda_graph.rs): compiled against the same
/// libtorch headers, with the C++ ABI libtorch was built with. The CUDA runtime headers come from
/// `CUDA_INCLUDE`, else from the `nvidia` wheels beside the PyPI torch package.
fn compile_cuda_graph_shim(torch: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/cuda_graph.cpp");
    println!("cargo:rerun-if-env-changed=CUDA_INCLUDE");
    let cuda_include = std::env::var("CUDA_INCLUDE").map(PathBuf::from).ok().or_else(|| {
        let nvidia = torch.parent()?.join("nvidia");
        ["cu13", "cu12", "cuda_runtime"]
            .iter()
            .map(|d| nvidia.join(d).join("include"))
            .find(|p| p.join("cuda_runtime_api.h").exists())
    });
    let Some(cuda_include) = cuda_include else {
        panic!(
            "LONGTAIL_CUDA=1: cuda_runtime_api.h not found beside {}; set CUDA_INCLUDE to the CUDA include directory",
            torch.display()
        );
    };
    let abi = cxx11_abi();
    cc::Build::new()
        .cpp(true)
        .file("csrc/cuda_graph.cpp")
        .include(torch.join("include"))
        .include(&cuda_include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-w")
        .compile("longtail_cuda_graph");
    for lib in ["torch_cuda", "c10_cuda", "torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:rustc-cfg=longtail_cuda_graphs");
}

/// bf16 autocast (`csrc/autocast.cpp`, see src/model/precision.rs): tch binds only the deprecated
/// CUDA-only switch, so CPU autocast goes through this shim. It needs only libtorch's headers.
fn compile_autocast_shim(torch: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    // Re-run when the header appears or changes (a missing path re-runs every build, which is
    // what a libtorch without headers needs once they are installed).
    let header = torch.join("include/ATen/autocast_mode.h");
    println!("cargo:rerun-if-changed={}", header.display());
    if !header.exists() {
        // A libtorch without headers still builds longtail; `train.precision = "bf16"` then
        // fails with a message that says why.
        println!("cargo:warning=libtorch at {} has no ATen headers: bf16 autocast disabled", torch.display());
        return;
    }
    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .include(torch.join("include"))
        .include(torch.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi()))
        .flag("-w")
        .compile("longtail_autocast");
    for lib in ["torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    println!("cargo:rustc-cfg=longtail_autocast");
}

/// The C++ ABI libtorch was built with: torch-sys's variable, else the C++11 ABI that PyPI wheels
/// use since torch 2.7 (2.11.0+cu130 reports True).
fn cxx11_abi() -> String {
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into())
}

/// The commit the sources come from, for run metadata (`run::git_commit`): HEAD, with `-dirty`
/// when a tracked source file differs from it; "unknown" outside a git checkout. Re-run after a
/// commit or checkout (.git/logs/HEAD) and after any source change.
fn record_build_commit() {
    const SOURCES: [&str; 5] = ["src", "csrc", "build.rs", "Cargo.toml", "Cargo.lock"];
    for path in SOURCES.iter().chain(&[".git/HEAD", ".git/logs/HEAD"]) {
        println!("cargo:rerun-if-changed={path}");
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(SOURCES);
            let dirty = git(&status).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{head}-dirty")
            } else {
                head
            }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=LONGTAIL_BUILD_COMMIT={commit}");
}
