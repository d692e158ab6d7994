# Man pages: made from each program's --help and --version (help2man) and
# docs/man/PROG.h2m; `make man` builds them, `make install` installs them.
MAN_PROGS := pretrans btvm ptdiff
MAN_PAGES := $(patsubst %,$(BUILD)/man/%.1,$(MAN_PROGS))

$(BUILD)/man/%.1: $(BUILD)/bin/% docs/man/%.h2m docs/man/gen-man.sh
	@mkdir -p $(@D)
	@echo "  MAN     $@"
	$(Q)docs/man/gen-man.sh $(BUILD) $* $@

.PHONY: man
man: $(MAN_PAGES)

# make install: the three programs, their man pages and bash completion.
CHECK_STEPS += check-install
.PHONY: check-install
check-install: $(MAN_PAGES) $(patsubst %,$(BUILD)/bin/%,$(MAN_PROGS)) $(TINY_ELFS)
	$(Q)tests/integration/install.sh $(BUILD)
