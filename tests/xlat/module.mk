# tests/xlat: translator test harness (library), differential tests,
# golden files and the libFuzzer target.  The test programs link only the
# libraries they use (not every library of the tree).
$(eval $(call add_lib,xlattest,tests/xlat/harness.c tests/xlat/harness_fast.c tests/xlat/native.S))
# the string fast path's handler runs with the guest's FPU state live
FASTPATH_OBJS += $(BUILD)/tests/xlat/harness_fast.o
$(BUILD)/tests/xlat/harness_fast.o: CFLAGS += -mgeneral-regs-only

XLAT_TEST_LIBS = $(BUILD)/libxlattest.a $(BUILD)/libxcheck.a $(BUILD)/libtc.a $(BUILD)/libxlat.a \
	$(BUILD)/libbtelf.a $(BUILD)/libbtbase.a

define xlat_test_prog
EXTRA_ALL += $(BUILD)/bin/$(1)
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(2)) $$(XLAT_TEST_LIBS)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $(patsubst %.c,$(BUILD)/%.o,$(2)) \
		-Wl,--start-group $$(XLAT_TEST_LIBS) -Wl,--end-group $$(call lib_ext,xcheck tc xlat btelf btbase)
endef

$(eval $(call xlat_test_prog,xlat_golden,tests/xlat/xlat_golden.c))
$(eval $(call xlat_test_prog,xlat_bench,tests/xlat/xlat_bench.c))
$(eval $(call xlat_test_prog,xlat_diff,tests/xlat/xlat_diff.c tests/xlat/diffgen.c tests/xlat/diffgen_more.c \
	tests/xlat/funcs.c))

# Differential test: thousands of random sequences, native vs translated.
CHECK_STEPS += check-xlat-diff
.PHONY: check-xlat-diff
check-xlat-diff: $(BUILD)/bin/xlat_diff
	$(Q)$(BUILD)/bin/xlat_diff -s 0x5eed -n 20000 -F
	$(Q)$(BUILD)/bin/xlat_diff -s 0xe8ac7 -n 3000 -e -x
	$(Q)$(BUILD)/bin/xlat_diff -s 0x0f1a6 -n 20000 -e -x -u

# Golden files: tests/xlat/golden/*.in -> *.out listings.
CHECK_STEPS += check-xlat-golden
.PHONY: check-xlat-golden rebase-xlat-golden
check-xlat-golden: $(BUILD)/bin/xlat_golden
	$(Q)tests/xlat/golden.sh check $(BUILD)/bin/xlat_golden
rebase-xlat-golden: $(BUILD)/bin/xlat_golden
	$(Q)tests/xlat/golden.sh rebase $(BUILD)/bin/xlat_golden

# libFuzzer target (clang, ASan): decode -> translate robustness.
FUZZ_CC ?= clang
FUZZ_XLAT_SRCS = tests/fuzz/fuzz_xlat.c $(wildcard pretrans/xlat/*.c) pretrans/xcheck/xcheck.c \
	pretrans/base/hash.c \
	pretrans/base/log.c
$(BUILD)/fuzz/fuzz_xlat: $(FUZZ_XLAT_SRCS) $(wildcard pretrans/xlat/*.h) pretrans/xcheck/xcheck.h
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -I. -D_GNU_SOURCE \
		$(LLVM_CFLAGS) -o $@ $(FUZZ_XLAT_SRCS) $(EXT_zydis) $(EXT_llvm)
CHECK_STEPS += check-fuzz-xlat
.PHONY: check-fuzz-xlat
check-fuzz-xlat: $(BUILD)/fuzz/fuzz_xlat
	@mkdir -p $(BUILD)/fuzz/corpus-xlat
	@# seed the corpus with the golden inputs (options byte 0 and 1, page offset 0)
	$(Q)command -v xxd >/dev/null || { echo "check-fuzz-xlat: xxd is missing: run tests/tools/deps.sh" >&2; exit 1; }
	$(Q)for f in tests/xlat/golden/*.in; do \
		b=$$(basename $$f .in); \
		for o in 000 001; do \
			{ printf "\\$$o\\000"; grep '^bytes' $$f | sed 's/^bytes//' | xxd -r -p; } \
				> $(BUILD)/fuzz/corpus-xlat/golden-$$b-$$o || exit 1; \
		done; \
	done
	$(Q)if $(BUILD)/fuzz/fuzz_xlat -max_total_time=25 -seed=1 -max_len=4096 \
		-print_final_stats=1 $(BUILD)/fuzz/corpus-xlat > $(BUILD)/fuzz/fuzz_xlat.log 2>&1; \
	then tail -6 $(BUILD)/fuzz/fuzz_xlat.log; \
	else tail -40 $(BUILD)/fuzz/fuzz_xlat.log; exit 1; fi
