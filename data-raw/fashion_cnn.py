#!/usr/bin/python3
# Makes the shipped Fashion-MNIST CNN (inst/extdata/fmnist_cnn_step*.pt, traced
# TorchScript), its stimulus set and reference activations. Run from the package root
# with Debian's python3-torch:  /usr/bin/python3 data-raw/fashion_cnn.py
# then  Rscript data-raw/extdata.R  (turns the raw files in data-raw/out into .rds).
# Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
import gzip, os, struct
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(20240501)
torch.set_num_threads(1)
SRC = "/usr/share/datasets/fashion-mnist"
OUT = "data-raw/out"
EXT = "inst/extdata"
os.makedirs(OUT, exist_ok=True)


def idx(name):
    with gzip.open(os.path.join(SRC, name), "rb") as f:
        magic, = struct.unpack(">I", f.read(4))
        nd = magic & 0xFF
        dims = struct.unpack(">" + "I" * nd, f.read(4 * nd))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


class CNN(nn.Module):
    """conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> pool2 -> flatten -> fc1 -> relu3 -> fc2"""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 7 * 7, 32)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


xtr = torch.tensor(idx("train-images-idx3-ubyte.gz")[:12000], dtype=torch.float32).unsqueeze(1) / 255
ytr = torch.tensor(idx("train-labels-idx1-ubyte.gz")[:12000], dtype=torch.long)
xte_u8 = idx("t10k-images-idx3-ubyte.gz")
yte_u8 = idx("t10k-labels-idx1-ubyte.gz")
xte = torch.tensor(xte_u8, dtype=torch.float32).unsqueeze(1) / 255
yte = torch.tensor(yte_u8, dtype=torch.long)

model = CNN()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
save_at = [0, 50, 200, 1000]
example = xte[:2]
step, log = 0, []


def save(step):
    model.eval()
    with torch.no_grad():
        acc = (model(xte[:2000]).argmax(1) == yte[:2000]).float().mean().item()
    traced = torch.jit.trace(model, example)
    traced.save(os.path.join(EXT, "fmnist_cnn_step%04d.pt" % step))
    log.append((step, acc))
    print("step", step, "test accuracy", acc, flush=True)
    model.train()


save(0)
for epoch in range(3):
    perm = torch.randperm(xtr.shape[0])
    for i in range(0, xtr.shape[0], 32):
        b = perm[i:i + 32]
        loss = nn.functional.cross_entropy(model(xtr[b]), ytr[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step in save_at:
            save(step)
save_at.append(step)
save(step)
with open(os.path.join(OUT, "cnn_log.csv"), "w") as f:
    f.write("step,test_accuracy\n")
    for s, a in log:
        f.write("%d,%.4f\n" % (s, a))

# Stimulus set: the first 200 test images (uint8) and labels.
xte_u8[:200].astype(np.uint8).tofile(os.path.join(OUT, "stimuli_u8.bin"))
yte_u8[:200].astype(np.uint8).tofile(os.path.join(OUT, "labels_u8.bin"))

# Reference activations of the final model on the first 10 stimuli, computed by
# running its submodules by hand (not through hooks), stored as float64 row-major.
final = torch.jit.load(os.path.join(EXT, "fmnist_cnn_step%04d.pt" % step))
x = xte[:10]
ref = {}
with torch.no_grad():
    h = final.conv1(x); ref["conv1"] = h
    h = final.relu1(h); ref["relu1"] = h
    h = final.pool1(h); ref["pool1"] = h
    h = final.conv2(h); ref["conv2"] = h
    h = final.pool2(final.relu2(h)); ref["pool2"] = h
    h = final.fc1(final.flatten(h)); ref["fc1"] = h
    h = final.fc2(final.relu3(h)); ref["fc2"] = h
with open(os.path.join(OUT, "reference_index.csv"), "w") as f:
    f.write("layer,dims\n")
    for k, v in ref.items():
        v.double().numpy().tofile(os.path.join(OUT, "ref_%s.bin" % k))
        f.write("%s,%s\n" % (k, "x".join(str(d) for d in v.shape)))
print("final step", step)
