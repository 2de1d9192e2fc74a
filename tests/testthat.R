library(testthat)
library(tensorscope)

test_check("tensorscope")
