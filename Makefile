# resflow - one Makefile. Targets: all (libs + tool), test, install, uninstall, symbols, bench,
# bench-rank, bench-http, bench-prepare, asan, tsan, clean; test-mpi and bench-mpi for an MPI=1
# build. PORTABLE=1: a build for any x86-64 (see below).
# No -ffast-math anywhere: NaN/Inf checks must work.
CC      ?= cc
# PORTABLE=1: baseline x86-64 code (no -march=native); the SIMD number parsing picks its code at
# run time (src/data/numparse.h) and the hot elementwise kernels of src/nn/ops.c are cloned for
# AVX-512/AVX2/baseline (RF_PORTABLE, src/core/simd.h). Use another BUILD directory for it.
PORTABLE ?= 0
ifeq ($(PORTABLE),1)
ARCH    ?= -march=x86-64 -mtune=generic
PORTABLE_DEF := -DRF_PORTABLE=1
else
ARCH    ?= -march=native
PORTABLE_DEF :=
endif
OPT     ?= -O3 $(ARCH)
OBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
OBLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-openmp
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
           -Wstrict-prototypes -Wshadow -fopenmp -pthread -Iinclude -Isrc -I$(OBLAS_INC) $(PORTABLE_DEF)
LDLIBS  := -L$(OBLAS_LIB) -Wl,-rpath,$(OBLAS_LIB) -lopenblas -lyaml -ljansson -lxxhash \
           -lzstd -lz -lmicrohttpd -lm -fopenmp -pthread
BUILD   ?= build
# MPI=1: data-parallel training over OpenMPI (src/dist/comm_mpi.c, `mpirun -np N resflow train`,
# docs/distributed.md); the default build has the one-process communicator (comm_single.c) and
# needs no MPI. Use another BUILD directory for it (make MPI=1 BUILD=build-mpi).
MPI     ?= 0
ifeq ($(MPI),1)
CFLAGS  += $(shell pkg-config --cflags ompi-c)
LDLIBS  += $(shell pkg-config --libs ompi-c)
COMM_SKIP := src/dist/comm_single.c
else
COMM_SKIP := src/dist/comm_mpi.c
endif

# The engine (libresflow) is every wing but lab/; the lab (experiments, sweeps, probing, plots)
# is a library of its own on top of it (libresflow_lab).
WINGS := core data nn eval run dist serve
SRC  := $(filter-out $(COMM_SKIP),$(foreach w,$(WINGS),$(wildcard src/$(w)/*.c)))
OBJ  := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LAB_SRC := $(wildcard src/lab/*.c)
LAB_OBJ := $(LAB_SRC:src/%.c=$(BUILD)/obj/%.o)
HDRS := $(wildcard include/resflow/*.h) $(wildcard include/resflow/lab/*.h) $(wildcard src/*/*.h)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:tools/%.c=$(BUILD)/obj/tools/%.o)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
LIB  := $(BUILD)/libresflow.a
LAB  := $(BUILD)/libresflow_lab.a

# The shared engine: libresflow.so.X.Y.Z (soname libresflow.so.X), version from resflow.h.
# The engine's objects are built once, with -fPIC -fvisibility=hidden, for both libraries: only
# RF_API functions are exported (tests/symbols.txt lists them). PIC costs nothing measurable
# here (hidden symbols are bound locally, as in -fPIE code; resflow prepare/train timed).
VERSION := $(shell sed -n 's/^\#define RF_VERSION "\(.*\)"/\1/p' include/resflow/resflow.h)
SOMAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME  := libresflow.so.$(SOMAJOR)
SO      := $(BUILD)/libresflow.so.$(VERSION)
$(OBJ): CFLAGS += -fPIC -fvisibility=hidden
# The engine's public headers (installed); the lab's (include/resflow/lab/) are the tool's own.
PUB_HDRS := $(wildcard include/resflow/*.h)

.PHONY: python install-python all test test-mpi bench bench-http bench-mpi bench-serve bench-synth bench-rank bench-prepare asan clean fixtures install uninstall symbols stage
all: $(LIB) $(LAB) $(SO) $(BUILD)/resflow

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
# Adam's square roots without errno, so its loops vectorise (same results; src/nn/optim.c)
$(BUILD)/obj/nn/optim.o: CFLAGS += -fno-math-errno

$(BUILD)/obj/tools/%.o: tools/%.c $(HDRS) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itools -c $< -o $@

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Also a version script naming the RF_API functions of the public headers (all else local):
# GCC 12 gives the ifunc and resolver symbols of target_clones (PORTABLE=1, src/core/simd.h)
# default visibility whatever -fvisibility or the attribute says.
$(BUILD)/libresflow.map: $(PUB_HDRS)
	@mkdir -p $(dir $@)
	{ echo '{ global:'; cat $(PUB_HDRS) | grep 'RF_API' | sed 's/(.*//' | grep -o 'rf_[A-Za-z0-9_]*$$' | \
	    sed 's/$$/;/'; echo 'local: *; };'; } > $@.tmp && mv $@.tmp $@

$(SO): $(OBJ) $(BUILD)/libresflow.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined \
	    -Wl,--version-script,$(BUILD)/libresflow.map -o $@ $(OBJ) $(LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME) && ln -sf $(SONAME) $(BUILD)/libresflow.so

$(LAB): $(LAB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/resflow: $(TOOL_OBJ) $(LAB) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(TOOL_OBJ) $(LAB) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test_util.h $(LAB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LAB) $(LIB) $(LDLIBS) -lcmocka

# Runs every test binary (each exits non-zero on failure) and the CLI tests; prints one
# summary line "N passed, N failed".
# The example and the symbol list (tests/cli/install_example.sh, tests/cli/symbols.sh) use the
# library as installed into $(BUILD)/stage.
test: all $(TESTS) stage
	@BUILD=$(BUILD) sh tests/run_all.sh $(TESTS)

# ---- the Python package (python/resflow, ctypes over libresflow.so; docs/python.md) -----------
# make python: records the path of $(SO) in the package (PYTHONPATH=python /usr/bin/python3).
# make install-python [PREFIX=/usr/local]: the package into $(PYDIR) (Debian's python3 reads
# /usr/local/lib/python3/dist-packages), loading the library of `make install` with that PREFIX.
PYDIR   ?= $(PREFIX)/lib/python3/dist-packages
python: $(SO)
	echo "LIBPATH = '$(abspath $(SO))'" > python/resflow/_libpath.py

install-python:
	$(INSTALL) -d $(DESTDIR)$(PYDIR)/resflow
	$(INSTALL) -m 644 $(filter-out python/resflow/_libpath.py,$(wildcard python/resflow/*.py)) $(DESTDIR)$(PYDIR)/resflow/
	echo "LIBPATH = '$(LIBDIR)/$(SONAME)'" > $(DESTDIR)$(PYDIR)/resflow/_libpath.py

# ---- install -------------------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: libresflow.a, libresflow.so (+ soname links),
# the engine's public headers in include/resflow/, lib/pkgconfig/resflow.pc, bin/resflow. The lab
# (libresflow_lab.a, include/resflow/lab/) is the tool's own and not installed.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
INSTALL ?= install

install: $(LIB) $(SO) $(BUILD)/resflow resflow.pc.in
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/resflow $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libresflow.so
	$(INSTALL) -m 644 $(PUB_HDRS) $(DESTDIR)$(INCDIR)/resflow/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@OBLAS_LIB@|$(OBLAS_LIB)|g' resflow.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/resflow.pc && chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/resflow.pc
	$(INSTALL) -m 755 $(BUILD)/resflow $(DESTDIR)$(BINDIR)/

uninstall:
	rm -rf $(DESTDIR)$(PYDIR)/resflow
	rm -f $(DESTDIR)$(LIBDIR)/libresflow.a $(DESTDIR)$(LIBDIR)/libresflow.so \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libresflow.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/resflow.pc $(DESTDIR)$(BINDIR)/resflow \
	    $(addprefix $(DESTDIR)$(INCDIR)/resflow/,$(notdir $(PUB_HDRS)))
	-rmdir $(DESTDIR)$(INCDIR)/resflow 2>/dev/null

# The test suite's installation (a fresh one each time: what a user would get).
stage: all
	rm -rf $(BUILD)/stage
	$(MAKE) --no-print-directory install PREFIX=$(abspath $(BUILD))/stage DESTDIR= >/dev/null

# Regenerate tests/symbols.txt (the exported symbols of the shared library, checked by
# tests/cli/symbols.sh) after a deliberate change of the public API.
symbols: $(SO)
	sh tests/cli/symbols.sh --list $(SO) > tests/symbols.txt

$(BUILD)/bench_train: bench/bench_train.c bench/bench_data.h bench/peak.c tools/blas_env.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_train.c bench/peak.c tools/blas_env.c $(LIB) $(LDLIBS)

# The tower GEMMs of the reference setup: the bf16 kernel vs OpenBLAS SGEMM (and, with DNNL=1,
# oneDNN's bf16 matmul from Debian's libdnnl-dev; measurement only, the library does not use it).
DNNL ?= 0
ifeq ($(DNNL),1)
DNNL_FLAGS := -DRF_WITH_DNNL -ldnnl
endif
$(BUILD)/bench_gemm_bf16: bench/bench_gemm_bf16.c tools/blas_env.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_gemm_bf16.c tools/blas_env.c $(LIB) $(LDLIBS) $(DNNL_FLAGS)

$(BUILD)/bench_gemm: bench/bench_gemm.c bench/peak.c tools/blas_env.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_gemm.c bench/peak.c tools/blas_env.c $(LIB) $(LDLIBS)

$(BUILD)/bench_balance: bench/bench_balance.c bench/bench_data.h tools/blas_env.c $(LAB) $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_balance.c tools/blas_env.c $(LAB) $(LIB) $(LDLIBS)

$(BUILD)/bench_load: bench/bench_load.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_load.c $(LIB) $(LDLIBS)

$(BUILD)/bench_score: bench/bench_score.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_score.c $(LIB) $(LDLIBS)

# the scoring core and `resflow serve` under load (needs wrk): N candidates per request
bench-http: all $(BUILD)/bench_score
	RF=$(BUILD)/resflow BS=$(BUILD)/bench_score sh bench/http_load.sh

$(BUILD)/bench_synth: bench/bench_synth.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_synth.c $(LIB) $(LDLIBS)

bench-synth: $(BUILD)/bench_synth
	$(BUILD)/bench_synth --rows 5000000 --threads 1,2

$(BUILD)/bench_rank: bench/bench_rank.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_rank.c $(LIB) $(LDLIBS)

$(BUILD)/bench_serve: bench/bench_serve.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_serve.c $(LIB) $(LDLIBS)

# Top-100 of 1,000,000 x 64 vectors, exact and quantized, vs FAISS IndexFlatIP and SQ8 on the same
# vectors (needs python3-faiss: scripts/install-deps.sh --with-torch); 2 threads.
bench-serve: $(BUILD)/bench_serve
	$(BUILD)/bench_serve --n 1000000 --d 64 --k 100 --threads 2

# Ranking metrics on 10M rows (lists of ~20), 2 threads: rows/s of every step.
bench-rank: $(BUILD)/bench_rank
	$(BUILD)/bench_rank --rows 10000000 --threads 2

# Training/inference throughput vs the PyTorch reference on the same data (needs python3-torch:
# scripts/install-deps.sh --with-torch).
bench: all $(BUILD)/bench_train $(BUILD)/bench_balance
	@BUILD=$(BUILD) sh bench/run.sh
	$(BUILD)/bench_balance --threads 2 --peer

# resflow prepare vs pandas.read_csv on a generated AliExpress-format file (needs python3-pandas;
# env ROWS, REPS, THREADS, GZ: see bench/prepare_bench.sh).
bench-prepare: all $(BUILD)/bench_load
	@BUILD=$(BUILD) sh bench/prepare_bench.sh

# The data-parallel tests of an MPI build (make MPI=1 BUILD=build-mpi test-mpi): the one-process
# seam test and tests/cli/mpi.sh (2 processes under mpirun reproduce the 1-process run; failures).
test-mpi: all $(BUILD)/tests/test_mpi_seam
	$(BUILD)/tests/test_mpi_seam
	BUILD=$(BUILD) sh tests/cli/mpi.sh && BUILD=$(BUILD) sh tests/cli/mpi_checkpoint.sh && echo "test-mpi: passed"

# 1 vs 2 processes on this host: samples/s, bytes per step, time in communication (MPI build:
# make MPI=1 BUILD=build-mpi bench-mpi).
bench-mpi: all
	@BUILD=$(BUILD) sh bench/bench_mpi.sh

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then the tests.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" test

# ThreadSanitizer on the tests of the loader and the cache, which run threads of their own, and
# on test_seam, which scores one const model from several threads at once
# (the loader's worker pool, the decompressor, the cache writer). OpenMP stays single-threaded
# (OMP_NUM_THREADS=1): Debian's libgomp is not instrumented, so its own threads would only give
# false reports.
TSAN_TESTS := test_csv test_data test_cache test_seam test_serve test_topk
tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -fsanitize=thread -Wno-format-truncation" $(TSAN_TESTS:%=build-tsan/tests/%)
	@for t in $(TSAN_TESTS); do OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/$$t >build-tsan/$$t.log 2>&1 || \
	    { cat build-tsan/$$t.log; echo "tsan: $$t failed"; exit 1; }; done; echo "tsan: $(TSAN_TESTS) passed"

fixtures:
	/usr/bin/python3 tests/ref/torch_ref.py tests/fixtures
	/usr/bin/python3 tests/ref/twin_ref.py tests/fixtures

clean:
	rm -rf build build-asan build-tsan build-portable

# ---- fuzzing (issue #17, docs/reliability.md) ------------------------------------------------
# make fuzz: the libFuzzer targets fuzz/fuzz_*.c built with clang (ASan + UBSan) into build-fuzz/;
# make fuzz-run FUZZ_SECONDS=30: each for that long on its seed corpus fuzz/corpus/<target>
# (read only: new inputs go to build-fuzz/corpus/<target>). scripts/fuzz_seeds.sh regenerates the seeds.
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 30
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz OPT="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wno-pass-failed" build-fuzz/libresflow.a
	@for t in $(FUZZ_TARGETS); do echo "clang fuzz/$$t.c -> build-fuzz/$$t"; \
	    clang -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer -std=c11 -D_GNU_SOURCE -Iinclude -Isrc fuzz/$$t.c \
	    build-fuzz/libresflow.a $(LDLIBS) -o build-fuzz/$$t || exit 1; done
fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus/$$t; \
	    ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=1 build-fuzz/$$t -seed=1 -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -timeout=10 -print_final_stats=1 build-fuzz/corpus/$$t fuzz/corpus/$$t > build-fuzz/$$t.log 2>&1 || \
	    { tail -60 build-fuzz/$$t.log; echo "fuzz: $$t failed"; exit 1; }; \
	    echo "fuzz: $$t $$(grep -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/$$t.log | grep -o '[0-9]*$$') executions, \
	    $$(grep -o 'cov: [0-9]*' build-fuzz/$$t.log | tail -1)"; done
.PHONY: fuzz fuzz-run
