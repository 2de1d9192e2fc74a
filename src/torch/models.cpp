// TorchScript models: loading, submodules and parameters, forward passes that capture
// the outputs of chosen submodules in the same pass, ablation (zeroed groups).
//
// Capture: the forward graph is copied; every prim::CallMethod whose module is an
// ancestor of a requested submodule is inlined (repeatedly, so nested paths open up),
// which leaves the requested submodule's own call as a node whose output is the
// submodule's output; those outputs are returned with the model's output as a tuple.
// This works for traced and scripted exports alike (both keep submodule calls as
// prim::CallMethod) and for identity "hook" submodules, whose calls survive as nodes.
#include "rtorch.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>

using namespace ts_torch;
namespace jit = torch::jit;

namespace {

// Dotted path of a module value inside graph g ("" = the root module), or nullopt.
std::optional<std::string> module_path(jit::Value* v, jit::Value* self) {
  if (v == self) return std::string();
  jit::Node* n = v->node();
  if (n->kind() != c10::prim::GetAttr) return std::nullopt;
  auto parent = module_path(n->input(0), self);
  if (!parent) return std::nullopt;
  const std::string name = n->s(c10::attr::name);
  return parent->empty() ? name : *parent + "." + name;
}

bool is_ancestor(const std::string& p, const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    if (p.empty() || (t.size() > p.size() && t.compare(0, p.size(), p) == 0 && t[p.size()] == '.')) return true;
  }
  return false;
}

void collect_calls(jit::Block* b, std::vector<jit::Node*>& out) {
  for (jit::Node* n : b->nodes()) {
    if (n->kind() == c10::prim::CallMethod) out.push_back(n);
    for (jit::Block* sb : n->blocks()) collect_calls(sb, out);
  }
}

std::shared_ptr<jit::Graph> capture_graph(const jit::Module& m, const std::vector<std::string>& layers) {
  auto g = m.get_method("forward").graph()->copy();
  jit::Value* self = g->inputs()[0];
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<jit::Node*> calls;
    collect_calls(g->block(), calls);
    for (jit::Node* n : calls) {
      auto p = module_path(n->input(0), self);
      if (!p || !is_ancestor(*p, layers)) continue;
      auto cls = n->input(0)->type()->cast<c10::ClassType>();
      if (!cls) continue;
      auto& fn = jit::toGraphFunction(cls->getMethod(n->s(c10::attr::name)));
      // the callee's own graph (its submodule calls kept), not its inlined optimized_graph
      jit::inlineCallTo(n, &fn, fn.graph().get());
      changed = true;
      break;
    }
  }
  if (std::getenv("TS_TORCH_DEBUG")) g->dump();
  std::vector<jit::Value*> found;
  std::vector<jit::Node*> calls;
  collect_calls(g->block(), calls);
  for (const auto& layer : layers) {
    jit::Node* last = nullptr;
    bool nested = false;
    for (jit::Node* n : calls) {
      if (n->s(c10::attr::name) != "forward") continue;
      auto p = module_path(n->input(0), self);
      if (!p || *p != layer) continue;
      if (n->owningBlock() != g->block()) {
        nested = true;
        continue;
      }
      last = n;
    }
    if (last == nullptr) {
      std::string why = nested ? "it is only called inside a branch or loop of forward()"
                               : "its forward() is not called by the model's forward() (or the export inlined it)";
      ts_torch::fail(tensorscope::ErrorKind::argument, "cannot capture layer '" + layer + "': " + why);
    }
    if (last->outputs().size() != 1 || !last->output()->type()->isSubtypeOf(*c10::TensorType::get())) {
      ts_torch::fail(tensorscope::ErrorKind::argument, "layer '" + layer + "' does not return a single tensor");
    }
    found.push_back(last->output());
  }
  std::vector<jit::Value*> outs{g->outputs()[0]};
  outs.insert(outs.end(), found.begin(), found.end());
  jit::Node* tuple = g->createTuple(outs);
  tuple->insertBefore(g->return_node());
  g->eraseOutput(0);
  g->registerOutput(tuple->output());
  return g;
}

torch::Device parse_device(const std::string& d) {
  torch::Device dev(d);
  if (dev.is_cuda() && !torch::cuda::is_available()) {
    ts_torch::fail(tensorscope::ErrorKind::cuda_unavailable, "device '" + d + "' asked for, but this LibTorch has no usable CUDA");
  }
  return dev;
}

std::vector<c10::IValue> batch_inputs(SEXP inputs, const Model& m) {
  const auto ft = float_type(m.module);
  std::vector<c10::IValue> out;
  for (R_xlen_t i = 0; i < XLENGTH(inputs); ++i) out.emplace_back(to_tensor(VECTOR_ELT(inputs, i), ft, m.device));
  return out;
}

}  // namespace

extern "C" SEXP ts_torch_load(SEXP path, SEXP device) {
  return guarded([&]() -> SEXP {
    auto m = std::make_unique<Model>();
    m->device = parse_device(as_string(device));
    try {
      m->module = torch::jit::load(as_string(path), m->device);
    } catch (const c10::Error& e) {
      ts_torch::fail(tensorscope::ErrorKind::not_torchscript, std::string() + e.what_without_backtrace());
    } catch (const std::exception& e) {
      ts_torch::fail(tensorscope::ErrorKind::not_torchscript, std::string() + e.what());
    }
    m->module.eval();
    return wrap_model(std::move(m));
  });
}

// Submodules: name ("" = the model), type, and the parameter counts (own, with children).
extern "C" SEXP ts_torch_modules(SEXP ptr) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    std::vector<std::string> names, types;
    std::vector<double> own, total;
    for (const auto& nm : m->module.named_modules()) {
      names.push_back(nm.name);
      auto t = nm.value.type()->name();
      types.push_back(t ? t->name() : "?");
      double o = 0, a = 0;
      for (const auto& p : nm.value.parameters(false)) o += p.numel();
      for (const auto& p : nm.value.parameters(true)) a += p.numel();
      own.push_back(o);
      total.push_back(a);
    }
    const int n = static_cast<int>(names.size());
    SEXP nm = PROTECT(Rf_allocVector(STRSXP, n));
    SEXP ty = PROTECT(Rf_allocVector(STRSXP, n));
    SEXP ow = PROTECT(Rf_allocVector(REALSXP, n));
    SEXP to = PROTECT(Rf_allocVector(REALSXP, n));
    for (int i = 0; i < n; ++i) {
      SET_STRING_ELT(nm, i, Rf_mkChar(names[i].c_str()));
      SET_STRING_ELT(ty, i, Rf_mkChar(types[i].c_str()));
      REAL(ow)[i] = own[i];
      REAL(to)[i] = total[i];
    }
    SEXP out = named_list({nm, ty, ow, to}, {"module", "type", "n_own", "n_total"});
    UNPROTECT(4);
    return out;
  });
}

// Named parameters (dotted paths) as R arrays with the tensor's dims.
extern "C" SEXP ts_torch_parameters(SEXP ptr) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    std::vector<std::string> names;
    std::vector<torch::Tensor> values;
    for (const auto& p : m->module.named_parameters(true)) {
      names.push_back(p.name);
      values.push_back(p.value);
    }
    return tensor_list(values, names);
  });
}

// One forward pass over one batch. The outputs (model output, then each layer) are kept
// on the C++ side, in float64 on the CPU, until ts_torch_collect() concatenates them and
// converts them to R arrays once (no per-batch R copies). first = TRUE starts a new run.
extern "C" SEXP ts_torch_forward(SEXP ptr, SEXP inputs, SEXP layers, SEXP first) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    auto names = as_strings(layers);
    std::string key;
    for (const auto& n : names) key += n + "\n";
    auto it = m->captures.find(key);
    if (it == m->captures.end()) {
      auto g = capture_graph(m->module, names);
      auto fn = std::make_shared<jit::GraphFunction>("ts_capture", g, nullptr);
      it = m->captures.emplace(key, fn).first;
    }
    if (Rf_asLogical(first)) {
      m->pending.assign(names.size() + 1, {});
      m->pending_shapes.assign(names.size() + 1, {});
      m->pending_names = {"output"};
      m->pending_names.insert(m->pending_names.end(), names.begin(), names.end());
    }
    if (m->pending.size() != names.size() + 1) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_forward: layers changed within a run");
    torch::NoGradGuard no_grad;
    jit::Stack stack{m->module._ivalue()};
    int64_t batch = -1;  // stimuli in this batch: the first input tensor's leading dim
    for (auto& v : batch_inputs(inputs, *m)) {
      if (batch < 0 && v.isTensor() && v.toTensor().dim() > 0) batch = v.toTensor().size(0);
      stack.push_back(std::move(v));
    }
    it->second->run(stack);
    m->forwards += 1;
    auto elems = stack.back().toTupleRef().elements();
    for (size_t i = 0; i < elems.size(); ++i) {
      torch::Tensor t = i == 0 ? first_tensor(elems[0]) : elems[i].toTensor();
      if (t.dim() == 0) ts_torch::fail(tensorscope::ErrorKind::mismatch, "output " + m->pending_names[i] + " is a scalar, not one value per stimulus");
      if (batch > 0 && t.size(0) != batch) {
        // a leading dim of 1 broadcasts over the batch (a positional embedding, say):
        // the same values for every stimulus
        if (t.size(0) != 1)
          ts_torch::fail(tensorscope::ErrorKind::mismatch, "output " + m->pending_names[i] + " has leading dimension " +
                                      std::to_string(t.size(0)) + ", not one row per stimulus (batch of " +
                                      std::to_string(batch) + ")");
        std::vector<int64_t> sz(t.sizes().begin(), t.sizes().end());
        sz[0] = batch;
        t = t.expand(sz);
      }
      std::vector<int64_t> shape(t.sizes().begin() + 1, t.sizes().end());
      if (m->pending[i].empty()) {
        m->pending_shapes[i] = shape;
      } else if (shape != m->pending_shapes[i]) {
        ts_torch::fail(tensorscope::ErrorKind::mismatch, "output " + m->pending_names[i] + " changes shape between batches");
      }
      const int64_t b = t.size(0);
      // features in R's column-major order of the per-stimulus dims (first dim fastest)
      std::vector<int64_t> perm{0};
      for (int64_t d = t.dim() - 1; d >= 1; --d) perm.push_back(d);
      m->pending[i].push_back(t.detach().to(torch::kCPU, torch::kFloat64).permute(perm).reshape({b, -1}).t().contiguous());
    }
    return R_NilValue;
  });
}

// The outputs of the batches since the last first = TRUE: list(output, <layers>), each
// an n x features R matrix (column-major, filled block by block without another copy of
// the whole) with attribute "shape" (the per-stimulus shape).
extern "C" SEXP ts_torch_collect(SEXP ptr) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const R_xlen_t k = static_cast<R_xlen_t>(m->pending.size());
    SEXP out = PROTECT(Rf_allocVector(VECSXP, k));
    for (R_xlen_t i = 0; i < k; ++i) {
      auto& blocks = m->pending[i];
      int64_t n = 0;
      for (const auto& b : blocks) n += b.size(1);
      const int64_t f = blocks.empty() ? 0 : blocks[0].size(0);
      SEXP mat = PROTECT(Rf_allocMatrix(REALSXP, static_cast<int>(n), static_cast<int>(f)));
      double* dst = REAL(mat);
      int64_t row = 0;
      for (auto& b : blocks) {
        const int64_t nb = b.size(1);
        const double* src = b.data_ptr<double>();
        for (int64_t j = 0; j < f; ++j) std::memcpy(dst + row + n * j, src + nb * j, sizeof(double) * nb);
        row += nb;
        b = torch::Tensor();
      }
      const auto& sh = m->pending_shapes[i];
      SEXP shape = PROTECT(Rf_allocVector(INTSXP, static_cast<R_xlen_t>(sh.size())));
      for (size_t j = 0; j < sh.size(); ++j) INTEGER(shape)[j] = static_cast<int>(sh[j]);
      Rf_setAttrib(mat, Rf_install("shape"), shape);
      SET_VECTOR_ELT(out, i, mat);
      UNPROTECT(2);
    }
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, k));
    for (R_xlen_t i = 0; i < k; ++i) SET_STRING_ELT(nms, i, Rf_mkChar(m->pending_names[i].c_str()));
    Rf_setAttrib(out, R_NamesSymbol, nms);
    m->pending.clear();
    UNPROTECT(2);
    return out;
  });
}

extern "C" SEXP ts_torch_forward_count(SEXP ptr) {
  return guarded([&]() -> SEXP { return Rf_ScalarReal(static_cast<double>(get_model(ptr)->forwards)); });
}

// A copy of the model whose named parameters are multiplied elementwise by the given
// R arrays (0 = ablated, 1 = kept); the original model is untouched.
extern "C" SEXP ts_torch_ablate(SEXP ptr, SEXP multipliers) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    auto copy = std::make_unique<Model>();
    copy->device = m->device;
    copy->module = m->module.deepcopy();
    copy->module.eval();
    SEXP nms = Rf_getAttrib(multipliers, R_NamesSymbol);
    std::map<std::string, SEXP> mult;
    for (R_xlen_t i = 0; i < XLENGTH(multipliers); ++i) mult[CHAR(STRING_ELT(nms, i))] = VECTOR_ELT(multipliers, i);
    torch::NoGradGuard no_grad;
    for (const auto& p : copy->module.named_parameters(true)) {
      auto f = mult.find(p.name);
      if (f == mult.end()) continue;
      torch::Tensor w = to_tensor(f->second, p.value.scalar_type(), p.value.device());
      if (!w.sizes().equals(p.value.sizes())) ts_torch::fail(tensorscope::ErrorKind::mismatch, "mask for '" + p.name + "' has the wrong shape");
      p.value.mul_(w);
    }
    return wrap_model(std::move(copy));
  });
}
