"""The PyTorch side of bench/run.sh: the same three measurements as `longtail bench`, in eager
PyTorch 2.11, written the way the reference codebases (LDAM-DRW, ResLT) write them.

- train_step: ResNet-32 (option-A shortcuts) forward + cross-entropy + backward + SGD
  (momentum 0.9, weight decay 2e-4) on one fixed random batch.
- train_pipeline: the same step fed by a DataLoader over the real CIFAR-10-LT (rho = 100,
  numpy's legacy seed-0 subset) with random crop (4-px zero padding) + flip + normalisation,
  shuffled every epoch, `workers` loader processes.
- inference: eval mode, no_grad, over a fixed random batch.

Also times PyTorch's bf16 autocast training step (channels-last), beside longtail's
`train.precision = "bf16"`, to see whether bf16 pays on this machine. `--device cuda` measures the same on a GPU (every step ends with a host
read of the loss, as longtail's does). Prints one JSON object. Both memory formats are measured (PyTorch's default NCHW and
channels_last), because channels_last is PyTorch's fastest CPU path here; the ratio in
RESULTS.md is taken against the faster of the two.
"""
import argparse
import json
import os
import platform
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.pad = (c_out - c_in) // 2 if (stride != 1 or c_in != c_out) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is None:
            short = x
        else:
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class ResNet32(nn.Module):
    def __init__(self, num_classes=10, widths=(16, 32, 64), blocks=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(Block(c, w, 2 if (b == 0 and i > 0) else 1))
                c = w
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


DEVICE = torch.device("cpu")

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.2023, 0.1994, 0.2010], dtype=np.float32).reshape(3, 1, 1)


def load_cifar_lt(data_dir, rho):
    packed = os.path.join(data_dir, "train-lt.bin")
    if os.path.exists(packed):  # `longtail data pack` output: already the rho=100 subset
        raw = np.fromfile(packed, dtype=np.uint8).reshape(-1, 3073)
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
    raw = [np.fromfile(os.path.join(data_dir, f"data_batch_{i}.bin"), dtype=np.uint8).reshape(-1, 3073) for i in range(1, 6)]
    raw = np.concatenate(raw)
    labels, images = raw[:, 0].astype(np.int64), raw[:, 1:].reshape(-1, 3, 32, 32)
    # The community-standard subset (LDAM-DRW's imbalance_cifar.py): exponential profile, numpy's
    # legacy seed-0 shuffle per class.
    np.random.seed(0)
    keep = []
    for c in range(10):
        n = int(5000 * (1.0 / rho) ** (c / 9.0))
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        keep.extend(idx[:n].tolist())
    return images[keep], labels[keep]


class AugmentedCifar(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = np.pad(self.images[i], ((0, 0), (4, 4), (4, 4)))
        dy, dx = np.random.randint(0, 9, size=2)
        img = img[:, dy:dy + 32, dx:dx + 32]
        if np.random.rand() < 0.5:
            img = img[:, :, ::-1]
        x = (img.astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(np.ascontiguousarray(x)), int(self.labels[i])


def fmt(model, x, channels_last):
    model, x = model.to(DEVICE), x.to(DEVICE)
    if channels_last:
        return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, x


def cpu_has_native_bf16():
    """The flags longtail's `train.precision = "bf16"` requires (Linux /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {w for line in f if line.startswith("flags") for w in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def train_step_rate(channels_last, batch, warmup, steps, bf16=False):
    torch.manual_seed(0)
    model = ResNet32()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,)).to(DEVICE)
    model, x = fmt(model, x, channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)

    def step():
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def pipeline_rate(channels_last, batch, steps, data_dir, workers):
    torch.manual_seed(0)
    images, labels = load_cifar_lt(data_dir, 100)
    loader = torch.utils.data.DataLoader(
        AugmentedCifar(images, labels), batch_size=batch, shuffle=True, num_workers=workers,
        persistent_workers=workers > 0, drop_last=True, pin_memory=DEVICE.type == "cuda")
    model = ResNet32().to(DEVICE)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    done, seen, t0 = 0, 0, None
    while done < steps + 5:
        for x, y in loader:
            if done == 5:  # the first steps warm up the allocator and start the workers
                t0, seen = time.perf_counter(), 0
            x, y = x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            done += 1
            seen += len(y)
            if done >= steps + 5:
                break
    return seen / (time.perf_counter() - t0)


def inference_rate(channels_last, batch, warmup, steps):
    torch.manual_seed(0)
    model = ResNet32().eval()
    x = torch.randn(batch, 3, 32, 32)
    model, x = fmt(model, x, channels_last)
    with torch.no_grad():
        # Each batch ends with a host read of one prediction, as in longtail's measurement.
        for _ in range(warmup):
            model(x).argmax(1)[0].item()
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x).argmax(1)[0].item()
    return batch * steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--pipeline-steps", type=int, default=60)
    ap.add_argument("--eval-batch", type=int, default=500)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(a.device)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    machine = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else platform.processor() or platform.machine()
    out = {"engine": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(), "machine": machine}
    for cl in (False, True):
        tag = "channels_last" if cl else "nchw"
        out[f"train_step_{tag}"] = train_step_rate(cl, a.batch, 5, a.steps)
        out[f"train_pipeline_{tag}"] = pipeline_rate(cl, a.batch, a.pipeline_steps, a.data, a.workers)
        out[f"inference_{tag}"] = inference_rate(cl, a.eval_batch, 2, max(4, a.steps // 4))
    # Whether bf16 autocast pays here (longtail measures the same where the device has native bf16).
    if DEVICE.type == "cuda" or cpu_has_native_bf16():
        out["train_step_channels_last_bf16_autocast"] = train_step_rate(True, a.batch, 5, a.steps, bf16=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
