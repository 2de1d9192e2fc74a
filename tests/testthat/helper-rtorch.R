# Fakes of torch for R's module objects, to test the nn_module capture without torch.
# As in torch for R (R/nn.R): a module is a *callable*, a copy of its instance's
# `forward` with attributes `class` (ending in "nn_module") and `module` (the instance);
# the instance keeps its children's callables in `.__enclos_env__$private$modules_`, and a
# parent calls the callable it holds there (as `self$child(x)` does through
# `[[.nn_Module`, and nn_sequential's loop over `private$modules_`). `forward(private, ...)`
# here receives that private environment.
fake_module <- function(forward, ..., classes = "fake_module") {
  private <- new.env()
  private$modules_ <- list(...)
  self <- new.env()
  self$.__enclos_env__ <- new.env()
  self$.__enclos_env__$private <- private
  self$training <- TRUE
  self$calls <- 0L
  self$train <- function(mode = TRUE) {
    self$training <- mode
    for (m in private$modules_) attr(m, "module")$train(mode)
    invisible(NULL)
  }
  self$forward <- function(...) {
    self$calls <- self$calls + 1L
    forward(private, ...)
  }
  f <- self$forward
  attr(f, "class") <- c(classes, "nn_module")
  attr(f, "module") <- self
  f
}

# A leaf computing fn(x).
fake_leaf <- function(fn, classes = "fake_leaf") fake_module(function(private, x) fn(x), classes = classes)

# nn_sequential: children named "0", "1", ..., called in order.
fake_sequential <- function(...) {
  mods <- list(...)
  names(mods) <- as.character(seq_along(mods) - 1L)
  m <- do.call(fake_module, c(list(function(private, x) {
    for (mod in private$modules_) x <- mod(x)
    x
  }, classes = "nn_sequential"), mods))
  m
}

# The tensor operations of activations_rtorch() for fakes: "tensors" are R arrays; the
# collected layers, with tensors = TRUE, are tensors laid out as torch for R's (made by
# tensorscope's backend, when it is there).
fake_ops <- function(device = NULL) {
  list(
    is_tensor = function(x) FALSE,
    nrow = function(x) dim(x)[1],
    device = function(t) "cpu",
    cuda_available = function() FALSE,
    module_device = function(inst) device,
    module_dtype = function(inst) "double",
    batch = function(a, idx, device, dtype) tensorscope:::slice_rows(a, idx),
    record = function(out, path) if (is.list(out)) out[[1]] else out,
    collect = function(parts, tensors = FALSE) {
      a <- tensorscope:::bind_rows_array(parts)
      if (tensors) tensorscope:::rtensor_fake(a) else a
    },
    no_grad = function(expr) expr
  )
}

fake_activations <- function(model, inputs, layers = NULL, batch_size = 64, device = NULL, stimuli = NULL,
                             tensors = FALSE) {
  tensorscope:::activations_rtorch(model, inputs, layers, batch_size, device, stimuli, tensors = tensors, ops = fake_ops())
}

# Records, per call of tensorscope's ridge_cv_call() during expr, whether the layer was a
# torch_tensor (read in place) or an R matrix.
ridge_layers_seen <- function(expr) {
  rec <- new.env()
  rec$tensor <- logical()
  suppressMessages(trace("ridge_cv_call", where = asNamespace("tensorscope"), print = FALSE,
                         tracer = bquote(assign("tensor", c(get("tensor", envir = .(rec)), tensorscope:::is_rtensor(X)),
                                                envir = .(rec)))))
  on.exit(suppressMessages(untrace("ridge_cv_call", where = asNamespace("tensorscope"))))
  force(expr)
  rec$tensor
}

# Every private modules_ list in a (fake or real) module tree, by path: to check that a
# module is exactly as it was.
module_lists <- function(m, prefix = "root") {
  p <- attr(m, "module")$.__enclos_env__$private
  out <- list()
  out[[prefix]] <- p$modules_
  for (nm in names(p$modules_)) out <- c(out, module_lists(p$modules_[[nm]], paste0(prefix, ".", nm)))
  out
}

# torch for R with its LibTorch binaries.
skip_without_rtorch <- function() {
  skip_if_not_installed("torch")
  skip_if_not(isTRUE(tryCatch(torch::torch_is_installed(), error = function(e) FALSE)),
              "torch for R's LibTorch is not installed")
}

# A data pointer as a lower-case hex string without leading zeros ("0x..." or a number).
norm_ptr <- function(p) {
  if (is.numeric(p)) return(sprintf("%x", p))
  sub("^0+", "", tolower(sub("^0x", "", as.character(p))))
}
