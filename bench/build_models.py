#!/usr/bin/python3
# Benchmark models for bench/scale.R: torchvision's ResNet-50 and ViT-B/16 architectures
# (random initialisation, fixed seed), traced to TorchScript into a git-ignored folder
# (default bench/models/; never committed). Needs Debian's python3-torchvision.
#   /usr/bin/python3 bench/build_models.py [folder]
import os
import sys

try:
    import torch
    import torchvision
except ImportError as e:
    print("skipped: %s (apt-get install python3-torchvision)" % e)
    sys.exit(0)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "models")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
x = torch.randn(2, 3, 224, 224)
for name, make in [("resnet50", torchvision.models.resnet50), ("vit_b_16", torchvision.models.vit_b_16)]:
    f = os.path.join(out, name + ".pt")
    if os.path.exists(f):
        print("exists:", f)
        continue
    m = make(weights=None).eval()
    with torch.no_grad():
        torch.jit.trace(m, x, check_trace=False).save(f)
    print("wrote", f)
