#!/usr/bin/python3
# Tiny TorchScript models and brute-force references for tests/testthat (a few KB).
# Run from the package root:  /usr/bin/python3 data-raw/test_fixtures.py
import os
import torch
import torch.nn as nn

torch.manual_seed(3)
OUT = "tests/testthat/fixtures"
os.makedirs(OUT, exist_ok=True)


def write(name, t):
    # plain text, one number per line, row-major, so R reads it with scan()
    with open(os.path.join(OUT, name), "w") as f:
        f.write("\n".join(repr(float(v)) for v in t.detach().double().reshape(-1).tolist()) + "\n")


# Softmax regression (4 features, 3 classes) and binary logistic regression, scripted.
softmax_reg = torch.jit.script(nn.Linear(4, 3).double())
softmax_reg.save(os.path.join(OUT, "softmax_regression.pt"))
logistic = torch.jit.script(nn.Sequential(nn.Linear(4, 1)).double())
logistic.save(os.path.join(OUT, "logistic_regression.pt"))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 4)
        self.act = nn.Tanh()
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


mlp = MLP()
traced = torch.jit.trace(mlp, torch.randn(2, 5))
traced.save(os.path.join(OUT, "mlp.pt"))
x = torch.randn(12, 5)
y = torch.randint(0, 3, (12,))
write("mlp_x.txt", x)
write("mlp_y.txt", y)
# Brute force: per-sample gradients one sample at a time, squared, averaged.
params = dict(mlp.named_parameters())
acc = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in params.items()}
for i in range(x.shape[0]):
    loss = nn.functional.cross_entropy(mlp(x[i:i + 1]), y[i:i + 1])
    g = torch.autograd.grad(loss, list(params.values()))
    for (k, _), gi in zip(params.items(), g):
        acc[k] += gi.double() ** 2
for k in acc:
    write("mlp_fisher_%s.txt" % k, acc[k] / x.shape[0])
# The model's outputs, to check the forward pass of a traced MLP
write("mlp_out.txt", mlp(x))
