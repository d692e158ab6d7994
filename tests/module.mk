# Unit tests: every tests/unit/test_*.c (see the top-level Makefile).
CHECK_STEPS += check-unit
.PHONY: check-unit
check-unit: $(UNIT_BINS)
	$(Q)tests/tools/run-unit.sh $(UNIT_BINS)

# btvm boots the test guest cold, warm and learning; bad input.
CHECK_STEPS += check-btvm-boot
.PHONY: check-btvm-boot
check-btvm-boot: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/kernel-bid.elf $(BUILD)/guests/initrd.cpio $(TINY_ELFS)
	$(Q)tests/integration/btvm-boot.sh $(BUILD)

# A database is code: changed or foreign host code never runs, another
# key's database is refused until `pretrans verify --sign`; permissions.
CHECK_STEPS += check-db-trust
.PHONY: check-db-trust
check-db-trust: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/initrd.cpio
	$(Q)tests/integration/db-trust.sh $(BUILD)

# The include matrix of docs/layers.md holds for every file; the check is
# proven to catch a new arrow and a controlled header out of place; btvm
# links no library it never calls (the LLVM cross-check is pretrans's).
CHECK_STEPS += check-layers
.PHONY: check-layers
check-layers: $(BUILD)/bin/btvm
	$(Q)python3 tests/tools/check-layers.py
	$(Q)if python3 tests/tools/check-layers.py --inject runtime/mmu/mmu.c:db/tcdb.h \
		>$(BUILD)/check-layers-inject.log; then \
		echo "check-layers: an injected runtime/mmu -> db arrow passed" >&2; exit 1; fi
	$(Q)grep -q 'runtime/mmu -> db is not allowed' $(BUILD)/check-layers-inject.log
	$(Q)if python3 tests/tools/check-layers.py --inject runtime/dev/uart.c:'<llvm-c/Core.h>' \
		>$(BUILD)/check-layers-inject.log; then \
		echo "check-layers: <llvm-c/Core.h> in runtime/dev passed" >&2; exit 1; fi
	$(Q)grep -q "runtime/dev includes <llvm-c/Core.h>" $(BUILD)/check-layers-inject.log
	@echo "  OK      check-layers refuses an injected arrow and an injected external header"
	$(Q)needed=$$(readelf -d $(BUILD)/bin/btvm | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); \
		echo "  btvm needs: $$(echo $$needed)"; \
		if echo "$$needed" | grep -Eq 'LLVM|xml|icu|z3'; then \
			echo "check-layers: btvm links a library it never calls" >&2; exit 1; fi

# No check touches the user's database key (docs/db.md "Trust"): every
# check step, and the run-unit target, keep theirs under the build directory.
TEST_CONFIG_HOME := $(abspath $(BUILD))/test-config
check: export XDG_CONFIG_HOME = $(TEST_CONFIG_HOME)
check-%: export XDG_CONFIG_HOME = $(TEST_CONFIG_HOME)
unit: export XDG_CONFIG_HOME = $(TEST_CONFIG_HOME)

# The README's commands run as written (tests/integration/readme.sh); its
# Debian recipe downloads and is tests/bench/readme-debian.sh.
CHECK_STEPS += check-readme
.PHONY: check-readme
check-readme: $(BUILD)/bin/btvm $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/initrd.cpio $(DP_ELFS)
	$(Q)tests/integration/readme.sh $(BUILD)

# The fast paths of the memory and string call-outs never touch the FPU
# state and call only themselves (tests/tools/check-fastpath.sh); the check must catch an
# object that uses SSE (a double) and one that calls memset.
CHECK_STEPS += check-fastpath
.PHONY: check-fastpath
check-fastpath: $(FASTPATH_OBJS)
	$(Q)tests/tools/check-fastpath.sh $(FASTPATH_OBJS)
	$(Q)mkdir -p $(BUILD)/check-fastpath
	$(Q)printf 'double f(double x) { return x * 3.5; }\n' >$(BUILD)/check-fastpath/sse.c
	$(Q)printf '#include <string.h>\nvoid g(char *p, unsigned long n) { memset(p, 1, n); }\n' \
		>$(BUILD)/check-fastpath/call.c
	$(Q)for t in sse call; do \
		$(CC) -O2 -c -o $(BUILD)/check-fastpath/$$t.o $(BUILD)/check-fastpath/$$t.c || exit 1; \
		if tests/tools/check-fastpath.sh $(FASTPATH_OBJS) $(BUILD)/check-fastpath/$$t.o \
			>/dev/null 2>&1; then \
			echo "check-fastpath: an object with $$t passed" >&2; exit 1; fi; \
	done
