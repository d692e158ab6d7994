# pretrans/diff: function-level diff of two kernel builds (`pretrans diff`).
# Library ptdiff (prefix diff_); ptdiff is the subcommand as its own program.
$(eval $(call add_lib,ptdiff,pretrans/diff/diff_load.c pretrans/diff/diff_dwarf.c pretrans/diff/diff_reloc.c pretrans/diff/diff_norm.c \
	pretrans/diff/diff_match.c pretrans/diff/diff_out.c pretrans/diff/diff_html.c \
	pretrans/diff/diff_cli.c,zydis pthread dw))
$(eval $(call add_prog,ptdiff,pretrans/diff/ptdiff_main.c,ptdiff btpretrans kmod xcheck xlat tcdb btelf btbase))

# Unit test inputs: the synthetic kernel pair (guests/diffpair/module.mk).
$(BUILD)/tests/unit/test_diff.o: CFLAGS += -DDP_DIR='"$(DP_OUT)"'
$(BUILD)/tests/test_diff: $(DP_ELFS) $(DP_KOS)

# check-diff: the command line end to end on the synthetic pair (text,
# JSON schema, HTML structure, bad input).
CHECK_STEPS += check-diff
.PHONY: check-diff
check-diff: $(BUILD)/bin/ptdiff $(BUILD)/bin/pretrans $(DP_ELFS) $(DP_KOS)
	$(Q)tests/integration/diff-synthetic.sh $(BUILD)
