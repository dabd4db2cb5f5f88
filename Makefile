# t5serve - build, test, bench, run. `make` builds everything into build/.
# Modules are found by directory: tokenizer/*.c -> libtok.a, engine/*.c -> libt5.a,
# config/*.c -> libcfg.a, gen/*.c -> libgen.a, server/*.c -> t5serve, tools/t5/*.c -> t5,
# tools/*.c -> one tool each, tests/unit/test_*.c -> one Check test each.
# `make SAN=1` builds the same into build-asan/ with ASan + UBSan.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

CC ?= cc
CFLAGS ?= $(OPT) -g
CFLAGS += -std=c11 -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP $(SANFLAGS) \
          -Itokenizer -Iengine -Iconfig -Igen -Iserver
LDFLAGS += $(SANFLAGS) -pthread
LIBS_ENGINE := -lopenblas -lm
LIBS_SERVER := -lmicrohttpd -ljansson -luv
LIBS_CHECK := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

TOK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tokenizer/*.c))
T5_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/*.c))
CFG_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard config/*.c))
GEN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard gen/*.c))
SRV_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard server/*.c))
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/t5/*.c))
TOOLS   := $(patsubst tools/%.c,$(BUILD)/%,$(wildcard tools/*.c))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
UNIT_HELPER_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter-out tests/unit/test_%,$(wildcard tests/unit/*.c)))

LIBTOK := $(BUILD)/libtok.a
LIBT5  := $(BUILD)/libt5.a
LIBCFG := $(BUILD)/libcfg.a
LIBGEN := $(BUILD)/libgen.a
ALL_LIBS := $(LIBCFG) $(LIBGEN) $(LIBTOK) $(LIBT5)

BINS := $(BUILD)/t5 $(TOOLS) $(if $(SRV_OBJ),$(BUILD)/t5serve) $(BUILD)/spm_bench

.PHONY: all deps test unit bench run clean fuzz format format-check
all: $(BINS) $(UNIT)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBTOK): $(TOK_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBT5): $(T5_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBGEN): $(GEN_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBCFG): $(CFG_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $(if $^,$^,)

$(BUILD)/t5: $(CLI_OBJ) $(LIBGEN) $(LIBTOK) $(LIBT5)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBGEN) $(LIBTOK) $(LIBT5) -ljansson $(LIBS_ENGINE)

# SentencePiece's C++ encoder, the reference side of `t5 bench tokenizer`
$(BUILD)/spm_bench: tools/bench/spm_bench.cc
	@mkdir -p $(dir $@)
	$(CXX) -O2 -std=c++17 $(SANFLAGS) -o $@ $< -lsentencepiece

$(BUILD)/t5serve: $(SRV_OBJ) $(ALL_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(SRV_OBJ) $(ALL_LIBS) $(LIBS_SERVER) $(LIBS_ENGINE)

$(BUILD)/%: $(BUILD)/tools/%.o $(ALL_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(ALL_LIBS) -ljansson $(LIBS_ENGINE)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(UNIT_HELPER_OBJ) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(ALL_LIBS) -ljansson -luv $(LIBS_CHECK) $(LIBS_ENGINE)

# unit tests of server/ parts link the server objects they test (and nothing of HTTP)
$(BUILD)/tests/test_sched: $(BUILD)/server/scheduler.o $(BUILD)/server/log.o
$(BUILD)/tests/test_validate: $(BUILD)/server/validate.o

# Installs the Debian packages the build and the tests need (only what is missing).
deps:
	@scripts/install-deps.sh

# The whole test suite (what CI runs): unit, golden, differential, integration,
# sanitizer, fuzz, container and load-balancer suites from tests/suites/.
test: deps format-check
	@tests/run.sh

# Unit tests only, in this build.
unit: $(UNIT)
	@set -e; for t in $(UNIT); do $$t; done

bench: all
	@scripts/bench.sh

# Serves the default model (models/default) as config/t5serve.conf says; RUN_ARGS adds flags.
RUN_ARGS ?=
run: deps all
	$(BUILD)/t5serve --config config/t5serve.conf $(RUN_ARGS)

# One formatting for every C source (the repo's .clang-format); CI runs format-check.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	@clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC) && echo "format-check: $(words $(FORMAT_SRC)) files formatted"

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# libFuzzer harnesses: `make fuzz FUZZ_SECONDS=N` (see tests/fuzz/fuzz.mk)
include tests/fuzz/fuzz.mk
