# tests/fuzz/fuzz.mk - the libFuzzer harnesses and the soak target (included from the Makefile).
# `make fuzz-build` builds tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address,undefined
# into build-fuzz/, the libraries' sources compiled again with fuzzer coverage;
# `make fuzz FUZZ_SECONDS=N` runs each harness N seconds (default 60) over its seed corpus
# tests/fuzz/corpus/NAME/ (new inputs go to build-fuzz/corpus/NAME/, never into the repo).
# A crash stops `make fuzz`; the reproducer lands in build-fuzz/crash-NAME-*.
# tests/suites/60-fuzz.sh runs each harness briefly and replays tests/fuzz/regress/.

FUZZ_CC ?= clang
FUZZ_DIR := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c11 -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link
FUZZ_HARNESS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_HARNESS))
FUZZ_LIB_SRC := $(wildcard tokenizer/*.c engine/*.c config/*.c gen/*.c)
FUZZ_SRV_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_SRV_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRV_SRC))

$(FUZZ_DIR)/obj/engine/kernels_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)
$(FUZZ_DIR)/obj/engine/kernels_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512)
$(FUZZ_DIR)/obj/engine/kernels_i8_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)
$(FUZZ_DIR)/obj/engine/kernels_i8_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512) -mavx512vnni
$(FUZZ_DIR)/obj/engine/kernels_i8_amx.o: FUZZ_CFLAGS += $(ISA_AVX512) -mamx-tile -mamx-int8
$(FUZZ_DIR)/obj/engine/kernels_bf16_avx2.o: FUZZ_CFLAGS += $(ISA_AVX2)
$(FUZZ_DIR)/obj/engine/kernels_bf16_avx512.o: FUZZ_CFLAGS += $(ISA_AVX512) -mavx512bf16

.PHONY: fuzz fuzz-build
.SECONDARY: $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/obj/tests/fuzz/%.o,$(FUZZ_HARNESS))
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c | $(INC_LINKS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(call folder_inc,$<) -MMD -MP -c $< -o $@

# fuzz_request and fuzz_http link the server's objects (without main.c); the others only the libraries.
$(FUZZ_DIR)/fuzz_request $(FUZZ_DIR)/fuzz_http: $(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o \
    $(FUZZ_SRV_OBJ) $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $^ $(LIBS_SERVER) -ljansson $(LIBS_ENGINE)
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $^ -ljansson $(LIBS_ENGINE)

fuzz: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do n=$$(basename $$b); \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/log; echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  if ! $$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$$n- \
	      $(FUZZ_DIR)/corpus/$$n tests/fuzz/corpus/$$n > $(FUZZ_DIR)/log/$$n.log 2>&1; then \
	    tail -n 40 $(FUZZ_DIR)/log/$$n.log; echo "fuzz: $$n failed, see $(FUZZ_DIR)/log/$$n.log"; exit 1; fi; \
	  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE' $(FUZZ_DIR)/log/$$n.log; \
	done

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)

# The long soak test (tools/soak.py) against build/t5serve: `make soak SOAK_SECONDS=600`.
SOAK_SECONDS ?= 300
SOAK_THREADS ?= 64
.PHONY: soak
soak: all
	/usr/bin/python3 tools/soak.py --seconds $(SOAK_SECONDS) --threads $(SOAK_THREADS) --build build \
	  --fixtures $${FIXTURES:-tests/fixtures} --work $${TMPDIR:-/tmp}
