# resflow - one Makefile. Targets: all (lib + tool), test, bench, bench-rank, bench-prepare, asan, tsan, clean.
# No -ffast-math anywhere: NaN/Inf checks must work.
CC      ?= cc
OPT     ?= -O3 -march=native
OBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
OBLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-openmp
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
           -Wstrict-prototypes -Wshadow -fopenmp -pthread -Iinclude -Isrc -I$(OBLAS_INC)
LDLIBS  := -L$(OBLAS_LIB) -Wl,-rpath,$(OBLAS_LIB) -lopenblas -lyaml -ljansson -lxxhash \
           -lzstd -lz -lm -fopenmp -pthread
BUILD   ?= build

# The engine (libresflow) is every wing but lab/; the lab (experiments, sweeps, probing, plots)
# is a library of its own on top of it (libresflow_lab).
WINGS := core data nn eval run
SRC  := $(foreach w,$(WINGS),$(wildcard src/$(w)/*.c))
OBJ  := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LAB_SRC := $(wildcard src/lab/*.c)
LAB_OBJ := $(LAB_SRC:src/%.c=$(BUILD)/obj/%.o)
HDRS := $(wildcard include/resflow/*.h) $(wildcard src/*/*.h)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_OBJ := $(TOOL_SRC:tools/%.c=$(BUILD)/obj/tools/%.o)
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
LIB  := $(BUILD)/libresflow.a
LAB  := $(BUILD)/libresflow_lab.a

.PHONY: all test bench bench-rank bench-prepare asan clean fixtures
all: $(LIB) $(LAB) $(BUILD)/resflow

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c $(HDRS) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itools -c $< -o $@

$(LIB): $(OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

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
test: all $(TESTS)
	@BUILD=$(BUILD) sh tests/run_all.sh $(TESTS)

$(BUILD)/bench_train: bench/bench_train.c tools/blas_env.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_train.c tools/blas_env.c $(LIB) $(LDLIBS)

$(BUILD)/bench_load: bench/bench_load.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_load.c $(LIB) $(LDLIBS)

$(BUILD)/bench_rank: bench/bench_rank.c $(LIB)
	$(CC) $(CFLAGS) -o $@ bench/bench_rank.c $(LIB) $(LDLIBS)

# Ranking metrics on 10M rows (lists of ~20), 2 threads: rows/s of every step.
bench-rank: $(BUILD)/bench_rank
	$(BUILD)/bench_rank --rows 10000000 --threads 2

# Training/inference throughput vs the PyTorch reference on the same data (needs python3-torch:
# scripts/install-deps.sh --with-torch).
bench: all $(BUILD)/bench_train
	@BUILD=$(BUILD) sh bench/run.sh

# resflow prepare vs pandas.read_csv on a generated AliExpress-format file (needs python3-pandas;
# env ROWS, REPS, THREADS, GZ: see bench/prepare_bench.sh).
bench-prepare: all $(BUILD)/bench_load
	@BUILD=$(BUILD) sh bench/prepare_bench.sh

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then the tests.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" test

# ThreadSanitizer on the tests of the loader and the cache, which run threads of their own, and
# on test_seam, which scores one const model from several threads at once
# (the loader's worker pool, the decompressor, the cache writer). OpenMP stays single-threaded
# (OMP_NUM_THREADS=1): Debian's libgomp is not instrumented, so its own threads would only give
# false reports.
TSAN_TESTS := test_csv test_data test_cache test_seam
tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -fsanitize=thread -Wno-format-truncation" $(TSAN_TESTS:%=build-tsan/tests/%)
	@for t in $(TSAN_TESTS); do OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/$$t >build-tsan/$$t.log 2>&1 || \
	    { cat build-tsan/$$t.log; echo "tsan: $$t failed"; exit 1; }; done; echo "tsan: $(TSAN_TESTS) passed"

fixtures:
	/usr/bin/python3 tests/ref/torch_ref.py tests/fixtures

clean:
	rm -rf build build-asan build-tsan
