// TorchScript models: loading, submodules and parameters, forward passes that capture
// the outputs of chosen submodules in the same pass, ablation (zeroed groups).
//
// Capture: the forward graph is copied; every prim::CallMethod on the model itself or on
// an ancestor of a requested submodule is inlined (repeatedly, so nested paths open up),
// which leaves each call of a requested submodule as a node of forward()'s top-level
// block. Right after each such call its output is cloned (so a later in-place op cannot
// change it) and the clones are returned with the model's output as a tuple. This works
// for traced and scripted exports alike (both keep submodule calls as prim::CallMethod;
// a tracer names a module's later calls forward1, forward2, ...) and for identity "hook"
// submodules, whose calls survive as nodes. Each batch's outputs are then reduced in
// LibTorch (none / average pooling / sparse random projection) and written straight into
// preallocated R matrices (ts_torch_write), so nothing accumulates on the C++ side.
#include "rtorch.h"

#include <cstdio>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/library.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <tensorscope/projection.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#if !defined(_WIN32)
#include <sys/mman.h>
#define TS_MAPPED_BLOCKS 1
#endif

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

// "forward", or the "forward1", "forward2", ... a tracer makes of a module's later calls
bool is_forward(const std::string& s) {
  if (s.compare(0, 7, "forward") != 0) return false;
  for (size_t i = 7; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool holds_tensor(const c10::TypePtr& t) {
  if (t->isSubtypeOf(*c10::TensorType::get())) return true;
  if (auto tt = t->cast<c10::TupleType>()) {
    for (const auto& e : tt->elements())
      if (holds_tensor(e)) return true;
    return false;
  }
  if (auto lt = t->cast<c10::ListType>()) return holds_tensor(lt->getElementType());
  if (auto dt = t->cast<c10::DictType>()) return holds_tensor(dt->getValueType());
  if (auto ot = t->cast<c10::OptionalType>()) return holds_tensor(ot->getElementType());
  return false;
}

const c10::Symbol kMarked = c10::Symbol::attr("ts_marked");
const c10::Symbol kCapture = c10::Symbol::attr("ts_capture");

// Right after the call n, keeps its output as it was returned: a tensor is cloned (a
// later in-place op, such as torchvision's ReLU(inplace = True), then cannot change
// it), a tuple's tensors are cloned one by one; lists and dicts are kept as they are.
// The kept value is wrapped in a 1-tuple node tagged with the layer's name.
void keep_output(jit::Graph* g, jit::Node* n, const std::string& layer) {
  jit::WithInsertPoint guard(n->next());
  jit::Value* v = n->output();
  if (!holds_tensor(v->type())) {
    ts_torch::fail(tensorscope::ErrorKind::argument, "cannot capture layer '" + layer + "': it returns " + v->type()->repr_str() +
                                ", not a tensor (or a tuple, list or dict of tensors)");
  }
  auto is_tensor = [](jit::Value* x) { return x->type()->isSubtypeOf(*c10::TensorType::get()); };
  jit::Value* kept = v;
  if (is_tensor(v)) {
    kept = g->insert(c10::aten::clone, {v});
  } else if (v->type()->cast<c10::TupleType>()) {
    jit::Node* un = g->insertNode(g->createTupleUnpack(v));
    std::vector<jit::Value*> el;
    for (jit::Value* o : un->outputs()) el.push_back(is_tensor(o) ? g->insert(c10::aten::clone, {o}) : o);
    kept = g->insertNode(g->createTuple(el))->output();
  }
  // (kept, raw[, version]): the value itself and, for a tensor, its version counter right
  // after the call tell after the first batch whether the copy is needed (elide_clones())
  std::vector<jit::Value*> parts{kept, v};
  if (is_tensor(v)) parts.push_back(g->insert(c10::Symbol::fromQualString("tensorscope::version"), {v}));
  jit::Node* mark = g->insertNode(g->createTuple(parts));
  mark->s_(kCapture, layer);
  n->i_(kMarked, 1);
}

struct CaptureGraph {
  std::shared_ptr<jit::Graph> graph;
  std::vector<std::string> names;  // one per extra output: "layer", "layer:2", ...
  std::vector<std::string> found;  // the layers found (strict = false)
};

// The forward graph with every call of the chosen layers kept as extra outputs. Calls on
// the model itself and on ancestors of a chosen layer are inlined, repeatedly, until the
// chosen layers' own calls are nodes of forward()'s top-level block; each such call (a
// module called three times: three calls, in execution order) becomes an output. A
// layer that is itself an ancestor of another (a block and its child) is kept before its
// call is inlined. strict = false leaves out layers that are never called (default layers).
CaptureGraph capture_graph(const jit::Module& m, const std::vector<std::string>& layers, bool strict,
                           const std::set<std::string>* no_clone = nullptr) {
  auto g = m.get_method("forward").graph()->copy();
  jit::Value* self = g->inputs()[0];
  auto is_target = [&](const std::string& p) { return std::find(layers.begin(), layers.end(), p) != layers.end(); };
  for (;;) {
    std::vector<jit::Node*> calls;
    collect_calls(g->block(), calls);
    for (jit::Node* n : calls) {
      if (n->owningBlock() != g->block() || n->hasAttribute(kMarked) || !is_forward(n->s(c10::attr::name))) continue;
      auto p = module_path(n->input(0), self);
      if (p && is_target(*p)) keep_output(g.get(), n, *p);
    }
    jit::Node* inline_me = nullptr;
    for (jit::Node* n : calls) {
      auto p = module_path(n->input(0), self);
      if (p && is_ancestor(*p, layers) && n->input(0)->type()->cast<c10::ClassType>()) {
        inline_me = n;
        break;
      }
    }
    if (inline_me == nullptr) break;
    auto cls = inline_me->input(0)->type()->cast<c10::ClassType>();
    auto& fn = jit::toGraphFunction(cls->getMethod(inline_me->s(c10::attr::name)));
    // the callee's own graph (its submodule calls kept), not its inlined optimized_graph
    jit::inlineCallTo(inline_me, &fn, fn.graph().get());
  }
  if (std::getenv("TS_TORCH_DEBUG")) g->dump();
  std::map<std::string, std::vector<jit::Value*>> kept;
  for (jit::Node* n : g->block()->nodes()) {
    if (n->kind() == c10::prim::TupleConstruct && n->hasAttribute(kCapture)) kept[n->s(kCapture)].push_back(n->output());
  }
  if (no_clone != nullptr) {
    // the outputs that nothing writes to in place keep the value itself, not a copy; the
    // mark becomes (value) and the unused copies are removed
    for (auto& [layer, marks] : kept) {
      for (size_t i = 0; i < marks.size(); ++i) {
        jit::Node* mark = marks[i]->node();
        const std::string name = i == 0 ? layer : layer + ":" + std::to_string(i + 1);
        jit::WithInsertPoint guard(mark);
        jit::Node* one = g->insertNode(g->createTuple({no_clone->count(name) ? mark->input(1) : mark->input(0)}));
        one->s_(kCapture, layer);
        mark->output()->replaceAllUsesWith(one->output());
        marks[i] = one->output();
        mark->destroy();
      }
    }
  }
  CaptureGraph out;
  std::vector<jit::Value*> outs{g->outputs()[0]};
  for (const auto& layer : layers) {
    auto it = kept.find(layer);
    if (it == kept.end()) {
      if (!strict) continue;
      bool nested = false;
      std::vector<jit::Node*> calls;
      collect_calls(g->block(), calls);
      for (jit::Node* n : calls) {
        auto p = module_path(n->input(0), self);
        if (p && *p == layer) nested = true;
      }
      std::string why = nested ? "it is only called inside a branch or loop of forward()"
                               : "its forward() is not called by the model's forward() (it may be used only through its "
                                 "weights, as nn.MultiheadAttention uses out_proj, or the export inlined it)";
      ts_torch::fail(tensorscope::ErrorKind::argument, "cannot capture layer '" + layer + "': " + why);
    }
    out.found.push_back(layer);
    for (size_t i = 0; i < it->second.size(); ++i) {
      out.names.push_back(i == 0 ? layer : layer + ":" + std::to_string(i + 1));
      outs.push_back(it->second[i]);
    }
  }
  jit::Node* tuple = g->createTuple(outs);
  tuple->insertBefore(g->return_node());
  g->eraseOutput(0);
  g->registerOutput(tuple->output());
  if (no_clone != nullptr) jit::EliminateDeadCode(g);   // the copies no output uses
  out.graph = g;
  return out;
}

// Whether g, or any method it calls, has branches or loops (a scripted model's in-place
// ops could then depend on the data; a traced graph has none).
bool has_control_flow(jit::Block* b, int depth) {
  if (depth > 64) return true;
  for (jit::Node* n : b->nodes()) {
    if (n->kind() == c10::prim::If || n->kind() == c10::prim::Loop || n->kind() == c10::prim::CallFunction) return true;
    if (n->kind() == c10::prim::CallMethod) {
      auto cls = n->input(0)->type()->cast<c10::ClassType>();
      if (!cls) return true;
      auto& fn = jit::toGraphFunction(cls->getMethod(n->s(c10::attr::name)));
      if (has_control_flow(fn.graph()->block(), depth + 1)) return true;
    }
    for (jit::Block* sb : n->blocks())
      if (has_control_flow(sb, depth + 1)) return true;
  }
  return false;
}

// After the probe (every captured value copied, and kept as itself too): the
// tensor outputs that no in-place operation touched after their call (LibTorch's version
// counter, which every in-place op on a tensor or on a view of it increments, the same
// at the end of the pass as right after the call) need no copy. In
// a graph without branches or loops the same operations run on every batch, so the
// capture graph is rebuilt with copies only where an in-place op follows (torchvision's
// BatchNorm before ReLU(inplace = True)); with branches or loops every output is copied.
// Returns the names left uncopied.
std::set<std::string> elide_clones(const Capture& c, const std::vector<c10::IValue>& elems) {
  std::set<std::string> safe;
  if (has_control_flow(c.fn->graph()->block(), 0)) return safe;
  for (size_t i = 1; i < elems.size(); ++i) {
    const auto& mark = elems[i].toTupleRef().elements();
    const c10::IValue& kept = mark[0];
    const c10::IValue& raw = mark[1];
    // tuples keep their copies; lists and dicts are not copied
    if (!raw.isTensor() || mark.size() < 3) continue;
    if (raw.toTensor()._version() == static_cast<uint32_t>(mark[2].toInt())) safe.insert(c.names[i - 1]);
  }
  return safe;
}

// A captured value as named tensors: a tensor is itself; tuples and lists give
// name.0, name.1, ...; dicts name.<key>; None and other values are left out.
void flatten_value(const c10::IValue& v, const std::string& name, std::vector<std::string>& names,
                   std::vector<torch::Tensor>& out) {
  if (v.isTensor()) {
    names.push_back(name);
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    const auto& el = v.toTupleRef().elements();
    for (size_t i = 0; i < el.size(); ++i) flatten_value(el[i], name + "." + std::to_string(i), names, out);
  } else if (v.isList()) {
    const auto l = v.toListRef();
    for (size_t i = 0; i < l.size(); ++i) flatten_value(l[i], name + "." + std::to_string(i), names, out);
  } else if (v.isGenericDict()) {
    for (const auto& e : v.toGenericDict()) {
      const auto& k = e.key();
      std::string key = k.isString() ? k.toStringRef() : k.isInt() ? std::to_string(k.toInt()) : "?";
      flatten_value(e.value(), name + "." + key, names, out);
    }
  }
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

// tensorscope::version(t): t's version counter, read where the capture graph puts it
// (right after a captured call). Conservative alias analysis: the JIT neither moves nor
// removes it.
TORCH_LIBRARY(tensorscope, m) {
  m.def(torch::schema("version(Tensor t) -> int", c10::AliasAnalysisKind::CONSERVATIVE),
        [](const at::Tensor& t) -> int64_t { return static_cast<int64_t>(t._version()); });
}

// The memory preflight's measurement: LibTorch's CPU allocator wrapped so that it counts
// the bytes it holds (now, and the peak since the last reset). Each block carries its
// size in a 64-byte header (c10's alignment), so the raw deleter works too. Blocks of
// 1 MB or more are mapped straight from the kernel and unmapped when freed: through
// malloc, glibc's sliding mmap threshold puts the forward pass's freed intermediates of
// a few MB on its heap, where they stay resident (ResNet-50, 32 images: 0.56 GB more
// than LibTorch ever held at once), so the process's peak would be neither LibTorch's
// peak nor predictable. Installed on first use and never removed: blocks it gave out
// must come back to it.
std::atomic<int64_t> g_current{0}, g_peak{0};

struct CountingAllocator final : c10::Allocator {
  static constexpr size_t kHeader = 64;
  static constexpr size_t kMapped = size_t(1) << 20;
  static constexpr size_t kHuge = size_t(4) << 20;
  static void release(void* data) {
    if (data == nullptr) return;
    void* raw = static_cast<char*>(data) - kHeader;
    const size_t n = *static_cast<size_t*>(raw);
    g_current.fetch_sub(static_cast<int64_t>(n));
#ifdef TS_MAPPED_BLOCKS
    if (n + kHeader >= kMapped) {
      munmap(raw, n + kHeader);
      return;
    }
#endif
    c10::free_cpu(raw);
  }
  c10::DataPtr allocate(size_t n) const override {
    void* raw = nullptr;
#ifdef TS_MAPPED_BLOCKS
    if (n + kHeader >= kMapped) {
      raw = mmap(nullptr, n + kHeader, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (raw == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
      if (n + kHeader >= kHuge) madvise(raw, n + kHeader, MADV_HUGEPAGE);
#endif
    }
#endif
    if (raw == nullptr) raw = c10::alloc_cpu(n + kHeader);
    *static_cast<size_t*>(raw) = n;
    const int64_t now = g_current.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    void* data = static_cast<char*>(raw) + kHeader;
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
};

// true when LibTorch's CPU tensors now come from the counting allocator
bool counting_installed() {
  static CountingAllocator counting;
  static bool tried = false;
  if (!tried) {
    tried = true;
    c10::SetCPUAllocator(&counting, 0);
  }
  return c10::GetCPUAllocator() == &counting;
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

// The module in floating type ft: the model itself, or a converted copy (kept).
jit::Module& module_as(Model* m, torch::ScalarType ft) {
  if (float_type(m->module) == ft) return m->module;
  auto it = m->variants.find(static_cast<int>(ft));
  if (it == m->variants.end()) {
    jit::Module copy = m->module.deepcopy();
    copy.to(ft);
    copy.eval();
    it = m->variants.emplace(static_cast<int>(ft), std::move(copy)).first;
  }
  return it->second;
}

// "float32", "float64", or "model" (the model's own floating type)
torch::ScalarType parse_dtype(SEXP dtype, const Model& m) {
  const std::string d = as_string(dtype);
  if (d == "model") return float_type(m.module);
  if (d == "float64") return torch::kFloat64;
  if (d == "float32") return torch::kFloat32;
  ts_torch::fail(tensorscope::ErrorKind::argument, "dtype must be float32 or float64, not " + d);
}

// Layers (of those given) whose forward() the model's forward() calls: the default layers.
extern "C" SEXP ts_torch_called(SEXP ptr, SEXP layers) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    auto cg = capture_graph(m->module, as_strings(layers), false);
    SEXP out = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(cg.found.size())));
    for (size_t i = 0; i < cg.found.size(); ++i) SET_STRING_ELT(out, i, Rf_mkChar(cg.found[i].c_str()));
    UNPROTECT(1);
    return out;
  });
}

// One forward pass over one batch, in floating type dtype, capturing `layers`. The
// outputs (the model's output, then every captured tensor) are held in LibTorch until
// ts_torch_write() or ts_torch_keep(). inputs: R arrays (this batch's rows), or torch for
// R torch_tensors holding every stimulus, of which rows = c(first row, count) (0-based)
// are taken as a view and handed to forward() without a copy when they already are on
// the model's device in its floating type (int64 for integer tensors: token ids).
// Returns list(names, shapes = per-stimulus shapes, batch, input_ptr: the data pointer
// of the first input as forward() received it, "0x...").
extern "C" SEXP ts_torch_run(SEXP ptr, SEXP inputs, SEXP layers, SEXP dtype, SEXP rows) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const auto ft = parse_dtype(dtype, *m);
    jit::Module& mod = module_as(m, ft);
    auto names = as_strings(layers);
    std::string key = std::to_string(static_cast<int>(ft)) + "\n";
    for (const auto& n : names) key += n + "\n";
    auto it = m->captures.find(key);
    if (it == m->captures.end()) {
      auto cg = capture_graph(mod, names, true);
      Capture c{std::make_shared<jit::GraphFunction>("ts_capture", cg.graph, nullptr), cg.names};
      it = m->captures.emplace(key, std::move(c)).first;
    }
    m->held.clear();
    m->held_names.clear();
    torch::NoGradGuard no_grad;
    jit::Stack stack{mod._ivalue()};
    int64_t batch = -1;  // stimuli in this batch: the first input tensor's leading dim
    char input_ptr[32] = "";  // where the first input's data is, as forward() receives it
    for (R_xlen_t i = 0; i < XLENGTH(inputs); ++i) {
      SEXP in = VECTOR_ELT(inputs, i);
      torch::Tensor t;
      if (is_rtensor(in)) {
        t = rtensor(in).detach();
        if (t.dim() == 0) ts_torch::fail(tensorscope::ErrorKind::type, "a 0-dimensional torch_tensor input has no stimuli");
        t = t.narrow(0, static_cast<int64_t>(REAL(rows)[0]), static_cast<int64_t>(REAL(rows)[1]));
        if (t.is_floating_point()) {
          t = t.to(m->device, ft);
        } else if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false)) {
          t = t.to(m->device, torch::kLong);
        } else {
          ts_torch::fail(tensorscope::ErrorKind::type, "a torch_tensor input must be floating or integer (token ids)");
        }
      } else {
        t = to_tensor(in, ft, m->device);
      }
      if (batch < 0 && t.dim() > 0) batch = t.size(0);
      if (i == 0) std::snprintf(input_ptr, sizeof input_ptr, "%p", t.data_ptr());
      stack.emplace_back(std::move(t));
    }
    if (!it->second.checked) {
      // the probe: the copying graph on the first stimulus only tells which outputs need
      // their copies (elide_clones()); then the batch runs on the graph without the others
      std::set<std::string> safe;
      try {
        jit::Stack probe{mod._ivalue()};
        for (size_t i = 1; i < stack.size(); ++i) {
          const torch::Tensor& t = stack[i].toTensor();
          probe.emplace_back(t.dim() > 0 && t.size(0) == batch ? t.narrow(0, 0, 1) : t);
        }
        it->second.fn->run(probe);
        safe = elide_clones(it->second, probe.back().toTupleRef().elements());
      } catch (const std::exception&) {
        safe.clear();  // a graph that needs the whole batch (a traced, fixed batch size): every copy kept
      }
      auto cg = capture_graph(mod, names, true, &safe);
      it->second.fn = std::make_shared<jit::GraphFunction>("ts_capture", cg.graph, nullptr);
      it->second.checked = true;
    }
    it->second.fn->run(stack);
    m->forwards += 1;
    auto elems = stack.back().toTupleRef().elements();
    std::vector<std::string> out_names{"output"};
    std::vector<torch::Tensor> out{first_tensor(elems[0])};
    for (size_t i = 1; i < elems.size(); ++i) {
      flatten_value(elems[i].toTupleRef().elements()[0], it->second.names[i - 1], out_names, out);
    }
    std::vector<std::vector<int64_t>> shapes;
    for (size_t i = 0; i < out.size(); ++i) {
      torch::Tensor& t = out[i];
      if (t.dim() == 0) ts_torch::fail(tensorscope::ErrorKind::mismatch, "output " + out_names[i] + " is a scalar, not one value per stimulus");
      if (batch > 0 && t.size(0) != batch) {
        // a leading dim of 1 broadcasts over the batch (a positional embedding, say):
        // the same values for every stimulus
        if (t.size(0) != 1)
          ts_torch::fail(tensorscope::ErrorKind::mismatch, "output " + out_names[i] + " has leading dimension " +
                                      std::to_string(t.size(0)) + ", not one row per stimulus (batch of " +
                                      std::to_string(batch) + ")");
        std::vector<int64_t> sz(t.sizes().begin(), t.sizes().end());
        sz[0] = batch;
        t = t.expand(sz);
      }
      shapes.emplace_back(t.sizes().begin() + 1, t.sizes().end());
    }
    SEXP nm = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(out.size())));
    SEXP sh = PROTECT(Rf_allocVector(VECSXP, static_cast<R_xlen_t>(out.size())));
    for (size_t i = 0; i < out.size(); ++i) {
      SET_STRING_ELT(nm, i, Rf_mkChar(out_names[i].c_str()));
      SEXP s = Rf_allocVector(INTSXP, static_cast<R_xlen_t>(shapes[i].size()));
      SET_VECTOR_ELT(sh, i, s);
      for (size_t j = 0; j < shapes[i].size(); ++j) INTEGER(s)[j] = static_cast<int>(shapes[i][j]);
    }
    m->held = std::move(out);
    m->held_names = std::move(out_names);
    SEXP ip = PROTECT(Rf_mkString(input_ptr));
    SEXP res = named_list({nm, sh, Rf_ScalarInteger(static_cast<int>(batch < 0 ? 1 : batch)), ip},
                          {"names", "shapes", "batch", "input_ptr"});
    UNPROTECT(3);
    return res;
  });
}

namespace {

// Per-stimulus shape d: R's column-major feature index r (first dim fastest) -> the
// index of the same element in LibTorch's row-major flattening (tstride: row-major strides).
int64_t torch_index(int64_t r, const std::vector<int64_t>& d, const std::vector<int64_t>& tstride) {
  int64_t t = 0;
  for (size_t a = 0; a < d.size(); ++a) {
    t += (r % d[a]) * tstride[a];
    r /= d[a];
  }
  return t;
}

// The k x p sparse projection of a layer (tensorscope::sparse_projection), stored by
// column in LibTorch's flattening order: col_ptr (p + 1) and, per non-zero, its row with
// the sign of its value in the top bit; every value is +-scale. Built once per layer, size,
// k and seed.
const Projection& projection(Model* m, const std::string& name, const std::vector<int64_t>& shape, int64_t k,
                             uint64_t seed) {
  int64_t p = 1;
  for (auto d : shape) p *= d;
  std::string key = name + "|" + std::to_string(p) + "|" + std::to_string(k) + "|" + std::to_string(seed);
  auto it = m->projections.find(key);
  if (it != m->projections.end()) return it->second;
  std::vector<int64_t> tstride(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) tstride[a - 1] = tstride[a] * shape[a];
  Projection P;
  P.k = k;
  P.p = p;
  {
    auto R = tensorscope::sparse_projection(p, k, seed, name);
    const size_t nnz = R.value.size();
    P.scale = nnz ? std::abs(R.value[0]) : 0.0;
    if (shape.size() > 1) {
      std::vector<int64_t> to_torch(static_cast<size_t>(p));   // once per column, not per non-zero
      for (int64_t r = 0; r < p; ++r) to_torch[r] = torch_index(r, shape, tstride);
      for (size_t i = 0; i < nnz; ++i) R.col[i] = to_torch[R.col[i]];
    }
    P.col_ptr.assign(static_cast<size_t>(p) + 1, 0);
    for (size_t i = 0; i < nnz; ++i) P.col_ptr[R.col[i] + 1] += 1;
    for (int64_t j = 0; j < p; ++j) P.col_ptr[j + 1] += P.col_ptr[j];
    P.code.resize(nnz);
    std::vector<int64_t> fill(P.col_ptr.begin(), P.col_ptr.end() - 1);
    for (size_t i = 0; i < nnz; ++i) {  // rows ascending within each column
      const auto row = static_cast<uint32_t>(R.row[i]);
      P.code[fill[R.col[i]]++] = R.value[i] > 0 ? row : (row | 0x80000000U);
    }
  }  // the triplets are freed here
  return m->projections.emplace(key, std::move(P)).first->second;
}

// Y = X R' for the b x p rows of X (CPU, contiguous), written into rows [r0, r0 + b) of
// the column-major n x k R matrix dst. Stimuli go in blocks of B (one block per task, B
// accumulators in a 64-byte line: 16 for float32 layers, summed in float, 8 for float64,
// summed in double): X's columns are transposed a chunk at a time into the block's
// B-wide rows (and their negatives), so each non-zero of R adds one line to one line of
// the k x B sums (in cache) with no branch on its sign. Every stimulus's sum is formed in
// the same order (columns ascending, then rows) whatever the block, the batch size or
// the number of threads.
template <class T>
void project_rows(const Projection& P, const T* X, int64_t b, double* dst, int64_t n, int64_t r0) {
  constexpr int64_t B = 64 / sizeof(T), J = 256;
  const int64_t blocks = (b + B - 1) / B;
  at::parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> y(static_cast<size_t>(P.k * B)), xs(static_cast<size_t>(2 * J * B));
    std::vector<unsigned char> nz(static_cast<size_t>(J));
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t i0 = blk * B, m = std::min(B, b - i0);
      std::fill(y.begin(), y.end(), T(0));
      for (int64_t j0 = 0; j0 < P.p; j0 += J) {
        const int64_t nj = std::min(J, P.p - j0);
        std::fill(xs.begin(), xs.end(), T(0));
        std::fill(nz.begin(), nz.end(), 0);
        for (int64_t i = 0; i < m; ++i) {
          const T* xr = X + (i0 + i) * P.p + j0;
          for (int64_t jj = 0; jj < nj; ++jj) {
            xs[(2 * jj) * B + i] = xr[jj];
            xs[(2 * jj + 1) * B + i] = -xr[jj];
            nz[jj] |= xr[jj] != T(0);
          }
        }
        for (int64_t jj = 0; jj < nj; ++jj) {
          if (!nz[jj]) continue;  // zero for every stimulus of the block (e.g. after a ReLU)
          const T* pos = xs.data() + (2 * jj) * B;
          const int64_t j = j0 + jj;
          for (int64_t q = P.col_ptr[j]; q < P.col_ptr[j + 1]; ++q) {
            const uint32_t c = P.code[q];
            const T* src = pos + static_cast<int64_t>(c >> 31) * B;   // the negatives follow
            T* yr = y.data() + static_cast<int64_t>(c & 0x7fffffffU) * B;
            for (int64_t i = 0; i < B; ++i) yr[i] += src[i];
          }
        }
      }
      for (int64_t c = 0; c < P.k; ++c)
        for (int64_t i = 0; i < m; ++i) dst[(r0 + i0 + i) + n * c] = P.scale * static_cast<double>(y[c * B + i]);
    }
  });
}

}  // namespace

// Reduces the held outputs and writes them into rows [row, row + batch) of the R
// matrices dests (NULL: skip). reducer per output: "none" (features in R's column-major
// order of the per-stimulus dims), "avgpool" (mean over the dims after the first, for
// maps of rank >= 3 per stimulus: conv channels x space), "srp" (the sparse projection to
// k[i] dims with seed). The held outputs are released.
extern "C" SEXP ts_torch_write(SEXP ptr, SEXP dests, SEXP reducers, SEXP ks, SEXP seed, SEXP row) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    if (static_cast<size_t>(XLENGTH(dests)) != m->held.size()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_write: outputs changed");
    const auto red = as_strings(reducers);
    const int64_t r0 = static_cast<int64_t>(Rf_asReal(row));
    const uint64_t sd = static_cast<uint64_t>(Rf_asReal(seed));
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < m->held.size(); ++i) {
      SEXP dst = VECTOR_ELT(dests, i);
      if (Rf_isNull(dst)) continue;
      torch::Tensor t = m->held[i];
      const int64_t b = t.size(0);
      std::vector<int64_t> shape(t.sizes().begin() + 1, t.sizes().end());
      SEXP dim = Rf_getAttrib(dst, R_DimSymbol);
      const int64_t n = INTEGER(dim)[0], f = INTEGER(dim)[1];
      if (r0 < 0 || r0 + b > n) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_write: destination of the wrong size");
      if (red[i] == "srp") {
        const auto& P = projection(m, m->held_names[i], shape, static_cast<int64_t>(REAL(ks)[i]), sd);
        if (f != P.k) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_write: destination of the wrong size");
        auto X = t.reshape({b, -1}).to(torch::kCPU).contiguous();
        if (X.scalar_type() == torch::kFloat64) {
          project_rows(P, X.data_ptr<double>(), b, REAL(dst), n, r0);
        } else {
          X = X.to(torch::kFloat32);
          project_rows(P, X.data_ptr<float>(), b, REAL(dst), n, r0);
        }
        continue;
      }
      if (red[i] == "avgpool" && t.dim() >= 4) {
        std::vector<int64_t> dims;
        for (int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
        t = t.mean(dims);
      }
      // the rows of this batch in the column-major n x f R matrix, viewed with t's shape:
      // stimuli at stride 1, then the per-stimulus dims in R's column-major order (the
      // first fastest), so one strided copy (with the conversion to double) reorders
      std::vector<int64_t> sz(t.sizes().begin(), t.sizes().end()), st(sz.size());
      int64_t stride = n;
      st[0] = 1;
      for (size_t d = 1; d < sz.size(); ++d) {
        st[d] = stride;
        stride *= sz[d];
      }
      if (stride != n * f) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_write: destination of the wrong size");
      auto view = torch::from_blob(REAL(dst) + r0, sz, st, torch::kFloat64);
      view.copy_(t.to(torch::kCPU));
    }
    m->held.clear();
    return R_NilValue;
  });
}

// Keeps the held outputs on their device (activations(tensors = TRUE)) instead of
// writing them into R: reducer per output "none", "avgpool" (as in ts_torch_write()) or
// "skip". The batches are concatenated by ts_torch_collect().
extern "C" SEXP ts_torch_keep(SEXP ptr, SEXP reducers) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const auto red = as_strings(reducers);
    if (red.size() != m->held.size()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_keep: outputs changed");
    torch::NoGradGuard no_grad;
    if (m->kept.empty()) {
      m->kept.resize(m->held.size());
      m->kept_names = m->held_names;
    }
    if (m->kept.size() != m->held.size()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_keep: outputs changed");
    for (size_t i = 0; i < m->held.size(); ++i) {
      if (red[i] == "skip") continue;
      torch::Tensor t = m->held[i];
      if (red[i] == "avgpool" && t.dim() >= 4) {
        std::vector<int64_t> dims;
        for (int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
        t = t.mean(dims);
      } else if (!t.is_contiguous()) {
        t = t.contiguous();  // an expanded (broadcast) output: one row per stimulus
      }
      m->kept[i].push_back(t);
    }
    m->held.clear();
    return R_NilValue;
  });
}

// The exact Gram route (reduce = "gram"): G = X X' (n x n, float64) of each output
// whose entry in grams is an R matrix, accumulated without holding X (n x p). The R
// loop (run_gram() in R/capture.R) fills a panel of C stimuli, then multiplies every
// later batch against it, panel after panel, so each block of G is one product.
//   panel_rows = -1: clear the panel.
//   panel_rows = C, offset: copy the held batch into rows [offset, offset + b) of the
//     panel (allocated C x p in the run's dtype at offset 0).
// The held outputs are released either way.
extern "C" SEXP ts_torch_panel(SEXP ptr, SEXP grams, SEXP panel_rows, SEXP offset) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const int64_t C = static_cast<int64_t>(Rf_asReal(panel_rows));
    if (C < 0) {
      m->panel.clear();
      return R_NilValue;
    }
    if (static_cast<size_t>(XLENGTH(grams)) != m->held.size()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_panel: outputs changed");
    const int64_t o = static_cast<int64_t>(Rf_asReal(offset));
    m->panel.resize(m->held.size());
    for (size_t i = 0; i < m->held.size(); ++i) {
      if (Rf_isNull(VECTOR_ELT(grams, i))) continue;
      const torch::Tensor& t = m->held[i];
      const int64_t b = t.size(0);
      auto X = t.reshape({b, -1});
      if (o == 0) m->panel[i] = torch::empty({C, X.size(1)}, X.options());
      if (o + b > m->panel[i].size(0)) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_panel: panel overflow");
      m->panel[i].narrow(0, o, b).copy_(X);
    }
    m->held.clear();
    return R_NilValue;
  });
}

// The kept outputs, each the concatenation of its batches on the device, as torch for R
// tensors (made by torch for R when `rtorch`, see wrap_rtensor()): a named list.
extern "C" SEXP ts_torch_collect(SEXP ptr, SEXP rtorch) {
  const ts_torch::RTensorSexp maker = ts_torch::rtensor_maker(rtorch);  // before any C++ object
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    std::vector<torch::Tensor> vals;
    std::vector<std::string> names;
    for (size_t i = 0; i < m->kept.size(); ++i) {
      if (m->kept[i].empty()) continue;
      vals.push_back(m->kept[i].size() == 1 ? m->kept[i][0] : torch::cat(m->kept[i], 0));
      names.push_back(m->kept_names[i]);
    }
    m->kept.clear();
    m->kept_names.clear();
    SEXP out = PROTECT(Rf_allocVector(VECSXP, static_cast<R_xlen_t>(vals.size())));
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, static_cast<R_xlen_t>(vals.size())));
    for (size_t i = 0; i < vals.size(); ++i) {
      SET_VECTOR_ELT(out, static_cast<R_xlen_t>(i), ts_torch::wrap_rtensor(vals[i], maker));
      SET_STRING_ELT(nms, static_cast<R_xlen_t>(i), Rf_mkChar(names[i].c_str()));
    }
    Rf_setAttrib(out, R_NamesSymbol, nms);
    UNPROTECT(2);
    return out;
  });
}

// Writes the block products against the panel (rows [c0, c0 + C) of G) into the R
// matrices grams (n x n, column-major). self = TRUE: the panel's own block G[P, P] and
// the panel's row sums into sums (R vectors of n); else the held batch (rows [r0,
// r0 + b), after the panel): G[B, P] and its mirror G[P, B]. The held outputs are released.
extern "C" SEXP ts_torch_gram(SEXP ptr, SEXP grams, SEXP sums, SEXP r0_, SEXP c0_, SEXP self_) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    const bool self = Rf_asLogical(self_) == TRUE;
    const int64_t r0 = static_cast<int64_t>(Rf_asReal(r0_)), c0 = static_cast<int64_t>(Rf_asReal(c0_));
    if (!self && static_cast<size_t>(XLENGTH(grams)) != m->held.size()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_gram: outputs changed");
    torch::NoGradGuard no_grad;
    for (R_xlen_t i = 0; i < XLENGTH(grams); ++i) {
      SEXP G = VECTOR_ELT(grams, i);
      if (Rf_isNull(G)) continue;
      if (static_cast<size_t>(i) >= m->panel.size() || !m->panel[i].defined()) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_gram: no panel");
      const torch::Tensor& P = m->panel[i];
      const int64_t n = INTEGER(Rf_getAttrib(G, R_DimSymbol))[0], C = P.size(0);
      auto block = [&](int64_t row, int64_t col, int64_t nr, int64_t nc) {   // G[row + (0..nr), col + (0..nc)]
        if (row < 0 || col < 0 || row + nr > n || col + nc > n) ts_torch::fail(tensorscope::ErrorKind::internal, "ts_torch_gram: block outside G");
        return torch::from_blob(REAL(G) + row + n * col, {nr, nc}, {1, n}, torch::kFloat64);
      };
      if (self) {
        block(c0, c0, C, C).copy_(P.matmul(P.t()));
        torch::from_blob(REAL(VECTOR_ELT(sums, i)) + c0, {C}, torch::kFloat64).copy_(P.sum(1, false, torch::kFloat64));
        continue;
      }
      const torch::Tensor& t = m->held[i];
      const int64_t b = t.size(0);
      auto B = t.reshape({b, -1}).matmul(P.t()).to(torch::kFloat64);   // b x C
      block(r0, c0, b, C).copy_(B);
      block(c0, r0, C, b).copy_(B.t());
    }
    if (!self) m->held.clear();
    return R_NilValue;
  });
}

// Frees the model's LibTorch memory now (the handle becomes invalid).
extern "C" SEXP ts_torch_release(SEXP ptr) {
  return guarded([&]() -> SEXP {
    if (TYPEOF(ptr) == EXTPTRSXP && R_ExternalPtrAddr(ptr) != nullptr) finalize_model(ptr);
    return R_NilValue;
  });
}

// Drops the model's sparse projections (activations() calls it on exit: at k = 4096 the
// 17 projected ResNet-50 layers hold 0.28 GB, which a later call rebuilds in seconds).
extern "C" SEXP ts_torch_forget_projections(SEXP ptr) {
  return guarded([&]() -> SEXP {
    Model* m = get_model(ptr);
    std::map<std::string, Projection>().swap(m->projections);
    return R_NilValue;
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

// LibTorch's CPU tensor memory: c(current, peak) bytes held through the counting
// allocator (the peak since the last reset; reset = TRUE sets it to the current level),
// or NULL where the allocator could not be installed (another one has priority).
extern "C" SEXP ts_torch_memory(SEXP reset) {
  return guarded([&]() -> SEXP {
    if (!counting_installed()) return R_NilValue;
    if (Rf_asLogical(reset) == TRUE) g_peak.store(g_current.load());
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
    REAL(out)[0] = static_cast<double>(g_current.load());
    REAL(out)[1] = static_cast<double>(g_peak.load());
    UNPROTECT(1);
    return out;
  });
}
