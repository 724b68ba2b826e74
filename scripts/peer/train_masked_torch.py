"""The base-training recipe of docs/base-training.md in PyTorch, as a peer for
`edge-seg-train base`: does a run learn slowly because of the recipe or because
of the trainer?

    python train_masked_torch.py DATASET_DIR ITERATIONS LR none|batch THREADS [VAL_EVERY]

Same network (4 levels, doubling plan from 8 filters, same padding, nearest
upsampling, He-uniform init, optional batch normalisation), same case and
patch-centre policy (batch 2, 48³ patches, half the patches from complete cases,
0.67 centred on an annotated voxel) but none of the trainer's augmentation, same
masked loss (Dice over annotated classes
present in the patch + cross-entropy over annotated voxels, background only in
complete cases), Adam with 50 warm-up iterations and a cosine schedule.
Validation: argmax Dice per structure on the first 2 validation cases, each
whole volume in one pass (the trainer uses sliding windows), on the model grid.

It reads the cases `edge-seg-train base` has already preprocessed into
DATASET_DIR/.edge-seg-cache (4 mm spacing, CT window -1000..400 HU), so run the
trainer once first with `--spacing 4 --window=-1000,400`.
"""
import glob, json, struct, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

root = sys.argv[1]
iters = int(sys.argv[2]); lr = float(sys.argv[3]); norm = sys.argv[4] == "batch"; threads = int(sys.argv[5])
val_every = int(sys.argv[6]) if len(sys.argv) > 6 else 200
SPACING, WINDOW = 4.0, (-1000.0, 400.0)
# The median of the body's voxels (mostly fat, about -100 HU) after the
# window's rescaling to [-1, 1]: tells the cache's variants of a case (other
# windows) apart.
BODY = (-100.0 - WINDOW[0]) / (WINDOW[1] - WINDOW[0]) * 2 - 1
torch.set_num_threads(threads); torch.manual_seed(0); rng = np.random.default_rng(0)
m = json.load(open(f"{root}/manifest.json")); vocab = m["vocabulary"]; C = len(vocab)

def load(path):
    b = open(path, "rb").read(); n = struct.unpack("<I", b[4:8])[0]; meta = json.loads(b[8:8 + n])
    sh = meta["shape"]; v = int(np.prod(sh)); body = b[8 + n:]
    img = np.frombuffer(body[:4 * v], "<f4").reshape(sh); lab = np.frombuffer(body[4 * v:], "u1").reshape(sh)
    return meta["spacing_zyx"], img, lab

def case(cid):
    best = None
    for f in glob.glob(f"{root}/.edge-seg-cache/{cid}-*.bin"):
        sp, img, lab = load(f)
        if abs(sp[0] - SPACING) > 0.2: continue
        off = abs(np.median(img[img > -0.5]) - BODY)
        if best is None or off < best[0]: best = (off, img, lab)
    if best is None or best[0] > 0.1:
        sys.exit(f"{cid}: no preprocessed case at {SPACING} mm with the window {WINDOW} in {root}/.edge-seg-cache")
    return best[1], best[2]

train, val = [], []
for c in m["cases"]:
    if c["split"] == "test": continue
    img, lab = case(c["id"])
    ann = [vocab.index(a) for a in c["annotated"]]
    d = dict(img=img, lab=lab, ann=ann, complete=len(ann) == C - 1)
    (train if c["split"] == "train" else val if c["split"] == "val" else []).append(d)
val = val[:2]
for d in train:
    d["fg"] = [np.flatnonzero(d["lab"] == k) for k in d["ann"] if (d["lab"] == k).any()]
complete = [i for i, d in enumerate(train) if d["complete"]]
print(len(train), "train", len(complete), "complete", len(val), "val", flush=True)
P = 48

def sample():
    i = complete[rng.integers(len(complete))] if rng.random() < 0.5 else rng.integers(len(train))
    d = train[i]; sh = d["img"].shape
    if d["fg"] and rng.random() < 0.67:
        cls = d["fg"][rng.integers(len(d["fg"]))]; idx = cls[rng.integers(len(cls))]
        c = np.unravel_index(idx, sh)
    else:
        c = [rng.integers(s) for s in sh]
    img = np.full((P, P, P), -1.0, np.float32); lab = np.zeros((P, P, P), np.uint8)
    lo = [c[a] - P // 2 for a in range(3)]
    src = tuple(slice(max(lo[a], 0), min(lo[a] + P, sh[a])) for a in range(3))
    dst = tuple(slice(s.start - lo[a], s.stop - lo[a]) for a, s in enumerate(src))
    img[dst] = d["img"][src]; lab[dst] = d["lab"][src]
    return img, lab, d["ann"], d["complete"]

def block(cin, cout):
    layers = [nn.Conv3d(cin, cout, 3, padding=1)]
    if norm: layers.append(nn.BatchNorm3d(cout))
    return nn.Sequential(*layers, nn.ReLU(), nn.Conv3d(cout, cout, 3, padding=1), *([nn.BatchNorm3d(cout)] if norm else []), nn.ReLU())

class UNet(nn.Module):
    def __init__(s, f=8, L=4):
        super().__init__()
        ch = [f << l for l in range(L)]
        s.enc = nn.ModuleList([block(1 if l == 0 else ch[l - 1], ch[l]) for l in range(L)])
        s.dec = nn.ModuleList([block(ch[l + 1] + ch[l], ch[l]) for l in range(L - 1)])
        s.head = nn.Conv3d(ch[0], C, 1)
    def forward(s, x):
        sk = []
        for l, e in enumerate(s.enc):
            x = e(x)
            if l < len(s.enc) - 1: sk.append(x); x = F.max_pool3d(x, 2)
        for l in reversed(range(len(s.dec))):
            x = s.dec[l](torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), sk[l]], 1))
        return s.head(x)

net = UNet()
for mod in net.modules():
    if isinstance(mod, nn.Conv3d):
        nn.init.kaiming_uniform_(mod.weight, nonlinearity="relu"); nn.init.zeros_(mod.bias)
opt = torch.optim.Adam(net.parameters(), lr=lr)

def masked_loss(logits, lab, anns, comps):
    logp = F.log_softmax(logits, 1); p = logp.exp()
    y = F.one_hot(lab, C).permute(0, 4, 1, 2, 3).float()
    inter = (p * y).sum((2, 3, 4)); psum = p.sum((2, 3, 4)); ysum = y.sum((2, 3, 4))
    dice_c = (2 * inter + 1) / (psum + ysum + 1)
    dice, n_img, mask = 0.0, 0, torch.zeros_like(lab, dtype=torch.float32)
    for i, (a, comp) in enumerate(zip(anns, comps)):
        ks = [k for k in a if ysum[i, k] > 0]
        if ks: dice = dice + (1 - dice_c[i, ks]).mean(); n_img += 1
        cnt = torch.zeros(C, dtype=torch.bool); cnt[a] = True; cnt[0] = comp
        mask[i] = cnt[lab[i]].float()
    dice = dice / max(n_img, 1)
    ce = -((logp * y).sum(1) * mask).sum() / mask.sum().clamp_min(1)
    return dice + ce, float(torch.as_tensor(dice).detach()), float(ce.detach())

def validate():
    net.eval(); scores = []
    with torch.no_grad():
        for d in val:
            sh = d["img"].shape; pad = [(-s) % 8 for s in sh]
            x = np.pad(d["img"], [(0, p) for p in pad], constant_values=-1.0)
            pred = net(torch.from_numpy(x)[None, None]).argmax(1)[0].numpy()[: sh[0], : sh[1], : sh[2]]
            scores.append([2 * ((pred == k) & (d["lab"] == k)).sum() / max((pred == k).sum() + (d["lab"] == k).sum(), 1) for k in range(1, C)])
    net.train(); s = np.mean(scores, 0)
    return s.mean(), dict(zip(vocab[1:], [round(float(v), 2) for v in s]))

t0 = time.time(); hist = []
for it in range(1, iters + 1):
    rate = lr * min(1.0, it / 50) * 0.5 * (1 + np.cos(np.pi * it / iters))
    for g in opt.param_groups: g["lr"] = rate
    b = [sample() for _ in range(2)]
    x = torch.from_numpy(np.stack([s[0] for s in b]))[:, None]; lab = torch.from_numpy(np.stack([s[1] for s in b])).long()
    loss, dt, ct = masked_loss(net(x), lab, [s[2] for s in b], [s[3] for s in b])
    opt.zero_grad(); loss.backward(); opt.step(); hist.append((float(loss), dt, ct))
    if it % 100 == 0:
        h = np.mean(hist[-100:], 0); print(f"it {it} loss {h[0]:.3f} dice {h[1]:.3f} ce {h[2]:.3f} {time.time()-t0:.0f}s", flush=True)
    if it % val_every == 0:
        mv, per = validate(); print(f"it {it} VAL {mv:.3f} {per}", flush=True)
