# Real-size models (issue 16; PERFORMANCE.md W8/W9): every benchmark layer of
# torchvision's ResNet-50 (conv1, the 16 bottleneck outputs, avgpool, fc) and ViT-B/16
# (patch embedding, 12 encoder blocks, final norm, head), random initialisation, over N
# random 224 x 224 stimuli. Each run is its own process so that its peak RSS is its own:
#   R       bench/scale_worker.R (mode below), stimuli made batch by batch
#   py_fwd  Python torch, forward hooks that copy each output (the least a capture costs)
#   py_srp  Python torch, forward hooks, float32, the same reduction (torch.sparse.mm)
# Each row is printed as soon as it is measured (the R run first), and the markdown table
# bench/out/scale-<mode>-<N...>.md is rewritten after every row. est_over_peak is the
# preflight's estimate over the measured peak RSS (target: within 25%). ratio_fwd is R's
# capture time over py_fwd's, both less the time their harness spent drawing random
# stimuli (input_s, py_input_s; R's rnorm is the slower); ratio_fwd_total includes it.
#   Rscript bench/scale.R [N ...]          (default 1000; e.g. 1000 5000 10000)
# Environment:
#   TS_BENCH_MODELS     models (default resnet50,vit_b_16)
#   TS_BENCH_MODE       capture (default) | exact (reduce = "none") | gram | pipeline (capture + cka_layers() + rdm() +
#                       ridge predictivity() of 200 simulated neurons over every layer) |
#                       analyze (analyze_models() with its default metrics: the N = 5,000 target)
#   TS_BENCH_PY         0 skips the Python runs; TS_BENCH_PY_SRP_N: largest N for the slow
#                       torch.sparse.mm baseline (default 100)
#   TS_BENCH_CONCURRENT=1  the Python baseline runs at the same time as R, each on its own
#                       core (both single-threaded by default): the machine's drift over
#                       minutes then hits both alike (sequential runs on this machine
#                       varied by 15% for the same work)
#   TS_BENCH_SWEEP=1    the memory tables instead: ResNet-50 at N = 50, 100, 200 (all
#                       layers), then one projected layer at a time at N = 100 (conv1,
#                       layer2.3, layer4.2: 802,816 / 401,408 / 100,352 features)
#   TS_BENCH_ERROR_N    projection error at this N (default 200; 0 skips; bench/scale_error.R)
args <- commandArgs(TRUE)
ns <- if (length(args)) as.integer(args) else 1000L
lib <- Sys.getenv("TS_TEST_LIB", file.path(getwd(), "lib"))
py <- "/usr/bin/python3"
dir <- "bench/models"
if (system2(py, c("bench/build_models.py", dir), stdout = "") != 0 || !file.exists(file.path(dir, "resnet50.pt"))) {
  message("skipped: the benchmark models could not be built (python3-torchvision missing?)")
  quit(status = 0)
}
models <- strsplit(Sys.getenv("TS_BENCH_MODELS", "resnet50,vit_b_16"), ",")[[1]]
mode <- Sys.getenv("TS_BENCH_MODE", "capture")
with_py <- Sys.getenv("TS_BENCH_PY", "1") != "0" && mode %in% c("capture", "exact", "gram")
py_srp_n <- as.integer(Sys.getenv("TS_BENCH_PY_SRP_N", "100"))
sweep <- Sys.getenv("TS_BENCH_SWEEP") == "1"
concurrent <- Sys.getenv("TS_BENCH_CONCURRENT") == "1"
batch <- 32
k <- 4096

parse <- function(line) {
  kv <- strsplit(strsplit(trimws(line[length(line)]), " ")[[1]], "=")
  stats::setNames(vapply(kv, `[`, "", 2), vapply(kv, `[`, "", 1))
}
run <- function(cmd, args, env = character()) {
  out <- system2(cmd, args, stdout = TRUE, stderr = FALSE, env = env)
  line <- grep("(capture|analyze)_s=", out, value = TRUE)
  if (!length(line)) return(NULL)
  parse(line)
}
num <- function(x, key) if (is.null(x) || is.na(x[key])) NA_real_ else as.numeric(x[key])
show <- function(label, x) {
  cat(sprintf("%-8s %s\n", label, if (is.null(x)) "failed" else paste(names(x), x, sep = "=", collapse = " ")))
  flush(stdout())
}
dir.create("bench/out", showWarnings = FALSE)
out_md <- if (sweep) "bench/out/scale-sweep.md" else sprintf("bench/out/scale-%s-%s.md", mode, paste(ns, collapse = "-"))
rows <- list()
write_md <- function(tab) {
  fmt <- function(v) ifelse(is.na(v) | trimws(v) == "NA", "", trimws(v))
  md <- c(sprintf("| %s |", paste(names(tab), collapse = " | ")), sprintf("|%s|", paste(rep("---", ncol(tab)), collapse = "|")),
          apply(tab, 1, function(r) sprintf("| %s |", paste(fmt(r), collapse = " | "))))
  writeLines(c(sprintf("bench/scale.R, %s, mode %s, batch %d, k = %d", format(Sys.time(), "%Y-%m-%d %H:%M"),
                       if (sweep) "sweep" else mode, batch, k), "", md), out_md)
}
measure <- function(mod, n, layers = NULL, label = "") {
  f <- file.path(dir, paste0(mod, ".pt"))
  env <- if (!is.null(layers)) paste0("TS_BENCH_LAYERS=", paste(layers, collapse = ",")) else character()
  py_args <- c("bench/scale_torch.py", f, n, batch, k, "forward")
  if (concurrent && with_py && is.null(layers)) {   # Python on the other core, at the same time
    py_out <- tempfile()
    system2("sh", c("-c", shQuote(sprintf("%s %s > %s 2>/dev/null; echo exit=$? >> %s", py,
                                          paste(py_args, collapse = " "), py_out, py_out))), wait = FALSE)
  }
  r <- run("Rscript", c("bench/scale_worker.R", f, n, batch, k, mode, lib), env = env)
  show(sprintf("R %s", mod), r)
  pf <- if (with_py && is.null(layers)) {
    if (concurrent) {
      while (!any(grepl("^exit=", out <- if (file.exists(py_out)) readLines(py_out, warn = FALSE) else character()))) Sys.sleep(2)
      line <- grep("capture_s=", out, value = TRUE)
      if (length(line)) parse(line)
    } else run(py, py_args)
  }
  if (with_py && is.null(layers)) show("py_fwd", pf)
  ps <- if (with_py && is.null(layers) && n <= py_srp_n) run(py, c("bench/scale_torch.py", f, n, batch, k, "srp"))
  if (!is.null(ps)) show("py_srp", ps)
  t_r <- num(r, if (mode == "analyze") "analyze_s" else "capture_s")
  # the model's side: wall time less the time the harness spent making random stimuli
  # (R's rnorm is ~15x slower than torch.randn; a user's stimuli are read, not drawn)
  m_r <- t_r - num(r, "input_s")
  m_pf <- num(pf, "capture_s") - num(pf, "input_s")
  row <- data.frame(model = mod, layers = if (is.null(layers)) num(r, "layers") else paste(layers, collapse = ","),
                    n = n, mode = mode, r_s = t_r, peak_gb = num(r, "peak_gb"), est_gb = num(r, "est_gb"),
                    est_over_peak = round(num(r, "est_gb") / num(r, "peak_gb"), 2),
                    above_base_gb = round(num(r, "peak_gb") - num(r, "base_gb"), 3), stored_gb = num(r, "stored_gb"),
                    input_s = num(r, "input_s"), py_fwd_s = num(pf, "capture_s"), py_input_s = num(pf, "input_s"),
                    py_fwd_peak_gb = num(pf, "peak_gb"),
                    ratio_fwd = round(m_r / m_pf, 2), ratio_fwd_total = round(t_r / num(pf, "capture_s"), 2),
                    py_srp_s = num(ps, "capture_s"), ratio_srp = round(t_r / num(ps, "capture_s"), 2),
                    metrics_s = num(r, "metrics_s"), pipeline_peak_gb = num(r, "pipeline_peak_gb"))
  rows[[length(rows) + 1]] <<- row
  write_md(do.call(rbind, rows))
}
if (sweep) {
  for (n in c(50, 100, 200)) measure("resnet50", n)
  for (l in c("conv1", "layer2.3", "layer4.2")) measure("resnet50", 100, layers = l)
} else {
  for (mod in models) for (n in ns) measure(mod, n)
}
tab <- do.call(rbind, rows)
cat("\n== ", out_md, " ==\n", sep = "")
print(tab, row.names = FALSE)
utils::write.csv(tab, sub("\\.md$", ".csv", out_md), row.names = FALSE)
en <- as.integer(Sys.getenv("TS_BENCH_ERROR_N", "200"))
if (en > 0 && !sweep) {
  cat("\n== projection error at N =", en, "(exact fits) ==\n")
  system2("Rscript", c("bench/scale_error.R", file.path(dir, "resnet50.pt"), en, lib))
}
