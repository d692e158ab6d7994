# runtime/dev: device models (one per file) and the platform creation table.
$(eval $(call add_lib,btdev,$(wildcard runtime/dev/*.c)))

# The interactive serial console typed into through tmux on Debian's kernel
# (an explicit step, not in `make check`: it downloads Debian's kernel once,
# see tests/linux/console-tty.sh).
.PHONY: check-console-tty
check-console-tty: $(BUILD)/bin/btvm
	$(Q)tests/linux/console-tty.sh $(BUILD)
