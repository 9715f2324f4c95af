//! An image-folder dataset at another size than CIFAR's (ImageNet-LT / Places-LT layout: images
//! and `path label` lists) trains end to end through the same pipeline, and its mistakes are
//! named: an image of another size, a bad list line, a ρ on a list that is long-tailed already.
mod common;

use std::path::Path;

use longtail::config::{resolve, Config};
use longtail::data::folder;
use longtail::data::Dataset;
use longtail::train::trainer::{train, Outcome, TrainOptions};

const H: u32 = 20;
const W: u32 = 24;

/// A long-tailed toy folder: 3 classes of 40 / 16 / 6 training images and 10 test images each;
/// each class a colour, so a network can learn it.
fn write_toy(root: &Path) {
    let colour = |c: usize| [[200u8, 30, 30], [30, 200, 30], [30, 30, 200]][c];
    let mut n = 0u32;
    let mut write = |split: &str, c: usize, lines: &mut String| {
        n += 1;
        let rel = format!("{split}/class{c}/{n:04}.png");
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(W, H, |x, y| {
            let noise = ((x * 31 + y * 17 + n * 7) % 41) as u8;
            image::Rgb(colour(c).map(|v| v.saturating_add(noise)))
        });
        img.save(&path).unwrap();
        lines.push_str(&format!("{rel} {c}\n"));
    };
    let (mut train_list, mut test_list) = (String::new(), String::new());
    for (c, count) in [40, 16, 6].into_iter().enumerate() {
        for _ in 0..count {
            write("train", c, &mut train_list);
        }
        for _ in 0..10 {
            write("test", c, &mut test_list);
        }
    }
    std::fs::write(root.join("train.txt"), train_list).unwrap();
    std::fs::write(root.join("test.txt"), test_list).unwrap();
}

fn config(root: &Path, extra: &[&str]) -> Config {
    let text = format!(
        "device = \"cpu\"\n[data]\nrho = 1\n[data.folder]\nname = \"toy\"\nroot = {:?}\ntrain = \"train.txt\"\n\
         test = \"test.txt\"\nclasses = 3\n[model]\narch = \"resnet20\"\nwidths = [4, 8, 8]\n[train]\nrecipe = \"ldam\"\n",
        root.display().to_string()
    );
    let base =
        ["train.batch_size=8", "train.epochs=15", "train.warmup_epochs=0", "train.milestones=[]", "train.threads=1"];
    let o: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
    resolve(&text, "folder-test", &o).unwrap()
}

fn options(out: &Path) -> TrainOptions {
    common::train_options(out, None)
}

#[test]
fn the_reader_keeps_the_images_size_and_labels() {
    let root = tempfile::tempdir().unwrap();
    write_toy(root.path());
    let set = folder::load(root.path(), &root.path().join("train.txt"), 3).unwrap();
    assert_eq!((set.shape.channels, set.shape.height, set.shape.width), (3, H as usize, W as usize));
    assert_eq!(set.class_counts(), vec![40, 16, 6]);
    assert_eq!(set.pixels.len(), 62 * 3 * (H * W) as usize);
    // CHW planes: the first image's red plane, then green, then blue.
    let first = set.image(0);
    assert!(first[..(H * W) as usize].iter().all(|&v| v >= 200), "class 0 is red");
    assert!(first[(H * W) as usize..].iter().all(|&v| v < 200));
}

#[test]
fn a_folder_dataset_of_another_size_trains_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    write_toy(root.path());
    let out = tempfile::tempdir().unwrap();
    let cfg = config(
        root.path(),
        &["model.exits = { kind = \"plain\", classifier = \"linear\" }", "loss.exit_mode = \"accumulate\""],
    );
    let Outcome::Finished(summary) = train(&cfg, &options(out.path())).unwrap() else {
        panic!("expected a finished run")
    };
    assert_eq!(summary.dataset, Dataset::Folder("toy".into()));
    assert_eq!(summary.groups.train_counts, vec![40, 16, 6]);
    assert!(summary.last.overall > 50.0, "{:.1}% on three colours (chance 33%)", summary.last.overall);
    // The MACs follow the 20×24 input: the stem alone is 4 filters × 27 weights × 480 pixels.
    let early = summary.early_exit.as_ref().expect("the model has exits");
    let stem = 4 * 27 * (H * W) as u64;
    assert!(early.full_macs > stem && early.full_macs < stem * 40, "{} MACs", early.full_macs);
    let published = serde_json::to_value(&*summary).unwrap();
    assert_eq!(published["dataset"], "folder:toy");
}

#[test]
fn an_image_of_another_size_is_named_with_both_sizes() {
    let root = tempfile::tempdir().unwrap();
    write_toy(root.path());
    image::RgbImage::new(32, 32).save(root.path().join("train/class0/0005.png")).unwrap();
    let err = folder::load(root.path(), &root.path().join("train.txt"), 3).unwrap_err().to_string();
    assert!(err.contains("0005.png is 3×32×32") && err.contains("3×20×24"), "{err}");
}

#[test]
fn a_bad_list_line_or_label_is_named() {
    let root = tempfile::tempdir().unwrap();
    write_toy(root.path());
    let list = root.path().join("train.txt");
    let text = std::fs::read_to_string(&list).unwrap();
    std::fs::write(&list, text.replacen(" 0\n", " 7\n", 1)).unwrap();
    let err = folder::load(root.path(), &list, 3).unwrap_err().to_string();
    assert!(err.contains("train.txt line 1") && err.contains("label 7"), "{err}");
    std::fs::write(&list, "train/missing.png 0\n").unwrap();
    let err = folder::load(root.path(), &list, 3).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
}

/// AutoAugment runs on the folder's 20×24 images (its translations scaled to them), and a ρ on a
/// folder dataset is refused by its key.
#[test]
fn autoaugment_runs_at_the_folders_size_and_a_rho_is_refused() {
    let root = tempfile::tempdir().unwrap();
    write_toy(root.path());
    let out = tempfile::tempdir().unwrap();
    let cfg = config(root.path(), &["data.augment.autoaugment=true", "train.epochs=2"]);
    let Outcome::Finished(summary) = train(&cfg, &options(out.path())).unwrap() else {
        panic!("expected a finished run")
    };
    assert_eq!(summary.epochs, 2);
    let text =
        "[data]\nrho = 100\n[data.folder]\nname = \"toy\"\nroot = \"x\"\ntrain = \"a\"\ntest = \"b\"\nclasses = 3\n";
    let err = resolve(text, "t", &[]).unwrap_err().to_string();
    assert!(err.contains("data.rho") && err.contains("long-tailed subset"), "{err}");
}
