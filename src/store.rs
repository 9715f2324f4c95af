//! The ground floor: atomic file writes, JSON files, and the provenance every number carries
//! (command line, build commit, machine, engine, time). It imports nothing of the crate, so
//! every layer above may use it.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Write `bytes` to `path` atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = (|| -> Result<()> {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))
    })();
    if let Err(e) = written {
        // A full disk leaves no half-written temporary behind; the file it would replace is intact.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// The file beside `path` holding its SHA-256, in `sha256sum`'s format (`sha256sum -c` reads it).
pub fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sha256");
    path.with_file_name(name)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// [`atomic_write`] with a checksum beside the file. The old checksum goes first and the new one
/// comes last, so at no moment does a checksum stand beside other bytes than its own (a file
/// without one is read unchecked, as files written before checksums are).
pub fn atomic_write_checked(path: &Path, bytes: &[u8]) -> Result<()> {
    let sidecar = checksum_path(path);
    match fs::remove_file(&sidecar) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", sidecar.display()));
        }
        _ => {}
    }
    atomic_write(path, bytes)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    atomic_write(&sidecar, format!("{}  {name}\n", sha256_hex(bytes)).as_bytes())
}

/// Read a file, checked against its checksum when it has one: a flipped byte is an error
/// naming the file, never other numbers.
pub fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_regular(path).with_context(|| format!("cannot read {}", path.display()))?;
    verify_checksum(path, &bytes)?;
    Ok(bytes)
}

/// `bytes` (the content of `path`) against the checksum beside it; no checksum, no check.
pub fn verify_checksum(path: &Path, bytes: &[u8]) -> Result<()> {
    let sidecar = checksum_path(path);
    let text = match read_regular_string(&sidecar) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sidecar.display())),
    };
    let expected = text.split_whitespace().next().unwrap_or_default();
    let actual = sha256_hex(bytes);
    if expected != actual {
        bail!(
            "{} does not match its checksum in {} (SHA-256 {actual}, recorded {expected}): it changed after it was \
             written (a flipped bit, a partial copy, an edit). Restore it from a copy",
            path.display(),
            sidecar.display()
        );
    }
    Ok(())
}

/// [`write_json`] with a checksum beside the file ([`atomic_write_checked`]).
pub fn write_json_checked<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    atomic_write_checked(path, text.as_bytes())
}

/// The checksum list of a folder of published results, in `sha256sum`'s format.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// A line of a `sha256sum` list: (checksum, file name).
fn sums_entry(line: &str) -> Option<(&str, &str)> {
    let (hash, name) = line.split_once(' ')?;
    Some((hash, name.trim_start_matches([' ', '*'])))
}

fn read_sums(sums: &Path) -> Result<String> {
    match read_regular_string(sums) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", sums.display())),
    }
}

/// Record the checksum of `bytes`, the new content of `path`, in its folder's `SHA256SUMS`
/// (replacing the file's old line; lines sorted by name, as `sha256sum *.json` writes them).
pub fn record_in_sums(path: &Path, bytes: &[u8]) -> Result<()> {
    let sums = path.with_file_name(SUMS_FILE);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let old = read_sums(&sums)?;
    let mut lines: Vec<String> =
        old.lines().filter(|l| sums_entry(l).is_some_and(|(_, n)| n != name)).map(str::to_string).collect();
    lines.push(format!("{}  {name}", sha256_hex(bytes)));
    lines.sort_by(|a, b| sums_entry(a).map(|e| e.1).cmp(&sums_entry(b).map(|e| e.1)));
    atomic_write(&sums, format!("{}\n", lines.join("\n")).as_bytes())
}

/// `bytes` (the content of `path`) against its line in its folder's `SHA256SUMS`, if listed.
pub fn verify_listed(path: &Path, bytes: &[u8]) -> Result<()> {
    let sums = path.with_file_name(SUMS_FILE);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let text = read_sums(&sums)?;
    let Some((expected, _)) = text.lines().filter_map(sums_entry).find(|(_, n)| *n == name) else {
        return Ok(());
    };
    let actual = sha256_hex(bytes);
    if expected != actual {
        bail!(
            "{} does not match its line in {} (SHA-256 {actual}, recorded {expected}): a published result changed \
             after `longtail publish` wrote it. Restore it (git checkout), or publish the run again",
            path.display(),
            sums.display()
        );
    }
    Ok(())
}

/// Remove a file and its checksum (a rolling checkpoint the next one replaced).
pub fn remove_with_checksum(path: &Path) {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(checksum_path(path));
}

/// A sibling temp path for atomic writes of `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

/// Read a whole file that must be a regular file. A FIFO, a device or a folder where a file
/// belongs is an error that says so: opening a FIFO for reading waits for a writer forever.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let kind = fs::metadata(path)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("it is {what}")));
    }
    fs::read(path)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_string(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Read a JSON record, checked against its checksum and its folder's `SHA256SUMS` where it has
/// them (a run's summary, a published result).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = read_checked(path)?;
    verify_listed(path, &bytes)?;
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid {}", path.display(), std::any::type_name::<T>()))
}

/// When, how and where a number was measured after training (`eval --timing`,
/// `eval --precise-bn`): the fields every such file carries, flattened into its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub measured_at: String,
    /// The command line that measured it, as typed.
    pub command: String,
    /// The commit of the binary (see [`git_commit`]).
    pub commit: String,
    pub device: String,
}

impl Provenance {
    /// This process, now, on `device`.
    pub fn now(device: tch::Device) -> Self {
        Provenance {
            measured_at: now_utc(),
            command: shell_command(),
            commit: git_commit(),
            device: format!("{device:?}"),
        }
    }
}

/// This process's command line, quoted where a shell would need it, for citing a result.
pub fn shell_command() -> String {
    std::env::args()
        .map(|a| if a.contains(char::is_whitespace) || a.is_empty() { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commit this binary was built from (build.rs: `git rev-parse HEAD`, with `-dirty` when
/// tracked sources differed from it), not the working directory's: a copied binary run later,
/// or from another checkout, still names the code that computed the run.
pub fn git_commit() -> String {
    option_env!("LONGTAIL_BUILD_COMMIT").unwrap_or("unknown").to_string()
}

/// CPU model and thread count (or the GPU), for citing where a number came from.
pub fn machine_description(device: tch::Device) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let host = match device {
        tch::Device::Cuda(i) => format!("CUDA device {i}; host "),
        _ => String::new(),
    };
    format!("{host}{cpu}, {cores} cores, {} torch threads", tch::get_num_threads())
}

pub fn engine_description() -> String {
    format!("tch 0.24.0, libtorch {}", option_env!("LONGTAIL_LIBTORCH_VERSION").unwrap_or("unknown"))
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant), valid for the Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        atomic_write(&p, b"old").unwrap();
        atomic_write(&p, b"new contents").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn timestamp_shape() {
        let t = now_utc();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn the_build_commit_is_the_checkout_head() {
        // cargo rebuilds after every commit (build.rs watches .git/logs/HEAD), so a test binary
        // always carries the HEAD it was built at; a copied or stale binary would not match.
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            Some(h) => assert!(git_commit() == h || git_commit() == format!("{h}-dirty"), "{} vs {h}", git_commit()),
            None => assert_eq!(git_commit(), "unknown"),
        }
    }
}
