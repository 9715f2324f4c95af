//! The download path against a local HTTP server on 127.0.0.1 that serves an archive the test
//! builds itself (the official host is unreachable here).
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread;

use longtail::data::cifar::{md5_hex, Cifar, DataError};
use longtail::data::download::download;

/// A tar.gz holding `cifar-10-batches-bin/<name>` for each (name, bytes).
fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Serve `body` to every request on a loopback port until the test ends; returns the URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/cifar-10-binary.tar.gz")
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}

#[test]
fn downloads_verifies_and_extracts() {
    let body = archive(&[("data_batch_1.bin", vec![7u8; 3073]), ("batches.meta.txt", b"airplane\n".to_vec())]);
    let md5 = md5_hex(&body);
    let url = serve(body);
    let parent = tempfile::tempdir().unwrap();
    let out = download(Cifar::Cifar10, &url, &md5, parent.path(), false).unwrap();
    assert_eq!(out, parent.path().join("cifar-10-batches-bin"));
    assert_eq!(std::fs::read(out.join("data_batch_1.bin")).unwrap(), vec![7u8; 3073]);
    assert_eq!(leftovers(parent.path()), vec!["cifar-10-batches-bin".to_string()], "no temp files left");
    // A second call finds the data and does not download again (the server may be gone).
    let again = download(Cifar::Cifar10, "http://127.0.0.1:9/unreachable", &md5, parent.path(), false).unwrap();
    assert_eq!(again, out);
}

#[test]
fn wrong_checksum_leaves_nothing_that_looks_complete() {
    let body = archive(&[("data_batch_1.bin", vec![1u8; 3073])]);
    let url = serve(body);
    let parent = tempfile::tempdir().unwrap();
    let err = download(Cifar::Cifar10, &url, "00000000000000000000000000000000", parent.path(), false).unwrap_err();
    assert!(matches!(err, DataError::BadChecksum { .. }), "{err}");
    assert!(leftovers(parent.path()).is_empty(), "found {:?}", leftovers(parent.path()));
}

#[test]
fn archive_without_the_release_is_refused() {
    let body = archive(&[("readme.txt", b"not cifar".to_vec())]);
    let md5 = md5_hex(&body);
    let url = serve(body);
    let parent = tempfile::tempdir().unwrap();
    let err = download(Cifar::Cifar10, &url, &md5, parent.path(), false).unwrap_err();
    assert!(err.to_string().contains("data_batch_1.bin"), "{err}");
    assert!(leftovers(parent.path()).is_empty());
}

#[test]
fn corrupt_archive_with_matching_md5_is_refused() {
    let body = b"this is not gzip".to_vec();
    let md5 = md5_hex(&body);
    let url = serve(body);
    let parent = tempfile::tempdir().unwrap();
    assert!(download(Cifar::Cifar10, &url, &md5, parent.path(), false).is_err());
    assert!(leftovers(parent.path()).is_empty());
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let parent = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let err = download(Cifar::Cifar10, "http://127.0.0.1:9/x.tar.gz", "00", parent.path(), false).unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
