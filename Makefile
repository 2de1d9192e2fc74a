# tensorscope: set-up, build, test and demo on a fresh Debian machine.
#   make demo    the main job on shipped data (writes demo-output/: the HTML report
#                and headless-Chromium screenshots of it, report.png)
#   make figures every analyzer metric's figure as PNG (demo-output/figures/)
#   make test    installs what is missing, builds, runs the whole test suite
#                (with LibTorch, then again without it; then the CMake harness)
#   make install build the package with its vignettes and install it into lib/
#   make site    the pkgdown site in docs/ (offline)
#   make check   R CMD check --as-cran on the built tarball
#   make bench   the benchmarks in bench/
#   make docs    regenerate NAMESPACE, man/ and the Rcpp glue
#   make sanitize  the suite on an AddressSanitizer + UBSan build (lib-asan/), no LibTorch
#   make valgrind  a subset of the suite under valgrind (memcheck) on the plain build

SHELL := /bin/bash
R ?= R
RSCRIPT ?= Rscript
LIB := $(CURDIR)/lib
LIB_NOTORCH := $(CURDIR)/lib-notorch

# Debian packages the build, the tests, the demo and the benchmarks need.
DEB_PACKAGES := r-base-dev r-cran-rcpp r-cran-rcppeigen r-cran-rlang r-cran-cli \
  r-cran-tibble r-cran-ggplot2 r-cran-testthat r-cran-withr r-cran-knitr r-cran-rmarkdown \
  r-cran-jsonlite r-cran-bench r-cran-future r-cran-future.apply r-cran-future.batchtools r-cran-progressr \
  r-cran-igraph r-cran-pls libopenblas0-pthread libtorch-dev pandoc \
  python3-torch python3-torchvision python3-numpy dataset-fashion-mnist cmake zlib1g-dev r-cran-hdf5r python3-h5py \
  r-cran-roxygen2 r-cran-generics r-cran-dplyr r-cran-pkgdown valgrind chromium r-cran-png

.PHONY: all deps build install install-dev install-notorch site test test-torch test-notorch torch-check check demo bench docs clean \
  sanitize valgrind

all: install

# CRAN-only packages (Suggests): R.matlab reads the MATLAB RDM files used in tests.
CRAN_PACKAGES := R.matlab

deps:
	@bash tools/install-deps.sh $(DEB_PACKAGES)
	@$(RSCRIPT) tools/install-cran.R $(CRAN_PACKAGES)

docs:
	$(RSCRIPT) -e 'Rcpp::compileAttributes(".")'
	$(RSCRIPT) -e 'roxygen2::roxygenise(roclets = c("namespace", "rd"))'

# `make install` builds the source package (which knits the vignettes) and installs that,
# so vignette(package = "tensorscope") finds them: `R CMD INSTALL .` on a source
# directory never installs vignettes. The same by hand:
#   R CMD build . && R CMD INSTALL tensorscope_$(VERSION).tar.gz
# `make install-dev` is the quick install without vignettes that the tests use.
VERSION := $(shell sed -n 's/^Version: *//p' DESCRIPTION)

install: deps
	@mkdir -p $(LIB)
	$(R) CMD build --no-manual .
	$(R) CMD INSTALL --no-test-load --library=$(LIB) tensorscope_$(VERSION).tar.gz

install-dev: deps
	@mkdir -p $(LIB)
	$(R) CMD INSTALL --no-test-load --library=$(LIB) .

install-notorch: deps
	@mkdir -p $(LIB_NOTORCH)
	TENSORSCOPE_NO_TORCH=1 $(R) CMD INSTALL --no-test-load --library=$(LIB_NOTORCH) .

test-torch: install-dev
	TS_TEST_LIB=$(LIB) $(RSCRIPT) tools/run-tests.R

test-notorch: install-notorch
	TS_TEST_LIB=$(LIB_NOTORCH) TS_EXPECT_TORCH=0 $(RSCRIPT) tools/run-tests.R

# The C++ core and the LibTorch paths built without R by CMake (bench/CMakeLists.txt),
# checked against each other: the harness to run on a GPU machine, kept building here.
torch-check: deps
	cmake -S bench -B build-bench -DCMAKE_BUILD_TYPE=Release
	cmake --build build-bench -j2
	./build-bench/torch_check 1000 300

test: test-torch test-notorch torch-check

build: deps
	$(R) CMD build .

# R CMD check --as-cran also wants checkbashisms (devscripts) and qpdf. Its CRAN
# incoming and orphaned-package checks read CRAN's web database, which these machines
# cannot reach: an empty local copy stands in (R_CRAN_WEB). torch for R (Suggests)
# cannot be installed here.
check: build
	@bash tools/install-deps.sh devscripts qpdf
	@mkdir -p check-cran/web/packages
	@$(RSCRIPT) -e 'saveRDS(data.frame(Package = character(), Maintainer = character()), "check-cran/web/packages/packages.rds")'
	R_CRAN_WEB=file://$(CURDIR)/check-cran _R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_CRAN_INCOMING_REMOTE_=false \
	  $(R) CMD check --as-cran --no-manual tensorscope_*.tar.gz

demo: install-dev
	R_LIBS=$(LIB) $(RSCRIPT) tools/demo.R

figures: install-dev
	R_LIBS=$(LIB) $(RSCRIPT) tools/render-figures.R

# bench/common.R is sourced by the scripts; scale_worker.R and scale_error.R are run by
# scale.R with their arguments.
BENCH_HELPERS := bench/common.R bench/scale_worker.R bench/scale_error.R
bench: install-dev
	for f in $(filter-out $(BENCH_HELPERS),$(wildcard bench/*.R)); do echo "== $$f"; R_LIBS=$(LIB) $(RSCRIPT) $$f || exit 1; done

# AddressSanitizer + UBSan: the package is built from a clean copy of the sources
# (build-asan/, so no plain object file is reused) with -fsanitize=address,undefined
# into lib-asan/, without LibTorch (its own allocator and the separately built backend
# are not instrumented), and the whole suite runs with libasan preloaded into R.
# Sanitizer reports go to sanitize-logs/; any report fails the target.
ASAN_LIB := $(LIB)-asan
CCACHE := $(shell command -v ccache)
SAN_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=vptr
sanitize: deps
	rm -rf build-asan sanitize-logs $(ASAN_LIB) && mkdir -p build-asan sanitize-logs $(ASAN_LIB)
	tar --exclude='./lib*' --exclude='./build-*' --exclude='*.o' --exclude='*.so' --exclude='./.git' \
	  --exclude='./sanitize-logs' --exclude='./valgrind-logs' -cf - . | tar -xf - -C build-asan
	printf 'CXX17 = $(CCACHE) g++\nCXX = $(CCACHE) g++\nCC = $(CCACHE) gcc\nCXX17FLAGS = $(SAN_FLAGS)\nCXXFLAGS = $(SAN_FLAGS)\nCFLAGS = $(SAN_FLAGS)\nLDFLAGS = -fsanitize=address,undefined\n' > build-asan/Makevars.asan
	cd build-asan && TENSORSCOPE_NO_TORCH=1 R_MAKEVARS_USER=$(CURDIR)/build-asan/Makevars.asan MAKEFLAGS=-j2 \
	  $(R) CMD INSTALL --no-test-load --library=$(ASAN_LIB) .
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$(CURDIR)/sanitize-logs/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CURDIR)/sanitize-logs/ubsan \
	  TS_TEST_LIB=$(ASAN_LIB) TS_EXPECT_TORCH=0 $(RSCRIPT) tools/run-tests.R
	@if ls sanitize-logs/* >/dev/null 2>&1; then echo "sanitizer reports:"; cat sanitize-logs/*; exit 1; fi
	@echo "sanitize: no sanitizer report"

# memcheck on the plain no-LibTorch build for VALGRIND_TESTS; an error whose stack
# passes through tensorscope.so fails. test-cpp-families.R runs every family of the C++
# core once on small inputs (the families' own test files take tens of minutes each
# under memcheck); add files with VALGRIND_TESTS="cpp-families rdm rsa ...".
VALGRIND_TESTS ?= cpp-families superposition
valgrind: install-notorch
	rm -rf valgrind-logs && mkdir -p valgrind-logs
	for t in $(VALGRIND_TESTS); do \
	  echo "== valgrind test-$$t.R"; \
	  TS_TEST_LIB=$(LIB_NOTORCH) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(R) -d "valgrind --error-limit=no --num-callers=30 --log-file=$(CURDIR)/valgrind-logs/$$t.log" \
	    --vanilla --slave -e 'lib <- Sys.getenv("TS_TEST_LIB"); .libPaths(c(lib, .libPaths())); library(testthat); library(tensorscope); test_file("tests/testthat/test-'$$t'.R", package = "tensorscope", load_package = "installed", reporter = "summary")' || exit 1; \
	done
	@$(RSCRIPT) tools/valgrind-report.R valgrind-logs

# The pkgdown site (docs/), built offline from _pkgdown.yml.
site: install-dev
	R_LIBS=$(LIB) $(RSCRIPT) -e 'pkgdown::build_site(install = FALSE, new_process = FALSE)'

clean:
	./cleanup
	rm -rf $(LIB) $(LIB_NOTORCH) $(ASAN_LIB) build-asan sanitize-logs valgrind-logs build-bench tensorscope_*.tar.gz \
	  tensorscope.Rcheck demo-output check-cran
