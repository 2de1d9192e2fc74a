#!/usr/bin/python3
# Makes the shipped 2-layer attention-only transformer (inst/extdata/induction_step*.pt,
# scripted TorchScript) trained on sequences of random tokens repeated twice, so that it
# forms previous-token and induction heads. Run from the package root with Debian's
# python3-torch:  /usr/bin/python3 data-raw/induction_transformer.py
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
# Data: token 0 is BOS, then SEQ random tokens from 1..d_vocab-1, then the same SEQ
# tokens again (n_ctx = 1 + 2 * SEQ). Induction shows as low loss on the repeat.
import math, os
import torch
import torch.nn as nn

torch.manual_seed(7)
torch.set_num_threads(1)
EXT = "inst/extdata"
OUT = "data-raw/out"
os.makedirs(OUT, exist_ok=True)
D_VOCAB, D_MODEL, N_HEADS, D_HEAD, SEQ = 64, 64, 4, 16, 12
N_CTX = 1 + 2 * SEQ


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


def batch(n):
    r = torch.randint(1, D_VOCAB, (n, SEQ))
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), r, r], dim=1)


def repeat_loss(model, tokens):
    with torch.no_grad():
        logits = model(tokens)
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        return -lp[:, : SEQ].mean().item(), -lp[:, SEQ + 1:].mean().item()


model = AttnOnly()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
test = batch(256)
save_at = {0, 100, 300, 600, 1500}
log = []
for step in range(0, 1501):
    if step in save_at:
        first, rep = repeat_loss(model, test)
        log.append((step, first, rep))
        print("step %d: loss first half %.3f, repeated half %.3f" % (step, first, rep), flush=True)
        torch.jit.script(model).save(os.path.join(EXT, "induction_step%04d.pt" % step))
    if step == 1500:
        break
    tokens = batch(64)
    logits = model(tokens)
    loss = nn.functional.cross_entropy(logits[:, :-1].reshape(-1, D_VOCAB), tokens[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
with open(os.path.join(OUT, "induction_log.csv"), "w") as f:
    f.write("step,loss_first_half,loss_repeated_half\n")
    for s, a, b in log:
        f.write("%d,%.4f,%.4f\n" % (s, a, b))
test[:8].numpy().astype("int32").tofile(os.path.join(OUT, "induction_tokens_i32.bin"))
