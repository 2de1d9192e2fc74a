# Trains a tiny 2-layer attention-only transformer on sequences of repeated random tokens
# so that it forms previous-token heads (layer 1) and induction heads (layer 2), and
# exports, for the untrained (step 0) and the trained checkpoint, its weights in
# TransformerLens's row-vector layout and its attention patterns on a few repeated
# sequences. data-raw/circuits_toy_transformer.R turns the export into
# inst/extdata/circuits_toy_transformer.rds (used by tests/testthat/test-circuits.R).
#
# Run with Debian's python3-torch:  /usr/bin/python3 data-raw/circuits_toy_transformer.py
#
# Model (no LayerNorm, no biases, no MLPs; residual stream as row vectors):
#   x0 = W_E[tok] + W_pos[pos]
#   per layer l, head h: q = x W_Q[l,h], k = x W_K[l,h], v = x W_V[l,h]
#     A = softmax(q k^T / sqrt(d_head) + causal mask);  x += sum_h (A v) W_O[l,h]
#   logits = x W_U
import json
import math
import os

import torch

torch.set_num_threads(1)
torch.manual_seed(20240601)

VOCAB, D_MODEL, N_HEADS, D_HEAD, N_LAYERS = 48, int(os.environ.get("D_MODEL", 128)), 4, 8, 2
T_MIN, T_MAX, N_CTX = 6, 20, 41
BOS = 0
STEPS, BATCH, LR = int(os.environ.get("STEPS", 4000)), 64, 1e-3
WEIGHT_DECAY = float(os.environ.get("WEIGHT_DECAY", 0.1))  # prunes unused directions
T_EXPORT, N_EXPORT = 15, 3           # exported patterns: 3 sequences of [BOS] + 15 + 15 tokens

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
os.makedirs(out_dir, exist_ok=True)


class AttnOnly(torch.nn.Module):
    def __init__(self):
        super().__init__()
        s = 1.0 / math.sqrt(D_MODEL)
        p = torch.nn.Parameter
        self.W_E = p(torch.randn(VOCAB, D_MODEL) * 0.5)
        self.W_pos = p(torch.randn(N_CTX, D_MODEL) * 0.5)
        self.W_Q = p(torch.randn(N_LAYERS, N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_K = p(torch.randn(N_LAYERS, N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_V = p(torch.randn(N_LAYERS, N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_O = p(torch.randn(N_LAYERS, N_HEADS, D_HEAD, D_MODEL) / math.sqrt(D_HEAD))
        self.W_U = p(torch.randn(D_MODEL, VOCAB) * s)

    def forward(self, tok):
        n = tok.shape[1]
        x = self.W_E[tok] + self.W_pos[:n]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
        patterns = []
        for l in range(N_LAYERS):
            q = torch.einsum("bpd,hde->bhpe", x, self.W_Q[l])
            k = torch.einsum("bpd,hde->bhpe", x, self.W_K[l])
            v = torch.einsum("bpd,hde->bhpe", x, self.W_V[l])
            s = q @ k.transpose(-1, -2) / math.sqrt(D_HEAD)
            a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
            patterns.append(a)
            x = x + torch.einsum("bhpe,hed->bpd", a @ v, self.W_O[l])
        return x @ self.W_U, torch.stack(patterns, 1)  # [batch, layer, head, query, key]


def repeated(batch, T, gen):
    half = torch.randint(1, VOCAB, (batch, T), generator=gen)
    return torch.cat([torch.full((batch, 1), BOS), half, half], 1)


def export(model, step, tokens):
    with torch.no_grad():
        _, pat = model(tokens)
    d = {"step": step, "seq_len": T_EXPORT, "prefix": 1}
    for name in ["W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U"]:
        w = getattr(model, name).detach().double()
        d[name] = {"shape": list(w.shape), "data": [float(f"{v:.6g}") for v in w.flatten().tolist()]}
    p = pat.double()
    d["patterns"] = {"shape": list(p.shape), "data": [round(v, 6) for v in p.flatten().tolist()]}
    d["tokens"] = {"shape": list(tokens.shape), "data": tokens.flatten().tolist()}
    with open(os.path.join(out_dir, f"circuits_toy_step{step}.json"), "w") as f:
        json.dump(d, f)


model = AttnOnly()
gen_eval = torch.Generator().manual_seed(7)
eval_tokens = repeated(N_EXPORT, T_EXPORT, gen_eval)
export(model, 0, eval_tokens)

gen = torch.Generator().manual_seed(1)
opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
for step in range(1, STEPS + 1):
    T = int(torch.randint(T_MIN, T_MAX + 1, (1,), generator=gen))
    tok = repeated(BATCH, T, gen)
    logits, _ = model(tok)
    # next-token loss on the repeated half (the first half is unpredictable noise)
    pred = logits[:, T + 1:-1].reshape(-1, VOCAB)
    target = tok[:, T + 2:].reshape(-1)
    loss = torch.nn.functional.cross_entropy(pred, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 250 == 0:
        print(f"step {step}: loss on repeated half {loss.item():.4f} (chance {math.log(VOCAB - 1):.2f})", flush=True)
export(model, STEPS, eval_tokens)
