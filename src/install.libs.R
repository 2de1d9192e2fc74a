# Installs the package's shared object and, when configure built it, the LibTorch
# backend (a stale one left in src/ by an earlier build with LibTorch is not installed).
facts <- tryCatch(read.dcf("../inst/build-info.dcf")[1, ], error = function(e) c(torch = "0"))
files <- paste0("tensorscope", SHLIB_EXT)
if (identical(unname(facts["torch"]), "1")) files <- c(files, paste0("tensorscope_torch", SHLIB_EXT))
files <- files[file.exists(files)]
dest <- file.path(R_PACKAGE_DIR, paste0("libs", R_ARCH))
dir.create(dest, recursive = TRUE, showWarnings = FALSE)
file.copy(files, dest, overwrite = TRUE)
if (file.exists("symbols.rds")) file.copy("symbols.rds", dest, overwrite = TRUE)
