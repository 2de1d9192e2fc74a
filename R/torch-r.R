# torch for R interop: activations of nn_modules, and torch_tensors handed to the LibTorch
# backend without copies.
#
# nn_modules. torch for R's module object is a *callable*: a copy of the instance's
# `forward` made when the module is built (create_nn_module_callable), with attributes
# `class` and `module` (the R6 instance). A parent calls the callable it holds in its
# private `modules_` list (`self$conv1(x)` goes through `[[.nn_Module` to
# `private$modules_$conv1`; nn_sequential loops over `private$modules_`), so rebinding a
# child's `forward` changes nothing. A layer is captured by replacing the callable its
# parent holds with a wrapper that records the output, and putting the parent's list back
# exactly as it was on exit (also on error or interrupt).
#
# Tensor operations go through a small table (`rt_ops()`), so that the capture logic can
# be tested without torch (tests/testthat/helper-rtorch.R builds fake module trees).

# ---- activations(<nn_module>) ------------------------------------------------------------

#' @name activations
#' @rdname activations
#' @section torch for R modules: For an `nn_module` (built with `nn_module()` or
#'   `nn_sequential()`), `layers` are the dotted paths of its submodules at any depth
#'   (`"block.lin"`; `"0"`, `"1"`, ... in an `nn_sequential`; `NULL`: the leaves). For the
#'   duration of the call, the callable each chosen submodule's parent holds (in its
#'   private `modules_` list, which is what `self$child(x)` and `nn_sequential` call) is
#'   replaced by one that records the output; the parents' lists and every module's training flag are
#'   put back exactly as they were on exit, also after an error or an interrupt. The
#'   module runs in evaluation mode without gradients, one forward pass per batch, on its
#'   own device (`device`, if given, must be that device: the module is not moved). R
#'   arrays are made into tensors of the module's floating type on that device, batch by
#'   batch (integer arrays: int64 token ids); `torch_tensor` inputs, on the CPU or a CUDA
#'   device, are sliced and moved there. Each layer's batches stay on the device until
#'   the end, then are concatenated, moved to the CPU and converted to R once, or, with
#'   `tensors = TRUE`, kept as one `torch_tensor` per layer on the device (see
#'   [ts_reps()] for the metrics that then compute on them in place). A
#'   submodule called several times is captured at its last call; one that the forward
#'   pass does not call is an error. A module instance reachable by two paths is listed
#'   once, at its first path.
NULL

activations_rtorch <- function(model, inputs, layers, batch_size, device, stimuli, tensors = FALSE,
                               call = rlang::caller_env(), ops = rt_ops(call)) {
  batch_size <- check_count(batch_size, min = 1, call = call)
  inst <- rt_instance(model)
  mods <- rt_walk(model)
  all <- names(mods)
  if (is.null(layers)) {
    layers <- all[vapply(all, function(a) !any(startsWith(all, paste0(a, "."))), logical(1))]
    if (!length(layers)) ts_abort("The {.cls nn_module} has no submodules to capture; name {.arg layers}.", "argument", call = call)
  } else {
    if (!is.character(layers) || !length(layers) || anyNA(layers)) {
      ts_abort("{.arg layers} must be NULL or submodule names, not {describe(layers)}.", "argument", call = call)
    }
    bad <- setdiff(layers, all)
    if (length(bad)) {
      ts_abort(c("{.arg layers}: no submodule{?s} {.val {bad}} in this {.cls nn_module}.", i = "Valid names: {.val {all}}."),
               "argument", call = call)
    }
    layers <- unique(layers)
  }
  x <- rt_inputs(inputs, ops, call)
  mod_device <- ops$module_device(inst)
  in_device <- unlist(lapply(Filter(ops$is_tensor, x$inputs), ops$device))[1]   # a module without parameters
  device <- rt_check_device(device %||% mod_device %||% in_device %||% "cpu", mod_device, ops, call)
  n <- x$n
  if (is.null(stimuli)) stimuli <- x$ids

  # install the wrappers; every touched parent's modules_ list is put back on exit
  store <- new.env(parent = emptyenv())
  store$batch <- list()
  saved <- list()
  on.exit(for (s in rev(saved)) assign("modules_", s$list, envir = s$env), add = TRUE)
  for (l in layers) {
    parent <- rt_private(mods[[l]]$parent)
    key <- rt_address(parent)
    if (is.null(saved[[key]])) saved[[key]] <- list(env = parent, list = parent$modules_)
    cur <- parent$modules_
    cur[[mods[[l]]$name]] <- rt_wrap(cur[[mods[[l]]$name]], l, store, ops)
    assign("modules_", cur, envir = parent)
  }
  # evaluation mode; every module's own training flag is put back on exit
  insts <- c(list(inst), lapply(mods, function(m) rt_instance(m$module)))
  flags <- lapply(insts, function(i) i$training)
  on.exit(for (k in seq_along(insts)) if (!is.null(flags[[k]])) insts[[k]]$training <- flags[[k]], add = TRUE)
  inst$train(FALSE)

  parts <- stats::setNames(lapply(layers, function(l) list()), layers)
  starts <- seq(1, n, by = batch_size)
  dtype <- ops$module_dtype(inst)
  pb <- if (length(starts) > 1) cli::cli_progress_bar("Forward passes", total = length(starts), .envir = environment())
  ops$no_grad({
    for (b in seq_along(starts)) {
      idx <- starts[b]:min(n, starts[b] + batch_size - 1)
      args <- lapply(x$inputs, function(a) ops$batch(a, idx, device, dtype))
      store$batch <- list()
      torch_errors(do.call(model, args), kind = "torch", call = call,
                   what = "The {.cls nn_module} failed on {.arg inputs} (batch {b}).")
      missing <- setdiff(layers, names(store$batch))
      if (length(missing)) {
        ts_abort(c("{.arg layers}: submodule{?s} {.val {missing}} {?was/were} not called by the forward pass, so {?its/their} output cannot be captured.",
                   i = "Submodules called only in some branches of {.fn forward} cannot be captured."),
                 "argument", call = call)
      }
      for (l in layers) parts[[l]][[b]] <- store$batch[[l]]
      if (!is.null(pb)) cli::cli_progress_update(id = pb)
    }
  })
  # one concatenation per layer on the device, then (unless `tensors`) one transfer and conversion
  out <- lapply(parts, ops$collect, tensors = tensors)
  reps_from_arrays(out, stimuli = stimuli, model = class(model)[1], device = device, batch_size = batch_size,
                   forward_passes = length(starts), source = "torch for R")
}

# ts_reps from arrays (or torch_tensors) with stimuli first, keeping each layer's
# per-stimulus shape (ts_reps() reads a tensor's own).
reps_from_arrays <- function(layers, ...) {
  r <- ts_reps(layers, ...)
  for (nm in names(layers)) {
    if (!is_rtensor(layers[[nm]])) r$shapes[[nm]] <- { d <- dim(layers[[nm]]); if (length(d) > 1) d[-1] else 1L }
  }
  r
}

rt_instance <- function(m) attr(m, "module", exact = TRUE) %||% m
rt_private <- function(m) rt_instance(m)$.__enclos_env__$private
rt_children <- function(m) {
  p <- rt_private(m)
  if (is.null(p)) list() else p$modules_ %||% list()
}
rt_address <- function(env) sub("^<environment: (.*)>$", "\\1", utils::capture.output(print(env))[1])

# Every submodule, depth first, by dotted path: list(path = list(parent, name, module)). A module
# instance reachable by several paths is listed (and captured) at its first path.
rt_walk <- function(model) {
  out <- list()
  seen <- character()
  visit <- function(m, prefix) {
    ch <- rt_children(m)
    nms <- names(ch)
    if (length(ch) && is.null(nms)) nms <- as.character(seq_along(ch) - 1L)
    for (i in seq_along(ch)) {
      path <- if (prefix == "") nms[i] else paste0(prefix, ".", nms[i])
      key <- rt_address(rt_instance(ch[[i]]))
      if (key %in% seen) next
      seen <<- c(seen, key)
      out[[path]] <<- list(parent = m, name = nms[i], module = ch[[i]])
      visit(ch[[i]], path)
    }
  }
  visit(model, "")
  out
}

# A callable that runs `orig` and records (the first tensor of) its output as layer
# `path` of the current batch; a submodule called several times is recorded at its last
# call. Same attributes as `orig` (class, module), so `$` and `[[` still reach the module.
rt_wrap <- function(orig, path, store, ops) {
  force(orig)
  force(path)
  f <- function(...) {
    out <- orig(...)
    store$batch[[path]] <- ops$record(out, path)
    out
  }
  a <- attributes(orig)
  attributes(f) <- a[setdiff(names(a), "srcref")]
  f
}

rt_check_device <- function(device, mod_device, ops, call) {
  if (!is.character(device) || length(device) != 1 || is.na(device) || !grepl("^(cpu|cuda(:[0-9]+)?)$", device)) {
    ts_abort("{.arg device} must be {.val cpu} or {.val cuda} (or {.val cuda:N}), not {describe(device)}.", "argument", call = call)
  }
  if (startsWith(device, "cuda") && !ops$cuda_available()) {
    ts_abort("{.arg device} is {.val {device}} but torch for R sees no CUDA device.", "cuda_unavailable", call = call)
  }
  if (!is.null(mod_device) && rt_device_string(device) != rt_device_string(mod_device)) {
    ts_abort(c("{.arg device} is {.val {device}} but the {.cls nn_module}'s parameters are on {.val {mod_device}}.",
               i = "Move the module first (e.g. {.code model$to(device = \"{device}\")}); tensorscope does not move it."),
             "argument", call = call)
  }
  device
}

# inputs: an array (stimuli first), a torch_tensor, or a list of them (several arguments
# of forward()). Returns list(inputs, n, ids).
rt_inputs <- function(inputs, ops, call) {
  if (ops$is_tensor(inputs) || !is.list(inputs) || is.data.frame(inputs)) inputs <- list(inputs)
  if (!length(inputs)) ts_abort("{.arg inputs} is empty.", "empty", call = call)
  ids <- NULL
  for (i in seq_along(inputs)) {
    if (!ops$is_tensor(inputs[[i]])) {
      inputs[i] <- as_inputs(inputs[i], call = call)
      if (i == 1) ids <- dimnames(inputs[[1]])[[1]]
    }
  }
  n <- vapply(inputs, function(a) as.integer(if (ops$is_tensor(a)) ops$nrow(a) else dim(a)[1]), integer(1))
  if (any(n == 0)) ts_abort("{.arg inputs} has no stimuli.", "empty", call = call)
  if (length(unique(n)) > 1) {
    ts_abort("Every input in {.arg inputs} must have the same number of stimuli; got {n}.", "mismatch", call = call)
  }
  list(inputs = inputs, n = n[1], ids = ids)
}

# The tensor operations activations_rtorch() needs, from torch for R.
rt_ops <- function(call = rlang::caller_env()) {
  if (!rtorch_usable()) {
    ts_abort(c("An {.cls nn_module} needs the torch package with its LibTorch installed.",
               i = "{.code install.packages(\"torch\"); torch::install_torch()}"), "torch_unavailable", call = call)
  }
  first_tensor <- function(out) {
    while (is.list(out) && !inherits(out, "torch_tensor") && length(out)) out <- out[[1]]
    if (!inherits(out, "torch_tensor")) NULL else out
  }
  list(
    is_tensor = function(x) inherits(x, "torch_tensor"),
    nrow = function(x) x$size(1),
    cuda_available = function() torch::cuda_is_available(),
    device = function(t) rt_device_string(t$device),
    module_device = function(inst) {
      p <- inst$parameters
      if (length(p)) rt_device_string(p[[1]]$device) else NULL
    },
    module_dtype = function(inst) {
      p <- Filter(function(t) t$is_floating_point(), inst$parameters)
      if (length(p)) p[[1]]$dtype else torch::torch_float32()
    },
    batch = function(a, idx, device, dtype) {
      if (inherits(a, "torch_tensor")) {
        s <- a[min(idx):max(idx), ..]
        return(if (rt_device_string(s$device) == rt_device_string(device)) s else s$to(device = device))
      }
      torch::torch_tensor(slice_rows(a, idx), dtype = if (is.integer(a)) torch::torch_long() else dtype, device = device)
    },
    record = function(out, path) {
      t <- first_tensor(out)
      if (is.null(t)) {
        ts_abort("{.arg layers}: submodule {.val {path}} did not return a tensor (or a list starting with one).", "type")
      }
      t$detach()
    },
    collect = function(parts, tensors = FALSE) {
      t <- if (length(parts) == 1) parts[[1]] else torch::torch_cat(parts, dim = 1L)
      if (tensors) t else as.array(t$to(device = "cpu", dtype = torch::torch_float64()))
    },
    no_grad = function(expr) torch::with_no_grad(expr)
  )
}

# "cpu", "cuda:0", ... from a torch_device (or such a string: "cuda" means "cuda:0").
rt_device_string <- function(d) {
  if (is.character(d)) return(if (d == "cuda") "cuda:0" else d)
  if (is.null(d$index) || d$type == "cpu") d$type else paste0(d$type, ":", d$index)
}

# torch for R installed with its LibTorch/lantern binaries.
rtorch_usable <- function() {
  requireNamespace("torch", quietly = TRUE) && isTRUE(tryCatch(torch::torch_is_installed(), error = function(e) FALSE))
}

# ---- torch_tensors in the metrics (zero copy) -------------------------------------------

is_rtensor <- function(x) inherits(x, "torch_tensor")

# Can torch for R's tensors be handed to tensorscope's backend as they are? Only when
# both use one LibTorch in this process: one libtorch_cpu is mapped, and it is the one the
# backend was built against (configure records its folder; it prefers torch for R's).
# Read from /proc/self/maps, so the check itself loads no LibTorch; cached until R loads
# another shared library (torch for R loads lantern, hence LibTorch, when it loads). A
# mismatch is said once per session (per reason), and the callers fall back to copies
# made by torch for R.
rtensor_shared <- function(call = rlang::caller_env()) {
  key <- paste(names(getLoadedDLLs()), collapse = " ")
  if (identical(the$rtensor_key, key)) return(the$rtensor_ok)
  why <- rtensor_mismatch(maps = if (file.exists("/proc/self/maps")) readLines("/proc/self/maps") else NULL,
                          facts = build_facts(), backend = ts_torch_available())
  if (!is.null(why) && !identical(the$rtensor_said, why)) {
    the$rtensor_said <- why
    cli::cli_inform(c("torch_tensors are copied into R for tensorscope's metrics: {why}.",
                      i = "Install tensorscope against torch for R's LibTorch (configure prefers {.code torch::torch_install_path()}) to compute on them in place."),
                    class = "tensorscope_message_rtensor_copy")
  }
  the$rtensor_key <- key
  the$rtensor_ok <- is.null(why)
  the$rtensor_ok
}

# Why tensors cannot be shared (NULL when they can), from the process's memory map.
rtensor_mismatch <- function(maps, facts, backend) {
  if (!backend || !identical(facts$torch, "1")) return("tensorscope was installed without its LibTorch backend")
  if (is.null(maps)) return("this system has no /proc/self/maps to tell which LibTorch is loaded")
  files <- unique(sub("^[^/]*", "", grep("/libtorch_cpu\\.(so|dylib)", maps, value = TRUE)))
  ours <- normalizePath(file.path(facts$torch_libdir %||% "", "libtorch_cpu.so"), mustWork = FALSE)
  if (length(files) > 1) {
    return(sprintf("%d LibTorch libraries are loaded (%s)", length(files), paste(files, collapse = ", ")))
  }
  if (length(files) == 1 && normalizePath(files, mustWork = FALSE) != ours) {
    return(sprintf("torch for R uses %s but tensorscope's backend was built against %s (LibTorch %s)",
                   files, ours, facts$torch_version %||% "?"))
  }
  NULL
}

# What the backend sees of a torch_tensor: list(data_ptr ("0x..."), device, dtype,
# shape, n, p, floating, integer, contiguous, and with `checks` (one pass over the data on
# its device) finite and constant (every stimulus the same)). Only when
# rtensor_shared(). For checks and for the zero-copy tests.
rtensor_info <- function(x, checks = FALSE, call = rlang::caller_env()) {
  torch_run("ts_torch_rtensor_info", x, checks, kind = "type", call = call)
}

# A torch_tensor layer copied into an R matrix (stimuli x flattened features): by the
# backend when it shares torch for R's LibTorch, by torch for R otherwise.
rtensor_matrix <- function(x, arg = "x", call = rlang::caller_env()) {
  if (rtensor_shared(call = call)) {
    check_rtensor(x, arg, call = call)
    return(as_data_matrix(torch_run("ts_torch_rtensor_array", x, kind = "type", call = call), arg = arg, call = call))
  }
  if (x$dim() < 1) ts_abort("{.arg {arg}} is a 0-dimensional tensor; layers need stimuli first.", "type", call = call)
  a <- as.array(x$detach()$to(device = "cpu", dtype = torch::torch_float64()))
  as_data_matrix(a, arg = arg, call = call)
}

# Per-stimulus shape of a torch_tensor layer.
rtensor_shape <- function(x, call = rlang::caller_env()) {
  s <- as.integer(if (rtensor_shared(call = call)) rtensor_info(x, call = call)$shape else x$shape)
  if (length(s) > 1) s[-1] else 1L
}

# Checks a torch_tensor layer in the backend, on its device (no copy): numeric, stimuli
# first, not empty, finite and (with `variance`) not the same for every stimulus.
check_rtensor <- function(x, arg, variance = FALSE, call = rlang::caller_env()) {
  info <- rtensor_info(x, checks = TRUE, call = call)
  if (!info$floating && !info$integer) {
    ts_abort("{.arg {arg}} must be a numeric torch_tensor, not dtype {info$dtype}.", "type", call = call)
  }
  if (length(info$shape) < 1) ts_abort("{.arg {arg}} is a 0-dimensional tensor; layers need stimuli first.", "type", call = call)
  if (info$n == 0) ts_abort("{.arg {arg}} has no stimuli (0 rows).", "empty", call = call)
  if (info$p == 0) ts_abort("{.arg {arg}} has no features (0 columns).", "empty", call = call)
  if (!info$finite) ts_abort("{.arg {arg}} has non-finite values (NA, NaN or Inf).", "non_finite", call = call)
  if (variance && info$constant) {
    ts_abort("{.arg {arg}} has zero variance across stimuli: every stimulus has the same pattern.", "zero_variance", call = call)
  }
  invisible(info)
}

# A layer of ts_reps() or of a dense metric: an R matrix (as_data_matrix()); a
# torch_tensor as it is when the backend can read it in place (`in_place`), else copied.
as_layer_data <- function(x, in_place = TRUE, arg = "x", call = rlang::caller_env()) {
  if (!is_rtensor(x)) return(as_data_matrix(x, arg = arg, call = call))
  if (!in_place || !rtensor_shared(call = call)) return(rtensor_matrix(x, arg = arg, call = call))
  check_rtensor(x, arg, call = call)
  x
}

# A layer's (stimuli, features).
layer_dims <- function(l) {
  if (!is_rtensor(l)) return(dim(l))
  info <- rtensor_info(l)
  c(info$n, info$p)
}

# Zero variance check of a layer (R matrix or torch_tensor).
check_layer_variance <- function(l, arg, call = rlang::caller_env()) {
  if (is_rtensor(l)) check_rtensor(l, arg, variance = TRUE, call = call) else check_variance(l, arg, call = call)
}

any_rtensor <- function(layers) any(vapply(layers, is_rtensor, logical(1)))

# Are torch_tensors among `layers` computed on in place? When some layers are tensors,
# `backend` is not "eigen", the options have a LibTorch path (`supported`) and torch for R
# shares tensorscope's LibTorch. The computation then runs on the tensors' device.
in_place_route <- function(layers, backend, supported = TRUE, call = rlang::caller_env()) {
  if (!any_rtensor(layers)) return(FALSE)
  backend <- check_choice(backend, c("auto", "eigen", "torch"), arg = "backend", call = call)
  backend != "eigen" && supported && rtensor_shared(call = call)
}

# The layers with every torch_tensor copied into an R matrix (stimuli as row names).
rtensor_to_matrices <- function(layers, prefix = "x$", stimuli = NULL, call = rlang::caller_env()) {
  for (i in seq_along(layers)) {
    if (!is_rtensor(layers[[i]])) next
    m <- rtensor_matrix(layers[[i]], arg = paste0(prefix, names(layers)[i] %||% i), call = call)
    if (!is.null(stimuli)) rownames(m) <- stimuli
    layers[[i]] <- m
  }
  layers
}

# For tests without torch for R: an object laid out as torch for R's torch_tensor holding
# a copy of the R array x (float64, or float32), made by the backend.
rtensor_fake <- function(x, float32 = FALSE, device = "cpu") {
  torch_call("ts_torch_rtensor_fake", x, float32, device)
}
