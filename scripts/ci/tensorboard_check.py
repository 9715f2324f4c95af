"""Read a longtail run's TensorBoard event files with TensorBoard's own reader and check them
against the run's metrics.jsonl: every training step's loss and LR once, in order; every
epoch's accuracy overall / Many / Medium / Few / per class, exit shares and images per second.
Usage: python tensorboard_check.py RUN_DIR STEPS_PER_EPOCH"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run, steps_per_epoch = sys.argv[1], int(sys.argv[2])
records = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
acc = EventAccumulator(f"{run}/tensorboard", size_guidance={"scalars": 0})
acc.Reload()
tags = set(acc.Tags()["scalars"])


def series(tag):
    assert tag in tags, f"no scalar {tag!r}; the file has {sorted(tags)}"
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def close(a, b):
    return abs(a - b) <= 1e-4 * max(1.0, abs(b))


total = steps_per_epoch * len(records)
for tag in ("train/loss", "train/lr"):
    steps = [s for s, _ in series(tag)]
    assert steps == list(range(1, total + 1)), f"{tag}: steps {steps[:5]}… ({len(steps)}), want 1..{total}"
lr = dict(series("train/lr"))
for r in records:
    end = r["epoch"] * steps_per_epoch
    assert close(lr[end], r["lr"]), (end, lr[end], r["lr"])
    checks = {
        "epoch/train_loss": r["train_loss"],
        "epoch/train_accuracy": r["train_acc"],
        "epoch/images_per_second": r["images_per_second"],
    }
    test = r.get("test")
    if test:
        checks["test/overall"] = test["overall"]
        for g in ("many", "medium", "few"):
            if test.get(g) is not None:
                checks[f"test/{g}"] = test[g]
        for c, v in enumerate(test["per_class"]):
            checks[f"test_class/{c}"] = v
    shares = r.get("train_exit_fractions")
    for i, v in enumerate(shares or []):
        name = "final_head" if i == len(shares) - 1 else f"exit_{i + 1}"
        checks[f"exit_share/{name}"] = 100 * v
    for tag, want in checks.items():
        got = dict(series(tag))
        assert end in got and close(got[end], want), f"{tag} at step {end}: {got.get(end)} != {want}"
print(f"tensorboard: {len(tags)} scalar tags, {total} steps and {len(records)} epochs read back by TensorBoard's reader")
