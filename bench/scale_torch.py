#!/usr/bin/python3
# The Python side of bench/scale.R: the same capture with forward hooks on Debian's
# python3-torch (the LibTorch tensorscope uses): random 224 x 224 stimuli made batch by
# batch, float32, each hooked output reduced right away as activations() does (layers
# wider than K: a sparse random projection with k sqrt(p) non-zeros, torch.sparse.mm;
# the others kept), stored in preallocated float32 arrays.
#   /usr/bin/python3 bench/scale_torch.py MODEL N BATCH K [MODE]
# MODE "srp" (default) as above; "forward": the hooks only copy each output (the least a
# capture costs: the forward pass itself), nothing is stored.
# Prints one line of key=value pairs (capture_s, peak_gb: the process's peak RSS).
import math, resource, sys, time
import numpy as np
import torch

model_file, n, batch, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "srp"
if "resnet" in model_file:
    layers = ["conv1"] + ["layer%d.%d" % (l, b) for l, nb in zip(range(1, 5), [3, 4, 6, 3]) for b in range(nb)] + ["avgpool", "fc"]
else:
    layers = ["conv_proj"] + ["encoder.layers.encoder_layer_%d" % i for i in range(12)] + ["encoder.ln", "heads.head"]
m = torch.jit.load(model_file).eval()
# a scripted/traced module has no forward hooks: load the same architecture eagerly
import torchvision
eager = (torchvision.models.resnet50 if "resnet" in model_file else torchvision.models.vit_b_16)(weights=None).eval()
eager.load_state_dict({k_: v for k_, v in m.state_dict().items()})
del m
mods = dict(eager.named_modules())


t_input = [0.0]   # seconds spent making stimuli, reported apart


def stim(rows):
    t0 = time.perf_counter()
    x = torch.empty(len(rows), 3, 224, 224)
    for i, r in enumerate(rows):
        g = torch.Generator().manual_seed(int(r))
        x[i] = torch.randn(3, 224, 224, generator=g)
    t_input[0] += time.perf_counter() - t0
    return x


store, proj, row = {}, {}, [0]


def hook(name):
    def f(module, inputs, out):
        if mode == "forward":
            out.detach().clone()
            return
        x = out.detach().reshape(out.shape[0], -1)
        b, p = x.shape
        if name not in store:
            store[name] = np.zeros((n, k if p > k else p), dtype=np.float32)
            if p > k:
                nnz = int(k * math.sqrt(p))
                idx = torch.stack([torch.randint(0, k, (nnz,)), torch.randint(0, p, (nnz,))])
                val = (torch.randint(0, 2, (nnz,)) * 2 - 1).float() * math.sqrt(math.sqrt(p) / k)
                proj[name] = torch.sparse_coo_tensor(idx, val, (k, p)).coalesce()
        y = torch.sparse.mm(proj[name], x.t().contiguous()).t() if name in proj else x
        store[name][row[0]:row[0] + b] = y.numpy()
    return f


for l in layers:
    mods[l].register_forward_hook(hook(l))
t0 = time.perf_counter()
with torch.no_grad():
    for s in range(0, n, batch):
        rows = list(range(s + 1, min(n, s + batch) + 1))
        row[0] = s
        eager(stim(rows))
t = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("model=%s n=%d layers=%d k=%d batch=%d mode=%s threads=%d capture_s=%.1f input_s=%.1f peak_gb=%.3f" %
      (model_file.split("/")[-1], n, len(layers), k, batch, mode, torch.get_num_threads(), t, t_input[0], peak / 2**30))
