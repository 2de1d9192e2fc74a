# Installs the CRAN packages (not packaged by Debian) that tests and examples use, when
# missing. Usage: Rscript tools/install-cran.R pkg1 pkg2 ...
pkgs <- commandArgs(trailingOnly = TRUE)
missing <- pkgs[!vapply(pkgs, requireNamespace, logical(1), quietly = TRUE)]
if (!length(missing)) {
  cat("deps: CRAN packages present:", paste(pkgs, collapse = ", "), "\n")
  quit(status = 0)
}
lib <- Sys.getenv("R_LIBS_SITE_TARGET", .libPaths()[1])
writable <- file.access(lib, 2) == 0
if (!writable) {
  lib <- file.path(getwd(), "lib-cran")
  dir.create(lib, showWarnings = FALSE)
}
cat("deps: installing from CRAN into", lib, ":", paste(missing, collapse = ", "), "\n")
options(repos = c(CRAN = "https://cloud.r-project.org"))
utils::install.packages(missing, lib = lib, quiet = TRUE)
still <- missing[!vapply(missing, function(p) requireNamespace(p, lib.loc = c(lib, .libPaths()), quietly = TRUE), logical(1))]
if (length(still)) {
  cat("deps: could not install", paste(still, collapse = ", "), "(tests that need them will skip)\n")
}
