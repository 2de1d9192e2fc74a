// Diagonal Fisher information by autograd: per-sample gradients of the loss, squared,
// then summed (the R layer divides by the number of samples: square first, reduce
// after). "empirical" uses the given targets; "true" draws targets from the model's own
// predictive distribution (seeded).
#include "rtorch.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

using namespace ts_torch;

namespace {

// Loss of one sample. out: the model output for a batch of one; target: a tensor or
// undefined (then sampled, for the true Fisher).
torch::Tensor sample_loss(const torch::Tensor& out, torch::Tensor target, const std::string& loss,
                          bool sample, torch::Generator& gen) {
  if (loss == "cross_entropy" || loss == "next_token") {
    // out [1, K] (classifier) or [1, T, K] (sequence model, target [1, T]); next_token:
    // logits at positions 1..T-1 predict tokens 2..T (the R layer passes those).
    torch::Tensor o = out;
    if (loss == "next_token") {
      if (out.dim() != 3) ts_torch::fail(tensorscope::ErrorKind::mismatch, "next_token needs outputs [batch, positions, vocabulary]");
      o = out.narrow(1, 0, out.size(1) - 1);
    }
    torch::Tensor logits = o.reshape({-1, o.size(-1)});
    if (sample) {
      torch::NoGradGuard ng;
      // sampled on the CPU with the seeded CPU generator (the same draws on any device)
      target = torch::multinomial(torch::softmax(logits.detach().to(torch::kCPU, torch::kFloat64), -1), 1, true, gen)
                   .reshape({-1}).to(logits.device());
    }
    target = target.reshape({-1}).to(torch::kInt64);
    if (target.numel() != logits.size(0)) ts_torch::fail(tensorscope::ErrorKind::mismatch, "targets do not match the model output");
    if (target.min().item<int64_t>() < 0 || target.max().item<int64_t>() >= logits.size(1)) {
      ts_torch::fail(tensorscope::ErrorKind::mismatch, "a target class is outside 0.." + std::to_string(logits.size(1) - 1) +
                                  " (the model has " + std::to_string(logits.size(1)) + " outputs)");
    }
    return -torch::log_softmax(logits, -1).gather(1, target.unsqueeze(1)).mean();
  }
  if (loss == "bce") {
    torch::Tensor z = out.reshape({-1});
    if (sample) {
      torch::NoGradGuard ng;
      target = torch::bernoulli(torch::sigmoid(z.detach().to(torch::kCPU, torch::kFloat64)), gen).to(z.device());
    }
    target = target.reshape({-1}).to(z.scalar_type());
    if (target.numel() != z.numel()) ts_torch::fail(tensorscope::ErrorKind::mismatch, "targets do not match the model output");
    // sum over outputs of log(1 + exp(z)) - y z, computed stably
    return (torch::log1p(torch::exp(-z.abs())) + z.clamp_min(0) - z * target).sum();
  }
  // mse: 0.5 * sum of squared errors (Gaussian likelihood with unit variance).
  torch::Tensor y = out.reshape({-1});
  if (sample) {
    torch::NoGradGuard ng;
    target = y.detach() + torch::randn(y.sizes(), gen, y.options());
  }
  target = target.reshape({-1}).to(y.scalar_type());
  if (target.numel() != y.numel()) ts_torch::fail(tensorscope::ErrorKind::mismatch, "targets do not match the model output");
  return (y - target).pow(2).sum().mul(0.5);
}

}  // namespace

// inputs: list of R arrays (samples first) for this chunk; targets: R array (samples
// first) or NULL (true Fisher); returns the per-parameter sums of squared per-sample
// gradients over the chunk, as R arrays named by parameter.
extern "C" SEXP ts_torch_fisher_sums(SEXP ptr, SEXP inputs, SEXP targets, SEXP loss_, SEXP seed) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const std::string loss = as_string(loss_);
    const bool sample = Rf_isNull(targets);
    const auto ft = float_type(m->module);
    std::vector<torch::Tensor> x;
    for (R_xlen_t i = 0; i < XLENGTH(inputs); ++i) x.push_back(to_tensor(VECTOR_ELT(inputs, i), ft, m->device));
    torch::Tensor y;
    if (!sample) y = to_tensor(targets, (loss == "cross_entropy" || loss == "next_token") ? torch::kFloat64 : ft, m->device);
    std::vector<std::string> names;
    std::vector<torch::Tensor> params, sums;
    for (const auto& p : m->module.named_parameters(true)) {
      if (!p.value.requires_grad()) continue;
      names.push_back(p.name);
      params.push_back(p.value);
      sums.push_back(torch::zeros(p.value.sizes(), p.value.options().dtype(torch::kFloat64)));
    }
    if (params.empty()) ts_torch::fail(tensorscope::ErrorKind::argument, "the model has no trainable parameters");
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(REAL(seed)[0]));
    const int64_t n = x[0].size(0);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<c10::IValue> in;
      for (const auto& xi : x) in.emplace_back(xi.narrow(0, i, 1));
      torch::Tensor out = first_tensor(m->module.forward(in));
      m->forwards += 1;
      torch::Tensor t = sample ? torch::Tensor() : y.narrow(0, i, 1);
      torch::Tensor l = sample_loss(out, t, loss, sample, gen);
      auto g = torch::autograd::grad({l}, params, {}, false, false, true);
      for (size_t k = 0; k < params.size(); ++k) {
        if (g[k].defined()) sums[k].add_(g[k].to(torch::kFloat64).pow(2));
      }
    }
    return tensor_list(sums, names);
  });
}
