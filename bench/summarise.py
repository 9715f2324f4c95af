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
    ap.add_argument("--device", help="GPU name, for a measurement on a GPU (the CPU is then the host)")
    a = ap.parse_args()
    a.busy = a.busy or "?"
    ours, theirs = load(a.longtail), load(a.pytorch)
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    lines = [
        f"### {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · commit {a.commit}",
        "",
        (f"{a.device} (host: {cpu_name()}, {a.threads} libtorch threads); " if a.device else
         f"{cpu_name()}, {a.threads} threads, CPU {a.busy} % busy with other work just before the start; ")
        + f"{ours[0]['engine']} vs "
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
    graphed = [k for k in ("train_step", "train_pipeline") if all(f"{k}_graphed" in r for r in ours)]
    if graphed:
        lines += ["", "CUDA graphs (longtail, channels-last), against the same PyTorch eager column:", "",
                  "| measurement | longtail eager | longtail CUDA graph | graph / eager | ratio longtail graph / best PyTorch |",
                  "|---|---:|---:|---:|---:|"]
        for k in graphed:
            g, e = med(ours, f"{k}_graphed"), med(ours, f"{k}_channels_last")
            best = max(med(theirs, f"{k}_nchw"), med(theirs, f"{k}_channels_last"))
            lines.append(f"| {k.replace('_', ' ')} | {e:.0f} | {g:.0f} | {g / e:.2f}× | **{g / best:.2f}×** |")
    checks = [r["graph_check"] for r in ours if "graph_check" in r]
    if checks:
        worst = max(c["max_weight_difference"] for c in checks)
        lines += ["", f"Graph vs eager from the same weights over {checks[0]['steps']} steps: largest weight "
                  f"difference {worst:.2e}, largest loss difference {max(c['max_loss_difference'] for c in checks):.2e}."]
    key = "train_step_channels_last_bf16_autocast"
    if all(key in r for r in theirs):
        b, f = med(theirs, key), med(theirs, "train_step_channels_last")
        if all(key in r for r in ours):
            ob, of = med(ours, key), med(ours, "train_step_channels_last")
            lines += ["", "bf16 autocast training step (channels-last; `train.precision = \"bf16\"`), against fp32:", "",
                      "| | longtail | PyTorch | ratio longtail / PyTorch |", "|---|---:|---:|---:|",
                      f"| fp32 | {of:.0f} | {f:.0f} | {of / f:.2f}× |",
                      f"| bf16 autocast | {ob:.0f} | {b:.0f} | **{ob / b:.2f}×** |",
                      f"| bf16 / fp32 | {ob / of:.2f}× | {b / f:.2f}× | |"]
        else:
            lines += ["", f"PyTorch's bf16 autocast training step (channels-last): {b:.0f} img/s, {b / f:.2f}× its fp32 step."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.record:
        with open(a.record, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
