# Shipped models and test fixtures for the model/Fisher tests.
ext_file <- function(...) system.file("extdata", ..., package = "tensorscope")
fixture <- function(...) test_path("fixtures", ...)
read_rowmajor_txt <- function(file, dims) {
  v <- scan(file, quiet = TRUE)
  if (length(dims) == 1) return(v)
  aperm(array(v, rev(dims)), rev(seq_along(dims)))
}
fmnist <- function() readRDS(ext_file("fmnist_stimuli.rds"))
