//! TensorBoard event files, so a run can be watched the way PyTorch users watch theirs
//! (`tensorboard --logdir runs/`). Each training invocation writes its own file,
//! `<run>/tensorboard/events.out.tfevents.<seconds>.<host>.<pid>`, as PyTorch's SummaryWriter
//! does; a resumed invocation starts its file with a `SessionLog.START` at the step it resumes
//! from, which tells TensorBoard to drop what an earlier file wrote from that step on (the steps
//! after the last checkpoint, trained again).
//!
//! No maintained Rust crate writes this format (tensorboard-rs is marked inactive by its author,
//! syntaxdot-summary has not been released since 2022), and scalars need little: a TFRecord
//! (length, masked CRC-32C of the length, bytes, masked CRC-32C of the bytes) around a hand-encoded
//! `Event` protobuf (tensorflow/core/util/event.proto, tensorflow/core/framework/summary.proto).
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::run::EpochRecord;
use crate::score::metrics::Accuracy;

/// Folder of a run's event files.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// One invocation's event file.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `<run_dir>/tensorboard/`; `resumed_at` is the first global step a
    /// resumed invocation trains (`None` for a fresh run): what earlier files hold from it on
    /// was trained after the checkpoint this invocation continues from.
    pub fn create(run_dir: &Path, resumed_at: Option<i64>) -> Result<EventWriter> {
        let dir = run_dir.join(TENSORBOARD_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = host_name();
        let path = dir.join(format!("events.out.tfevents.{seconds}.{host}.{}", std::process::id()));
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = EventWriter { out: BufWriter::new(file), path };
        writer.record(&event(0, Body::FileVersion("brain.Event:2")))?;
        if let Some(step) = resumed_at {
            writer.record(&event(step, Body::SessionStart))?;
        }
        writer.flush()?;
        Ok(writer)
    }

    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        self.record(&event(step, Body::Scalars(&[(tag, value as f32)])))
    }

    /// The scalars of one training step (global step `step`).
    pub fn step(&mut self, step: i64, loss: f64, lr: f64) -> Result<()> {
        self.record(&event(step, Body::Scalars(&[("train/loss", loss as f32), ("train/lr", lr as f32)])))
    }

    /// The scalars of one epoch's `metrics.jsonl` line, at the global step that ends the epoch
    /// (so they line up with the per-step curves), then flushed to disk.
    pub fn epoch(&mut self, step: i64, record: &EpochRecord) -> Result<()> {
        let mut scalars = vec![
            ("epoch/train_loss".to_string(), record.train_loss),
            ("epoch/train_accuracy".to_string(), record.train_acc),
            ("epoch/images_per_second".to_string(), record.images_per_second),
            ("epoch/lr".to_string(), record.lr),
        ];
        if let Some(test) = &record.test {
            scalars.extend(accuracy_scalars("test", test));
        }
        for (b, acc) in record.test_branches.iter().flatten().enumerate() {
            scalars.extend(accuracy_scalars(&format!("test_branch_{b}"), acc).into_iter().take(4));
        }
        if let Some(shares) = &record.train_exit_fractions {
            let last = shares.len().saturating_sub(1);
            for (i, share) in shares.iter().enumerate() {
                let name = if i == last { "final_head".to_string() } else { format!("exit_{}", i + 1) };
                scalars.push((format!("exit_share/{name}"), 100.0 * share));
            }
        }
        let scalars: Vec<(&str, f32)> = scalars.iter().map(|(t, v)| (t.as_str(), *v as f32)).collect();
        self.record(&event(step, Body::Scalars(&scalars)))?;
        self.flush()
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc32c(data).to_le_bytes());
        self.out.write_all(&rec).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The machine's name, as PyTorch puts it in event file names (`localhost` if unknown).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what gethostname is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).replace(['/', ' '], "_");
    if rc != 0 || name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Overall, Many, Medium, Few (where the group has classes) and every class, under `prefix/`.
fn accuracy_scalars(prefix: &str, acc: &Accuracy) -> Vec<(String, f64)> {
    let mut out = vec![(format!("{prefix}/overall"), acc.overall)];
    for (name, group) in [("many", acc.many), ("medium", acc.medium), ("few", acc.few)] {
        if let Some(v) = group {
            out.push((format!("{prefix}/{name}"), v));
        }
    }
    let width = acc.per_class.len().saturating_sub(1).to_string().len();
    for (c, v) in acc.per_class.iter().enumerate() {
        out.push((format!("{prefix}_class/{c:0width$}"), *v));
    }
    out
}

/// What an `Event` carries (the `what` oneof of event.proto).
enum Body<'a> {
    FileVersion(&'a str),
    /// `SessionLog { status: START }`.
    SessionStart,
    /// A `Summary` of `simple_value`s.
    Scalars(&'a [(&'a str, f32)]),
}

/// `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 | summary = 5 | session_log = 7 }`.
fn event(step: i64, body: Body) -> Vec<u8> {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let mut out = Vec::new();
    out.push(tag(1, WIRE_64));
    out.extend_from_slice(&wall.to_le_bytes());
    out.push(tag(2, WIRE_VARINT));
    varint(&mut out, step as u64);
    match body {
        Body::FileVersion(v) => length_delimited(&mut out, 3, v.as_bytes()),
        // SessionLog { status = 1 (enum): START = 1 }.
        Body::SessionStart => length_delimited(&mut out, 7, &[tag(1, WIRE_VARINT), 1]),
        Body::Scalars(values) => {
            // Summary { repeated Value value = 1 }, Value { tag = 1 (string), simple_value = 2 (float) }.
            let mut summary = Vec::new();
            for (name, v) in values {
                let mut value = Vec::new();
                length_delimited(&mut value, 1, name.as_bytes());
                value.push(tag(2, WIRE_32));
                value.extend_from_slice(&v.to_le_bytes());
                length_delimited(&mut summary, 1, &value);
            }
            length_delimited(&mut out, 5, &summary);
        }
    }
    out
}

const WIRE_VARINT: u8 = 0;
const WIRE_64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_32: u8 = 5;

fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn length_delimited(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(tag(field, WIRE_LEN));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: event files are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// TFRecord's masking of a CRC (so a CRC of data that holds CRCs stays well distributed).
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The standard check value of CRC-32C (RFC 3720, B.4) and its all-zero vector.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // Masking by hand: rotate right 15 of 0xE3069283 is 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn varints_by_hand() {
        let mut out = Vec::new();
        varint(&mut out, 1);
        varint(&mut out, 300); // 0b1_0010_1100 → 0xAC 0x02 (protobuf's own example)
        assert_eq!(out, [0x01, 0xAC, 0x02]);
    }

    #[test]
    fn a_scalar_event_encodes_as_protobuf_says() {
        let e = event(5, Body::Scalars(&[("a", 1.0)]));
        // wall_time: tag 0x09 then 8 bytes; step: 0x10 0x05; summary: 0x2a len, value 0x0a len,
        // tag 0x0a 0x01 'a', simple_value 0x15 then 1.0f32 little-endian.
        assert_eq!(e[0], 0x09);
        assert_eq!(&e[9..], &[0x10, 0x05, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15, 0, 0, 0x80, 0x3f]);
    }
}
