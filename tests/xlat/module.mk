# tests/xlat: translator test harness (library), differential tests,
# golden files and the libFuzzer target.  The test programs link only the
# libraries they use (not every library of the tree).
$(eval $(call add_lib,xlattest,tests/xlat/harness.c tests/xlat/native.S))

XLAT_TEST_LIBS = $(BUILD)/libxlattest.a $(BUILD)/libtc.a $(BUILD)/libxlat.a $(BUILD)/libbtbase.a

define xlat_test_prog
EXTRA_ALL += $(BUILD)/bin/$(1)
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(2)) $$(XLAT_TEST_LIBS)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $(patsubst %.c,$(BUILD)/%.o,$(2)) \
		-Wl,--start-group $$(XLAT_TEST_LIBS) -Wl,--end-group $$(EXT_LIBS)
endef

$(eval $(call xlat_test_prog,xlat_golden,tests/xlat/xlat_golden.c))
$(eval $(call xlat_test_prog,xlat_diff,tests/xlat/xlat_diff.c tests/xlat/diffgen.c tests/xlat/funcs.c))

# Differential test: thousands of random sequences, native vs translated.
CHECK_STEPS += check-xlat-diff
.PHONY: check-xlat-diff
check-xlat-diff: $(BUILD)/bin/xlat_diff
	$(Q)$(BUILD)/bin/xlat_diff -s 0x5eed -n 20000 -F
