//! A packed subset trains on exactly the images the full release would give, and refuses a
//! config that asks for another subset or a damaged file.
mod common;

use longtail::config::resolve;
use longtail::data::cifar::Cifar;
use longtail::data::pack;
use longtail::train::setup::load_data;

fn cfg(rho: u32) -> longtail::config::Config {
    resolve(&format!("[data]\nrho = {rho}\n[train]\nrecipe = \"ldam\"\n"), "t", &[]).unwrap()
}

#[test]
fn pack_round_trips_and_checks_what_it_holds() {
    let release = common::fixture_cifar10();
    let dir = tempfile::tempdir().unwrap();
    let card = pack::write(Cifar::Cifar10, &release, 100.0, 0, dir.path()).unwrap();
    assert_eq!(card.counts, vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);

    let from_release = load_data(&cfg(100), Some(&release)).unwrap();
    let from_pack = load_data(&cfg(100), Some(dir.path())).unwrap();
    assert_eq!(from_pack.train.labels, from_release.train.labels);
    assert!(from_pack.train.pixels == from_release.train.pixels, "same images in the same order");
    assert!(from_pack.test.pixels == from_release.test.pixels);
    let size = std::fs::metadata(dir.path().join(pack::TRAIN_FILE)).unwrap().len();
    assert_eq!(size, 12_406 * 3073);

    let err = load_data(&cfg(50), Some(dir.path())).err().unwrap().to_string();
    assert!(err.contains("ρ=100") && err.contains("ρ=50") && err.contains("data pack"), "{err}");

    let path = dir.path().join(pack::TRAIN_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5000] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = load_data(&cfg(100), Some(dir.path())).err().unwrap().to_string();
    assert!(err.contains("damaged") && err.contains(pack::TRAIN_FILE), "{err}");
}
