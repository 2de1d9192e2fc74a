# How fast does each long loop stop on Ctrl-C? A child R runs the loop; 1.5 s after it
# has started, the parent sends SIGINT and times how long the child takes to return
# from the call (target: under 1 s). Run: Rscript bench/interrupt.R (TS_LIB: the library
# holding tensorscope, default lib/; TS_INTERRUPT_JOBS: a comma-separated subset of the
# loops, e.g. "ridge_cv"; TS_INTERRUPT_DELAY: seconds before the SIGINT, default 1.5).
lib <- normalizePath(Sys.getenv("TS_LIB", "lib"), mustWork = FALSE)

jobs <- list(
  rsa_permutations = list(
    setup = "x <- matrix(rnorm(80 * 40), 80); nr <- as.matrix(rdm(matrix(rnorm(80 * 40), 80)))",
    call = "rsa(list(a = x), nr, n_perm = 1e8, boot = 'none')"),
  rsa_bootstrap = list(
    setup = "x <- matrix(rnorm(80 * 40), 80); nr <- as.matrix(rdm(matrix(rnorm(80 * 40), 80)))",
    call = "rsa(list(a = x), nr, n_perm = 0, boot = 'stimuli', n_boot = 1e7)"),
  ricci_curvature = list(
    setup = "x <- matrix(rnorm(30000 * 10), 30000)",
    call = "ricci_curvature(x, k = 40)"),
  ridge_cv = list(
    setup = "x <- matrix(rnorm(3000 * 1500), 3000); y <- matrix(rnorm(3000 * 300), 3000)",
    call = "predictivity(list(a = x), y, alphas = 10^seq(-3, 6, length.out = 40), alpha_select = 'kfold', folds = 10)"),
  activations = list(
    setup = "stopifnot(ts_torch_available()); m <- system.file('extdata', 'fmnist_cnn_step1125.pt', package = 'tensorscope'); imgs <- array(rnorm(20000 * 784), c(20000, 1, 28, 28))",
    call = "activations(m, imgs, batch_size = 4)")
)

delay <- as.numeric(Sys.getenv("TS_INTERRUPT_DELAY", "1.5"))  # seconds into the loop
only <- strsplit(Sys.getenv("TS_INTERRUPT_JOBS"), ",")[[1]]
if (length(only)) jobs <- jobs[intersect(names(jobs), only)]

child_code <- function(job, marker, result) {
  sprintf(paste(
    ".libPaths(c('%s', .libPaths())); suppressMessages(library(tensorscope)); set.seed(1)",
    "%s",
    "writeLines('started', '%s')",
    "r <- tryCatch({ %s; 'finished' }, interrupt = function(e) 'interrupted')",
    "writeLines(c(r, format(as.numeric(Sys.time()), digits = 17)), '%s')", sep = "\n"),
    lib, job$setup, marker, job$call, result)
}

rows <- lapply(names(jobs), function(nm) {
  marker <- tempfile()
  result <- tempfile()
  p <- processx::process$new(file.path(R.home("bin"), "Rscript"), c("-e", child_code(jobs[[nm]], marker, result)),
                             stdout = "|", stderr = "2>&1")
  t_start <- Sys.time()
  while (!file.exists(marker) && p$is_alive() && difftime(Sys.time(), t_start, units = "secs") < 120) Sys.sleep(0.05)
  if (!p$is_alive()) {
    return(data.frame(loop = nm, outcome = "did not start", stop_s = NA_real_, stringsAsFactors = FALSE))
  }
  Sys.sleep(delay)
  t0 <- as.numeric(Sys.time())
  p$interrupt()
  p$wait(30000)
  alive <- p$is_alive()
  if (alive) p$kill()
  res <- if (file.exists(result)) readLines(result) else c(if (alive) "still running after 30 s" else "exited", NA)
  stop_s <- if (!is.na(res[2])) as.numeric(res[2]) - t0 else as.numeric(Sys.time()) - t0
  data.frame(loop = nm, outcome = res[1], stop_s = round(stop_s, 3), stringsAsFactors = FALSE)
})
out <- do.call(rbind, rows)
print(out, row.names = FALSE)
cat(sprintf("interrupt: %d of %d loops stopped within 1 s\n",
            sum(out$outcome == "interrupted" & out$stop_s < 1, na.rm = TRUE), nrow(out)))
