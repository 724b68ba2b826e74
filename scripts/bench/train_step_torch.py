"""One training step (forward + backward + Adam) of an edge-seg NetworkSpec
in PyTorch, for comparison with `edge-seg-train bench`.

    python train_step_torch.py SPEC.json PATCH BATCH STEPS THREADS [DEVICE]

DEVICE is `cpu` (default) or `cuda`.
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

spec = json.load(open(sys.argv[1]))
patch, batch, steps, threads = (int(a) for a in sys.argv[2:6])
device = torch.device(sys.argv[6] if len(sys.argv) > 6 else "cpu")
torch.set_num_threads(threads)
torch.manual_seed(0)
pad = 1 if spec["padding"] == "same" else 0
norm = spec.get("norm", "none") == "batch"


def conv_relu(cin, cout):
    """3x3x3 convolution, batch normalisation when the spec has it, ReLU."""
    layers = [nn.Conv3d(cin, cout, 3, padding=pad)]
    if norm:
        layers.append(nn.BatchNorm3d(cout, eps=1e-5, momentum=0.1))
    return nn.Sequential(*layers, nn.ReLU())


def channels(level):
    f = spec["base_filters"]
    if spec["channel_plan"] == "cicek":
        return f << level, f << (level + 1)
    return f << level, f << level


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        L = spec["levels"]
        self.enc = nn.ModuleList()
        cin = spec["in_channels"]
        for l in range(L):
            c0, c1 = channels(l)
            self.enc.append(nn.ModuleList([conv_relu(cin, c0), conv_relu(c0, c1)]))
            cin = c1
        self.dec = nn.ModuleList([None] * (L - 1))
        self.up = nn.ModuleList([None] * (L - 1))
        for l in reversed(range(L - 1)):
            if spec["upsampling"] == "transposed":
                self.up[l] = nn.ConvTranspose3d(cin, cin, 2, stride=2)
            skip = channels(l)[1]
            c = channels(l)[1]
            self.dec[l] = nn.ModuleList([conv_relu(cin + skip, c), conv_relu(c, c)])
            cin = c
        self.head = nn.Conv3d(cin, spec["classes"], 1)

    def forward(self, x):
        skips = []
        for l, (a, b) in enumerate(self.enc):
            x = b(a(x))
            if l < len(self.enc) - 1:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        for l in reversed(range(len(self.dec))):
            x = self.up[l](x) if self.up[l] is not None else F.interpolate(x, scale_factor=2, mode="nearest")
            s = skips[l]
            o = [(s.shape[i] - x.shape[i]) // 2 for i in (2, 3, 4)]
            s = s[:, :, o[0] : o[0] + x.shape[2], o[1] : o[1] + x.shape[3], o[2] : o[2] + x.shape[4]]
            a, b = self.dec[l]
            x = b(a(torch.cat([x, s], 1)))
        return self.head(x)


model = UNet().to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
x = torch.rand(batch, 1, patch, patch, patch, device=device) * 2 - 1
with torch.no_grad():
    out_shape = model(x[:1]).shape[2:]
y = torch.randint(0, spec["classes"], (batch, *out_shape), device=device)


def step():
    opt.zero_grad()
    logits = model(x)
    p = F.softmax(logits, 1)
    onehot = F.one_hot(y, spec["classes"]).permute(0, 4, 1, 2, 3).float()
    inter = (p * onehot).sum((2, 3, 4))
    dice = 1 - ((2 * inter + 1) / (p.sum((2, 3, 4)) + onehot.sum((2, 3, 4)) + 1))[:, 1:].mean()
    loss = F.cross_entropy(logits, y) + dice
    loss.backward()
    opt.step()


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


step()
sync()
t = time.perf_counter()
for _ in range(steps):
    step()
sync()
per = (time.perf_counter() - t) / steps
vox = batch * int(torch.tensor(out_shape).prod())
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak_device = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
print(json.dumps({"seconds_per_step": per, "output_voxels_per_second": vox / per, "threads": threads, "torch": torch.__version__,
                  "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                  "peak_rss_mib": peak_rss, "peak_device_mib": peak_device}))
