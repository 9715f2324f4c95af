"""Medians and ratios of bench/run.sh's measurements, as a markdown section (stdout, and appended
to RESULTS.md with --record). Standard library only."""
import argparse
import datetime
import json
import platform
import statistics

KEYS = ["train_step", "train_pipeline", "inference"]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--longtail", required=True)
    ap.add_argument("--pytorch", required=True)
    ap.add_argument("--threads", required=True)
    ap.add_argument("--busy", default="?", help="CPU busy %% measured just before the start")
    ap.add_argument("--commit", default="?")
    ap.add_argument("--record")
    a = ap.parse_args()
    a.busy = a.busy or "?"
    ours, theirs = load(a.longtail), load(a.pytorch)
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    lines = [
        f"### {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {a.commit}",
        "",
        f"{cpu_name()}, {a.threads} threads, CPU {a.busy} % busy with other work just before the start; {ours[0]['engine']} vs "
        f"{theirs[0]['engine']}; median of {len(ours)} interleaved repetitions; images/s, batch 128 "
        "(inference 500). longtail trains channels-last by default; PyTorch is shown in both layouts "
        "and the ratio is against its faster one.",
        "",
        "| measurement | longtail (channels-last) | longtail (NCHW) | PyTorch (NCHW) | PyTorch (channels-last) | ratio longtail / best PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in KEYS:
        ol, on = med(ours, f"{k}_channels_last"), med(ours, f"{k}_nchw")
        tn, tl = med(theirs, f"{k}_nchw"), med(theirs, f"{k}_channels_last")
        best = max(tn, tl)
        lines.append(f"| {k.replace('_', ' ')} | {ol:.0f} | {on:.0f} | {tn:.0f} | {tl:.0f} | **{ol / best:.2f}×** |")
    bf16 = [r["train_step_channels_last_bf16_autocast"] for r in theirs if "train_step_channels_last_bf16_autocast" in r]
    if bf16:
        b, f = statistics.median(bf16), med(theirs, "train_step_channels_last")
        lines += ["", f"PyTorch's bf16 autocast training step (channels-last): {b:.0f} img/s, {b / f:.2f}× its fp32 step."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.record:
        with open(a.record, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
