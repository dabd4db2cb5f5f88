# t5serve - build, test, bench, run. `make` builds everything into build/.
# Modules are found by directory: tokenizer/*.c -> libtok.a, engine/*.c -> libt5.a,
# config/*.c -> libcfg.a, gen/*.c -> libgen.a, server/*.c -> t5serve, tools/t5/*.c -> t5,
# tools/*.c -> one tool each, tests/unit/test_*.c -> one Check test each.
# `make SAN=1` builds the same into build-asan/ with ASan + UBSan.
# Include paths are per folder (INC_* below): outside its folder a library is seen through
# its public header only (a developer header too for tools and tests); `make include-check`
# keeps it so.

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
CFLAGS += -std=c11 -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -MMD -MP $(SANFLAGS)
LDFLAGS += $(SANFLAGS) -pthread
LIBS_ENGINE := -lopenblas -lz -lm
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
# test_engine_isa with the AVX-512 kernels emulated (the rule below)
# and the AMX tiles too (tests/unit/amx_emulated.h)
EMU_SRC := engine/kernels.c engine/kernels_avx512.c engine/kernels_i8.c engine/kernels_i8_avx512.c \
  engine/kernels_i8_amx.c engine/kernels_bf16.c engine/kernels_bf16_avx512.c
EMU_OBJ := $(patsubst %.c,$(BUILD)/emu/%.o,$(EMU_SRC))
EMU_TEST := $(BUILD)/tests/test_engine_isa_emulated

LIBTOK := $(BUILD)/libtok.a
LIBT5  := $(BUILD)/libt5.a
LIBCFG := $(BUILD)/libcfg.a
LIBGEN := $(BUILD)/libgen.a
ALL_LIBS := $(LIBCFG) $(LIBGEN) $(LIBTOK) $(LIBT5)

BINS := $(BUILD)/t5 $(TOOLS) $(if $(SRV_OBJ),$(BUILD)/t5serve) $(BUILD)/spm_bench

# ---- include paths, per folder ----
# The headers a library shows outside its folder: its public header (PUB_*), and for the
# developer tools and white-box tests a developer header (DEV_*). Each is linked into a
# folder of its own, $(BUILD)/include/NAME/, so that one -I names exactly one header.
PUB_tok := tokenizer/tok.h
PUB_t5  := engine/t5.h
PUB_cfg := config/cfg.h
PUB_gen := gen/gen.h
DEV_tok := tokenizer/tok_dev.h
DEV_t5  := engine/t5_dev.h
INC_HEADERS := tok=$(PUB_tok) t5=$(PUB_t5) cfg=$(PUB_cfg) gen=$(PUB_gen) tokdev=$(DEV_tok) t5dev=$(DEV_t5)
inc = $(foreach n,$(1),-I$(BUILD)/include/$(n))
# What each top folder's sources may include: a library its own folder; the others the
# public headers of what they use (a developer header needs its public one beside it).
INC_tokenizer := -Itokenizer
INC_engine    := -Iengine
INC_config    := -Iconfig
INC_gen       := -Igen $(call inc,t5 tok)
INC_server    := -Iserver $(call inc,cfg gen t5 tok)
INC_tools     := $(call inc,gen t5 tok t5dev tokdev)
INC_tests     := -Iserver $(call inc,cfg gen t5 tok t5dev tokdev)
folder_inc = $(INC_$(firstword $(subst /, ,$(1))))
# Headers of tokenizer/ and engine/ that no file outside them may include.
PRIVATE_HDR := $(filter-out $(PUB_tok) $(PUB_t5) $(DEV_tok) $(DEV_t5),$(wildcard tokenizer/*.h engine/*.h))

inc_name = $(firstword $(subst =, ,$(1)))
inc_hdr = $(lastword $(subst =, ,$(1)))
INC_LINKS := $(foreach h,$(INC_HEADERS),$(BUILD)/include/$(call inc_name,$(h))/$(notdir $(call inc_hdr,$(h))))
define inc_link
$(BUILD)/include/$(call inc_name,$(1))/$(notdir $(call inc_hdr,$(1))): $(call inc_hdr,$(1))
	@mkdir -p $$(dir $$@); ln -sfr $$< $$@
endef

.PHONY: all deps serve-deps test unit bench run clean fuzz format format-check include-check
all: $(BINS) $(UNIT) $(EMU_TEST)

# Keep every object file: make would otherwise delete the ones only a pattern rule chain
# needs (tools/*.o, tests/unit/*.o) after each run, and the next `make run` would rebuild them.
.SECONDARY:
$(foreach h,$(INC_HEADERS),$(eval $(call inc_link,$(h))))

$(BUILD)/%.o: %.c | $(INC_LINKS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(call folder_inc,$<) -c $< -o $@

# The per-ISA kernels are compiled for their instruction set (kernels.c dispatches to them
# only on a CPU that has it); the rest of the tree stays baseline x86-64.
ISA_AVX2 := -mavx2 -mfma -mf16c
ISA_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
# per-file ISA flags (tests/fuzz/fuzz.mk repeats them for its clang build)
$(BUILD)/engine/kernels_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/engine/kernels_avx512.o: CFLAGS += $(ISA_AVX512)
$(BUILD)/engine/kernels_i8_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/engine/kernels_i8_avx512.o: CFLAGS += $(ISA_AVX512) -mavx512vnni
$(BUILD)/engine/kernels_i8_amx.o: CFLAGS += $(ISA_AVX512) -mamx-tile -mamx-int8
$(BUILD)/engine/kernels_bf16_avx2.o: CFLAGS += $(ISA_AVX2)
$(BUILD)/engine/kernels_bf16_avx512.o: CFLAGS += $(ISA_AVX512) -mavx512bf16

# test_engine_isa once more with the AVX-512, VNNI, BF16 and AMX kernels run through SIMDe's portable
# AVX-512 (tests/unit/simde_avx512.h) and C tiles (tests/unit/amx_emulated.h), so that an
# AVX2-only machine checks them too (13-isa)
$(BUILD)/emu/%.o: %.c | $(INC_LINKS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_AVX2) -Wno-psabi -DT5_EMULATE_AVX512 -DT5_EMULATE_AMX -Itests/unit $(call folder_inc,$<) -c $< -o $@
$(EMU_TEST): $(BUILD)/tests/unit/test_engine_isa.o $(UNIT_HELPER_OBJ) $(EMU_OBJ) \
		$(filter-out $(patsubst %.c,$(BUILD)/%.o,$(EMU_SRC)),$(T5_OBJ)) $(LIBCFG) $(LIBGEN) $(LIBTOK)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCFG) $(LIBGEN) $(LIBTOK) -ljansson -luv $(LIBS_CHECK) $(LIBS_ENGINE)

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

# Installs the Debian packages (only what is missing): deps what everything here needs,
# serve-deps only what building and serving build/t5serve need (scripts/install-deps.sh).
deps:
	@scripts/install-deps.sh test
serve-deps:
	@scripts/install-deps.sh serve

# The whole test suite (what CI runs): unit, golden, differential, integration,
# sanitizer, fuzz, container and load-balancer suites from tests/suites/.
test: deps
	@$(MAKE) --no-print-directory format-check include-check
	@tests/run.sh

# Unit tests only, in this build.
unit: $(UNIT)
	@set -e; for t in $(UNIT); do $$t; done

bench: all
	@scripts/bench.sh

# Serves the default model (models/default) as config/t5serve.conf says; RUN_ARGS adds flags.
# Needs only the serve packages and builds only the server, on every core unless -j was given.
RUN_ARGS ?=
run: serve-deps
	@$(MAKE) --no-print-directory $(if $(findstring -j,$(MAKEFLAGS)),,-j$(shell nproc)) $(BUILD)/t5serve
	$(BUILD)/t5serve --config config/t5serve.conf $(RUN_ARGS)

# One formatting for every C source (the repo's .clang-format); CI runs format-check.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null || \
  find . -path './build*' -prune -o \( -name '*.c' -o -name '*.h' \) -print)
format:
	@clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC) && echo "format-check: $(words $(FORMAT_SRC)) files formatted"

# No file outside tokenizer/ and engine/ includes their private headers (by any path).
include-check:
	@bad=$$(git ls-files '*.c' '*.h' '*.cc' | grep -v '^tokenizer/\|^engine/' | xargs grep -nE \
	  '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?($(subst $(eval) ,|,$(notdir $(PRIVATE_HDR))))[">]'); \
	if [ -n "$$bad" ]; then echo "include-check: private headers of tokenizer/ or engine/ included outside them:"; \
	  echo "$$bad"; exit 1; fi; \
	echo "include-check: $(words $(PRIVATE_HDR)) private headers, none included outside tokenizer/ and engine/"

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# libFuzzer harnesses: `make fuzz FUZZ_SECONDS=N` (see tests/fuzz/fuzz.mk)
include tests/fuzz/fuzz.mk
