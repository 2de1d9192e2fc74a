#!/usr/bin/python3
# Tiny TorchScript models for the exact-capture tests of activations() (a few KB each):
# in-place ReLU after BatchNorm, a module called three times, a block with its own
# children, blocks returning tuples and lists. The tests recompute every expected value
# by hand in R from model_parameters() (and the BatchNorm statistics in capture_bn.txt).
# Run from the package root:  /usr/bin/python3 data-raw/capture_fixtures.py
import os
import torch
import torch.nn as nn

torch.manual_seed(16)
OUT = "tests/testthat/fixtures"
os.makedirs(OUT, exist_ok=True)


class Block(nn.Module):
    # conv -> bn -> in-place relu, like torchvision's bottleneck; `relu` is called
    # three times (after bn, after fc, and on the block's output)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))
        y = y + 0.5
        return self.relu(y - 1.0)


class Pair(nn.Module):
    # returns a tuple, like an attention block returning (output, weights)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        h = self.fc(x)
        return h, torch.tanh(h)


class BnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.flat = nn.Flatten()
        self.pair = Pair()
        self.head = nn.Linear(4, 2)
        self.unused = nn.Linear(4, 4)   # never called by forward()

    def forward(self, x):
        y = self.block(x)
        y = self.block.relu(y * 2.0 - 1.0)
        h, t = self.pair(self.flat(y[:, :, :2, :2]))
        return self.head(h * t)


net = BnNet()
# non-trivial BatchNorm statistics, then evaluation mode
with torch.no_grad():
    net.block.bn.running_mean.uniform_(-0.5, 0.5)
    net.block.bn.running_var.uniform_(0.5, 2.0)
    net.block.bn.weight.uniform_(0.5, 1.5)
    net.block.bn.bias.uniform_(-0.5, 0.5)
net.eval()
# BatchNorm's running statistics are buffers, not parameters: written for the tests
with open(os.path.join(OUT, "capture_bn.txt"), "w") as f:
    for v in torch.cat([net.block.bn.running_mean, net.block.bn.running_var]).tolist():
        f.write(repr(float(v)) + "\n")
x = torch.randn(3, 2, 5, 5)
torch.jit.trace(net, x).save(os.path.join(OUT, "capture_traced.pt"))
torch.jit.script(net).save(os.path.join(OUT, "capture_scripted.pt"))


class Lists(nn.Module):
    # a submodule returning a list of tensors, one returning a non-tensor
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        h = self.fc(x)
        return [h, h * 2.0]


class Count(nn.Module):
    def forward(self, x) -> int:
        return x.size(1)


class ListNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lists = Lists()
        self.count = Count()

    def forward(self, x):
        a = self.lists(x)
        return a[0] + a[1] * float(self.count(x))


torch.jit.script(ListNet().eval()).save(os.path.join(OUT, "capture_lists.pt"))
