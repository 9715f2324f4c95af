//! Fetch an official CIFAR archive: stream it with a progress bar while hashing, check the MD5,
//! extract into a temporary folder beside the destination and rename it into place, so a
//! half-finished download or extraction never looks like a complete dataset.
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

use super::cifar::{Cifar, DataError};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// Download `url` (expected MD5 `md5`) and extract it under `parent`, which then holds
/// `kind.folder()`. Returns the extracted release folder. An existing folder is left alone.
pub fn download(kind: Cifar, url: &str, md5: &str, parent: &Path, show_progress: bool) -> Result<PathBuf, DataError> {
    let target = parent.join(kind.folder());
    if target.join(kind.train_files()[0].name).is_file() {
        return Ok(target);
    }
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let fail = |reason: String| DataError::Download { url: url.to_string(), reason };
    let response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let total: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());
    let archive = parent.join(format!(".{}.download", kind.folder()));
    let pb = if show_progress { ProgressBar::new(total.unwrap_or(0)) } else { ProgressBar::hidden() };
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(format!("downloading {}", kind.name()));
    let mut hasher = Md5::new();
    {
        let mut reader = response.into_reader();
        let mut out = File::create(&archive).map_err(io_err(&archive))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(&archive))?;
            pb.inc(n as u64);
        }
        out.sync_all().map_err(io_err(&archive))?;
    }
    pb.finish_and_clear();
    let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if actual != md5 {
        let _ = fs::remove_file(&archive);
        return Err(DataError::BadChecksum { path: archive, actual, expected: md5.to_string() });
    }
    let staging = parent.join(format!(".{}.extract", kind.folder()));
    let _ = fs::remove_dir_all(&staging);
    let extracted = (|| -> std::io::Result<()> {
        let gz = flate2::read::GzDecoder::new(File::open(&archive)?);
        tar::Archive::new(gz).unpack(&staging)
    })();
    let _ = fs::remove_file(&archive);
    if let Err(e) = extracted {
        let _ = fs::remove_dir_all(&staging);
        return Err(fail(format!("cannot extract the archive: {e}")));
    }
    let inner = staging.join(kind.folder());
    if !inner.join(kind.train_files()[0].name).is_file() {
        let _ = fs::remove_dir_all(&staging);
        return Err(fail(format!("the archive has no {}/{}", kind.folder(), kind.train_files()[0].name)));
    }
    fs::rename(&inner, &target).map_err(io_err(&target))?;
    let _ = fs::remove_dir_all(&staging);
    Ok(target)
}
