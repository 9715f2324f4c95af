"""Load a longtail zoo file into a plain PyTorch ResNet-32 and score it on the CIFAR-10 test set.

    python scripts/zoo_eval.py results/model-16/weights-last.safetensors path/to/cifar-10-batches-bin

Needs torch, numpy and safetensors. The config.toml beside the file says the widths and the head;
early exits (exit1.*, exit2.*) are left out: this is the network at full depth.
"""
import sys
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        extra = c_out - c_in  # option-A shortcut: subsample, zero-pad the channels
        self.pad = (extra - extra // 2, extra // 2) if stride != 1 or extra else None
        self.stride = stride

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.pad:
            x = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, *self.pad))
        return F.relu(y + x)


class ResNet32(nn.Module):
    def __init__(self, widths=(16, 32, 64), classes=10, head="linear"):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0])
        c = widths[0]
        for i, w in enumerate(widths):
            blocks = [Block(c if b == 0 else w, w, 2 if i > 0 and b == 0 else 1) for b in range(5)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c = w
        self.head = head
        if head == "linear":
            self.linear = nn.Linear(c, classes)
        elif head == "grouped":  # the report's ResLT head: 1×1 conv in 3 groups, BN, ReLU, 3 chunks
            self.reslt = nn.Module()
            self.reslt.conv, self.reslt.bn = nn.Conv2d(c, c, 1, groups=3, bias=False), nn.BatchNorm2d(c)
            self.reslt.fc = nn.Linear(c // 3, classes)
        elif head == "bn3":  # the official ResLT head: three BatchNorms, one shared classifier
            self.reslt = nn.Module()
            for b in ("bn_head", "bn_medium", "bn_tail"):
                setattr(self.reslt, b, nn.BatchNorm2d(c))
            self.reslt.fc = nn.Linear(c, classes)
        else:
            raise SystemExit(f"head {head!r}: this script knows linear, grouped and bn3")

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        if self.head == "linear":
            return self.linear(x.mean((2, 3)))
        if self.head == "grouped":
            pooled = F.relu(self.reslt.bn(self.reslt.conv(x))).mean((2, 3)).chunk(3, 1)
        else:
            pooled = [bn(x).mean((2, 3)) for bn in (self.reslt.bn_head, self.reslt.bn_medium, self.reslt.bn_tail)]
        return sum(self.reslt.fc(p) for p in pooled)  # fused logits: the sum of the three branches


def main(weights, cifar):
    model_cfg = tomllib.loads((Path(weights).parent / "config.toml").read_text())["model"]
    net = ResNet32(tuple(model_cfg["widths"]), 10, model_cfg["head"])
    state = {k: v for k, v in load_file(weights).items() if not k.startswith("exit")}
    net.load_state_dict(state, strict=True)
    raw = np.fromfile(Path(cifar) / "test_batch.bin", np.uint8).reshape(-1, 3073)
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])
    x = (torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32)).float() / 255 - mean[:, None, None]) / std[:, None, None]
    y = torch.from_numpy(raw[:, 0].astype(np.int64))
    with torch.no_grad():
        pred = torch.cat([net.eval()(b).argmax(1) for b in x.split(500)])
    per_class = [100 * (pred[y == c] == c).float().mean().item() for c in range(10)]
    groups = [sum(per_class[a:b]) / (b - a) for a, b in ((0, 3), (3, 6), (6, 10))]
    print(f"overall {100 * (pred == y).float().mean().item():.2f}  many / medium / few "
          + " / ".join(f"{g:.2f}" for g in groups))


if __name__ == "__main__":
    main(*sys.argv[1:3])
