#!/usr/bin/python3
# The Python side of bench/models.R: the same work with Debian's python3-torch.
#   /usr/bin/python3 bench/models_torch.py MODEL N_ACT N_FISHER BATCH LAYER1,LAYER2,...
# Prints "activations <seconds>" and "fisher <seconds>".
import gzip, struct, sys, time
import numpy as np
import torch

model_file, n_act, n_fisher, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb") as f:
    f.read(16)
    images = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 1, 28, 28)
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "rb") as f:
    f.read(8)
    labels = np.frombuffer(f.read(), dtype=np.uint8)
x = torch.tensor(images[:n_act], dtype=torch.float64) / 255   # R holds doubles too
m = torch.jit.load(model_file).eval()
layers = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2"]
keep = sys.argv[5].split(",")   # the captured layers (every layer is run)

# Activations of the captured layers, returned as float64 arrays (as R gets them).
t0 = time.perf_counter()
out = {l: [] for l in keep}
with torch.no_grad():
    for s in range(0, n_act, batch):
        h = x[s:s + batch].float()
        for l in layers:
            h = getattr(m, l)(h)
            if l in out:
                out[l].append(h.double().numpy())
acts = {l: np.concatenate(v) for l, v in out.items()}
print("activations %.4f" % (time.perf_counter() - t0), flush=True)

# Empirical Fisher: per-sample gradients, squared, averaged.
xf = x[:n_fisher].float()
yf = torch.tensor(labels[:n_fisher], dtype=torch.long)
params = [p for p in m.parameters() if p.requires_grad]
t0 = time.perf_counter()
acc = [torch.zeros_like(p, dtype=torch.float64) for p in params]
for i in range(n_fisher):
    loss = torch.nn.functional.cross_entropy(m(xf[i:i + 1]), yf[i:i + 1])
    for a, g in zip(acc, torch.autograd.grad(loss, params)):
        a += g.double() ** 2
fisher = [a / n_fisher for a in acc]
print("fisher %.4f" % (time.perf_counter() - t0), flush=True)
