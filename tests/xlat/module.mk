# tests/xlat: translator test harness (library), differential tests,
# golden files and the libFuzzer target.
$(eval $(call add_lib,xlattest,tests/xlat/harness.c tests/xlat/native.S))
$(eval $(call add_prog,xlat_golden,tests/xlat/xlat_golden.c))
