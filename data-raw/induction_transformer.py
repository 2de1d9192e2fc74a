#!/usr/bin/python3
# Makes the shipped 2-layer attention-only transformer (inst/extdata/induction_step*.pt,
# scripted TorchScript) trained on sequences that contain a repeated random segment at a
# random offset and with a random period, so that it forms a two-step induction circuit:
# previous-token heads in layer 1 and induction heads in layer 2 that find the earlier
# copy by K-composition (position alone cannot locate it). Also exports, for the
# untrained and the final checkpoint, the per-head weights and the attention patterns
# that tests/testthat/test-circuits.R uses without LibTorch (data-raw/extdata.R turns
# them into inst/extdata/induction_circuits.rds). Run from the package root with
# Debian's python3-torch:  /usr/bin/python3 data-raw/induction_transformer.py
#
# Layout (TransformerLens conventions, one attention module per block):
#   embed.W_E [d_vocab, d_model]; pos_embed.W_pos [n_ctx, d_model]
#   blocks.<l>.attn.W_Q, W_K, W_V [n_heads, d_model, d_head]; b_Q, b_K, b_V [n_heads, d_head]
#   blocks.<l>.attn.W_O [n_heads, d_head, d_model]; b_O [d_model]
#   unembed.W_U [d_model, d_vocab]; unembed.b_U [d_vocab]
# Residual stream: resid = embed + pos_embed; resid += attn_l(resid) for l = 0, 1;
# logits = resid @ W_U + b_U. No layer norm, no MLPs.
#   q[b, p, h, :] = resid[b, p, :] @ W_Q[h] + b_Q[h]   (same for k, v)
#   scores[b, h, q, k] = q . k / sqrt(d_head), causal mask (k > q gets -inf)
#   pattern = softmax over k; z[b, q, h, :] = sum_k pattern[b, h, q, k] v[b, k, h, :]
#   out[b, q, :] = sum_h z[b, q, h, :] @ W_O[h] + b_O
# Identity hooks (nn.Identity submodules, so activations() can capture them):
#   hook_embed, hook_pos_embed, blocks.<l>.hook_resid_pre, blocks.<l>.attn.hook_q / hook_k /
#   hook_v [batch, pos, head, d_head], blocks.<l>.attn.hook_attn_scores and
#   blocks.<l>.attn.hook_pattern [batch, head, query, key], blocks.<l>.attn.hook_z
#   [batch, pos, head, d_head], blocks.<l>.hook_attn_out and hook_resid_post [batch, pos, d_model].
# Inputs: integer token ids [batch, n_ctx] in 0..d_vocab-1; output logits [batch, pos, d_vocab].
# Training data (n_ctx = 25): token 0 (BOS), then 24 random tokens from 1..d_vocab-1 in
# which a segment of length T starting at 1 + F is repeated right after itself, with the
# period T drawn from PERIODS (7, 9 and 11 are held out, to test generalisation) and the
# filler length F uniform on 0..24 - 2T. Loss: next-token cross-entropy on the
# predictable positions (the second copy, from its second token on).
import math, os, sys
import torch
import torch.nn as nn

torch.manual_seed(7)
torch.set_num_threads(1)
EXT = "inst/extdata"
OUT = "data-raw/out"
os.makedirs(OUT, exist_ok=True)
D_VOCAB, D_MODEL, N_HEADS, D_HEAD, N_CTX = 64, 64, 4, 16, 25
PERIODS = torch.tensor([4, 5, 6, 8, 10, 12])
STEPS = int(os.environ.get("STEPS", 1500))
SAVE_AT = sorted({0, STEPS} | {int(s) for s in os.environ.get("SAVE_AT", "100,300,500").split(",") if s})
SEQ = 12  # test sequences: BOS + 12 random tokens + the same 12 again (period 12, no filler)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        s = 1 / math.sqrt(D_MODEL)
        self.W_Q = nn.Parameter(torch.randn(N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_K = nn.Parameter(torch.randn(N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_V = nn.Parameter(torch.randn(N_HEADS, D_MODEL, D_HEAD) * s)
        self.W_O = nn.Parameter(torch.randn(N_HEADS, D_HEAD, D_MODEL) / math.sqrt(D_HEAD * N_HEADS))
        self.b_Q = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_K = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_V = nn.Parameter(torch.zeros(N_HEADS, D_HEAD))
        self.b_O = nn.Parameter(torch.zeros(D_MODEL))
        self.hook_q = nn.Identity()
        self.hook_k = nn.Identity()
        self.hook_v = nn.Identity()
        self.hook_attn_scores = nn.Identity()
        self.hook_pattern = nn.Identity()
        self.hook_z = nn.Identity()
        self.scale = 1 / math.sqrt(D_HEAD)
        self.register_buffer("mask", torch.tril(torch.ones(N_CTX, N_CTX, dtype=torch.bool)))

    def forward(self, x):
        n = x.shape[1]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) * self.scale
        scores = scores.masked_fill(~self.mask[:n, :n], float("-inf"))
        scores = self.hook_attn_scores(scores)
        pattern = self.hook_pattern(torch.softmax(scores, dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.hook_resid_pre = nn.Identity()
        self.attn = Attention()
        self.hook_attn_out = nn.Identity()
        self.hook_resid_post = nn.Identity()

    def forward(self, x):
        x = self.hook_resid_pre(x)
        return self.hook_resid_post(x + self.hook_attn_out(self.attn(x)))


class Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_E = nn.Parameter(torch.randn(D_VOCAB, D_MODEL) / math.sqrt(D_MODEL))

    def forward(self, tokens):
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_pos = nn.Parameter(torch.randn(N_CTX, D_MODEL) / math.sqrt(D_MODEL))

    def forward(self, tokens):
        return self.W_pos[: tokens.shape[1]].unsqueeze(0)


class Unembed(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_U = nn.Parameter(torch.randn(D_MODEL, D_VOCAB) / math.sqrt(D_MODEL))
        self.b_U = nn.Parameter(torch.zeros(D_VOCAB))

    def forward(self, x):
        return x @ self.W_U + self.b_U


class AttnOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = Embed()
        self.hook_embed = nn.Identity()
        self.pos_embed = PosEmbed()
        self.hook_pos_embed = nn.Identity()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.unembed = Unembed()

    def forward(self, tokens):
        x = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)


def batch(n, gen):
    # BOS, then random tokens with the segment [1 + F, 1 + F + T) repeated right after itself
    tok = torch.randint(1, D_VOCAB, (n, N_CTX), generator=gen)
    tok[:, 0] = 0
    T = PERIODS[torch.randint(0, len(PERIODS), (n, 1), generator=gen)]
    F = (torch.rand(n, 1, generator=gen) * (N_CTX - 2 * T)).floor().long()   # 0..24 - 2T
    p = torch.arange(N_CTX).unsqueeze(0)
    second = (p >= 1 + F + T) & (p < 1 + F + 2 * T)
    return tok.gather(1, torch.where(second, p - T, p)), T, F, second


def repeated(n, seq, gen):
    r = torch.randint(1, D_VOCAB, (n, seq), generator=gen)
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), r, r], dim=1)


def patterns(model, tokens):
    # [batch, layer, head, query, key] from the hook_pattern identity modules
    got = []
    hooks = [b.attn.hook_pattern.register_forward_hook(lambda m, i, o: got.append(o.detach()))
             for b in model.blocks]
    with torch.no_grad():
        model(tokens)
    for h in hooks:
        h.remove()
    return torch.stack(got, 1)


def diagnostics(model, gen):
    # previous-token score of the layer-1 heads, induction score of the layer-2 heads on
    # BOS + 9 + 9 (a held-out period), and the best K-composition between them
    seq = 9
    a = patterns(model, repeated(64, seq, gen))
    n = a.shape[-1]
    prev = a[:, 0, :, torch.arange(1, n), torch.arange(0, n - 1)].mean((0, 2))
    q = torch.arange(1 + seq, 1 + 2 * seq)
    ind = a[:, 1, :, q, q - seq + 1].mean((0, 2))
    b0, b1 = model.blocks[0].attn, model.blocks[1].attn
    kc = torch.zeros(N_HEADS, N_HEADS)
    with torch.no_grad():
        for s in range(N_HEADS):
            ov = b0.W_V[s] @ b0.W_O[s]
            for t in range(N_HEADS):
                m = b1.W_K[t] @ b1.W_Q[t].T
                kc[s, t] = (ov @ m).norm() / (ov.norm() * m.norm())
    return prev, ind, kc


def losses(model, tokens, second):
    with torch.no_grad():
        lp = torch.log_softmax(model(tokens)[:, :-1], -1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
    # predictable: every token of the second copy but its first
    pred = second[:, 1:] & second[:, :-1]
    return -lp[~second[:, 1:]].mean().item(), -lp[pred].mean().item()


def fmt(v):
    return " ".join("%.2f" % x for x in v.tolist())


model = AttnOnly()
LR = float(os.environ.get("LR", 3e-3))
opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.1)
gen = torch.Generator().manual_seed(1)
gen_test = torch.Generator().manual_seed(2)
test, _, _, test_second = batch(512, gen_test)
log = []
snap = {}
for step in range(0, STEPS + 1):
    if step in SAVE_AT or step % 250 == 0:
        other, rep = losses(model, test, test_second)
        prev, ind, kc = diagnostics(model, torch.Generator().manual_seed(3))
        print("step %4d: loss other %.3f, repeat %.3f | prev L1 %s | ind L2 %s | max K-comp %.2f (median %.2f)"
              % (step, other, rep, fmt(prev), fmt(ind), kc.max(), kc.median()), flush=True)
        if step in SAVE_AT:
            log.append((step, other, rep))
            torch.jit.script(model).save(os.path.join(EXT, "induction_step%04d.pt" % step))
            snap[step] = {k: v.clone() for k, v in model.state_dict().items()}
    if step == STEPS:
        break
    tokens, _, _, second = batch(64, gen)
    logits = model(tokens)
    # next-token loss on the predictable positions (the rest is irreducible noise)
    pred = second[:, 1:] & second[:, :-1]
    loss = nn.functional.cross_entropy(logits[:, :-1][pred], tokens[:, 1:][pred])
    opt.zero_grad()
    loss.backward()
    opt.step()

with open(os.path.join(OUT, "induction_log.csv"), "w") as f:
    f.write("step,loss_other,loss_repeat\n")
    for s, a, b in log:
        f.write("%d,%.4f,%.4f\n" % (s, a, b))
tg = torch.Generator().manual_seed(4)
repeated(8, SEQ, tg).numpy().astype("int32").tofile(os.path.join(OUT, "induction_tokens_i32.bin"))

# Arrays for the circuit tests without LibTorch: per-head weights [layer, head, ...] and
# patterns [sequence, layer, head, query, key] on BOS + 11 + 11 (a held-out period),
# float64, row-major, one file each, listed in induction_circuits_index.csv.
T_EXPORT, N_EXPORT = 11, 4
export_tokens = repeated(N_EXPORT, T_EXPORT, torch.Generator().manual_seed(5))
index = []
for label, step in (("untrained", 0), ("trained", STEPS)):
    model.load_state_dict(snap[step])
    arrays = {name: torch.stack([getattr(b.attn, name).detach() for b in model.blocks])
              for name in ("W_Q", "W_K", "W_V", "W_O")}
    arrays["patterns"] = patterns(model, export_tokens)
    for name, a in arrays.items():
        file = "circ_%s_%s.bin" % (label, name)
        a.double().numpy().tofile(os.path.join(OUT, file))
        index.append((label, step, name, file, "x".join(str(d) for d in a.shape)))
export_tokens.numpy().astype("int32").tofile(os.path.join(OUT, "circ_tokens_i32.bin"))
with open(os.path.join(OUT, "induction_circuits_index.csv"), "w") as f:
    f.write("checkpoint,step,name,file,dims\n")
    for row in index:
        f.write("%s,%d,%s,%s,%s\n" % row)
with open(os.path.join(OUT, "induction_circuits_layout.csv"), "w") as f:
    f.write("seq_len,prefix,n_seqs\n%d,1,%d\n" % (T_EXPORT, N_EXPORT))
