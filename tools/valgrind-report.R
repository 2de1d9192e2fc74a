# Reads the valgrind logs of `make valgrind` and fails when an error (invalid read or
# write, use of uninitialised values, invalid free) has tensorscope's shared library in
# its stack; errors inside R, BLAS or OpenMP alone are listed as a count only.
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "valgrind-logs"
ours <- 0L
theirs <- 0L
for (f in list.files(dir, pattern = "\\.log$", full.names = TRUE)) {
  lines <- sub("^==[0-9]+== ?", "", readLines(f, warn = FALSE))
  starts <- grep("^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free)", lines)
  for (s in starts) {
    end <- s + 1L
    while (end <= length(lines) && nzchar(lines[end])) end <- end + 1L
    block <- lines[s:(end - 1L)]
    if (any(grepl("tensorscope", block))) {
      ours <- ours + 1L
      cat(basename(f), ":\n", paste(block, collapse = "\n"), "\n\n", sep = "")
    } else theirs <- theirs + 1L
  }
}
cat(sprintf("valgrind: %d error(s) in tensorscope's code, %d elsewhere (R, BLAS, OpenMP)\n", ours, theirs))
quit(status = if (ours > 0) 1 else 0)
