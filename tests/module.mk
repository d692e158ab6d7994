# Unit tests: every tests/unit/test_*.c (see the top-level Makefile).
CHECK_STEPS += check-unit
.PHONY: check-unit
check-unit: $(UNIT_BINS)
	$(Q)tests/tools/run-unit.sh $(UNIT_BINS)
