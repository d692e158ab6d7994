# pretrans/diff: function-level diff of two kernel builds (`pretrans diff`).
# Library ptdiff (prefix diff_); ptdiff is the subcommand as its own program.
$(eval $(call add_lib,ptdiff,pretrans/diff/diff_load.c pretrans/diff/diff_dwarf.c pretrans/diff/diff_reloc.c pretrans/diff/diff_norm.c \
	pretrans/diff/diff_match.c pretrans/diff/diff_out.c pretrans/diff/diff_html.c \
	pretrans/diff/diff_html_assets.S \
	pretrans/diff/diff_cli.c pretrans/diff/diff_pager.c pretrans/diff/diff_tree.c \
	pretrans/diff/diff_tree_out.c,zydis pthread dw))
# The report's style sheet and script, embedded by .incbin.
$(BUILD)/pretrans/diff/diff_html_assets.o: pretrans/diff/diff_report.css pretrans/diff/diff_report.js
$(eval $(call add_prog,ptdiff,pretrans/diff/ptdiff_main.c,ptdiff asmfmt btpretrans kmod xcheck xlat tcdb btelf btbase))

# Unit test inputs: the synthetic kernel pair (guests/diffpair/module.mk).
$(BUILD)/tests/unit/test_diff.o: CFLAGS += -DDP_DIR='"$(DP_OUT)"'
$(BUILD)/tests/test_diff: $(DP_ELFS) $(DP_KOS)

# check-diff: the command line end to end on the synthetic pair (text,
# JSON schema, HTML structure, bad input).
CHECK_STEPS += check-diff
.PHONY: check-diff
check-diff: $(BUILD)/bin/ptdiff $(BUILD)/bin/pretrans $(DP_ELFS) $(DP_KOS) $(GU_OUT)/testmod.ko
	$(Q)TESTMOD=$(GU_OUT)/testmod.ko CC="$(CC)" KMOD_CFLAGS="$(GU_KMOD_CFLAGS)" \
		tests/integration/diff-synthetic.sh $(BUILD)

# check-diff-html: the HTML report of a synthetic 50 000-function pair in
# headless Chromium (load, sort, scroll, filter, open a diff; about 15 s of CPU).
CHECK_STEPS += check-diff-html
.PHONY: check-diff-html
check-diff-html: $(BUILD)/bin/ptdiff
	$(Q)tests/integration/diff-html-browser.py $(BUILD)
