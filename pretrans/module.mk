# pretrans/: the offline tool.  Library btpretrans holds code discovery and
# the build pipeline (the ELF reader is pretrans/elf/); the program adds the
# command line.
$(eval $(call add_lib,btpretrans,pretrans/discover.c pretrans/build.c pretrans/build_pipe.c \
	pretrans/build_write.c pretrans/build_term.c pretrans/build_predict.c pretrans/reuse.c \
	pretrans/reuse_tmpl.c pretrans/reuse_map.c \
	pretrans/build_kmod.c,z pthread))
$(eval $(call add_prog,pretrans,pretrans/main.c pretrans/cli.c pretrans/cmd_inspect.c \
	pretrans/cmd_show.c pretrans/cmd_xcheck.c pretrans/cmd_kpatch.c,\
	btpretrans kmod ptdiff asmfmt xcheck xlat tcdb btkpatch btcpuid btelf btbase))

# --- integration test on the test guest kernel ---------------------------------
CHECK_STEPS += check-pretrans-guest
.PHONY: check-pretrans-guest
check-pretrans-guest: $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf $(BUILD)/guests/testmod.ko
	$(Q)tests/integration/pretrans-guest.sh $(BUILD)/bin/pretrans $(BUILD)/guests/kernel.elf \
		$(BUILD)/guests/testmod.ko

# --- pretrans show against objdump and pretrans diff's keys (gcc-built images)
CHECK_STEPS += check-pretrans-show
.PHONY: check-pretrans-show
check-pretrans-show: $(BUILD)/bin/pretrans $(BUILD)/bin/ptdiff
	$(Q)tests/integration/pretrans-show.sh $(BUILD)

# --- libFuzzer harness of the ELF loader (clang, ASan + UBSan) -----------------
FUZZ_ELF_SRCS := tests/fuzz/fuzz_elf.c pretrans/elf/elfimg.c pretrans/elf/elfimg_check.c \
	pretrans/base/sha256.c pretrans/base/log.c
FUZZ_CC ?= clang
$(BUILD)/fuzz/fuzz_elf: $(FUZZ_ELF_SRCS) pretrans/elf/elfimg.h pretrans/base/sha256.h
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $(FUZZ_ELF_SRCS) -lelf

# Seeds: small real ELF files made by the host compiler (an ET_EXEC with a
# build-id, a stripped copy, ET_REL objects), plus tests/fuzz/regress/: inputs
# that once crashed the loader (run first, as every seed is).
$(BUILD)/fuzz/seeds/.done: tests/fuzz/seed_tiny.c $(BUILD)/pretrans/base/sha256.o
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -ffreestanding -fno-pic -no-pie -nostdlib -static -Wl,--build-id \
		-o $(@D)/tiny.elf tests/fuzz/seed_tiny.c
	$(Q)$(CC) -O2 -ffreestanding -c -o $(@D)/tiny.o tests/fuzz/seed_tiny.c
	$(Q)strip -o $(@D)/tiny-stripped.elf $(@D)/tiny.elf
	$(Q)cp $(BUILD)/pretrans/base/sha256.o $(@D)/sha256.o
	$(Q)touch $@

CHECK_STEPS += check-fuzz-elf
.PHONY: check-fuzz-elf
check-fuzz-elf: $(BUILD)/fuzz/fuzz_elf $(BUILD)/fuzz/seeds/.done
	@rm -rf $(BUILD)/fuzz/corpus && mkdir -p $(BUILD)/fuzz/corpus
	$(Q)$(BUILD)/fuzz/fuzz_elf -max_total_time=20 -max_len=65536 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ \
		$(BUILD)/fuzz/corpus $(BUILD)/fuzz/seeds tests/fuzz/regress >$(BUILD)/fuzz/log 2>&1; \
		rc=$$?; tail -8 $(BUILD)/fuzz/log; exit $$rc
