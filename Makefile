# Top-level, non-recursive build.  Every module directory carries a
# module.mk fragment that declares its libraries, programs, unit tests and
# check steps with the helpers below; this file never names a source file.
#
#   make            build everything into $(BUILD)
#   make check      install dependencies, build, run every test
#   make demo       the main job end to end on the bundled test guest
#   make deps       install build and test dependencies (idempotent)
#   make install    the programs, man pages and bash completion into
#                   $(DESTDIR)$(PREFIX) (default PREFIX /usr/local); make uninstall
#
# Use BUILD=/some/dir for an out-of-tree build directory of your own.

BUILD ?= build
CC    ?= cc
Q     := $(if $(V),,@)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -I. -D_GNU_SOURCE -MMD -MP
LDFLAGS ?=

# External dependencies.  Zydis 4 ships no pkg-config file in Debian 12.
# Recursive (=) so that nothing runs before `make deps` has installed them.
# A library names the external libraries it uses by these short names
# (add_lib's third argument); a program links the union of its libraries'.
LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config)
LLVM_CFLAGS = -I$(shell $(LLVM_CONFIG) --includedir)
EXT_CFLAGS  = $(shell pkg-config --cflags libelf libdw sqlite3 2>/dev/null) $(LLVM_CFLAGS)
EXT_zydis   = -lZydis -lZycore
EXT_llvm    = -L$(shell $(LLVM_CONFIG) --libdir) $(shell $(LLVM_CONFIG) --libs --link-shared)
EXT_elf     = $(shell pkg-config --libs libelf 2>/dev/null)
EXT_dw      = $(shell pkg-config --libs libdw 2>/dev/null)
EXT_sqlite  = $(shell pkg-config --libs sqlite3 2>/dev/null)
EXT_z       = -lz
EXT_pthread = -lpthread
EXT_m       = -lm
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

ALL_LIBS   :=
ALL_LIB_NAMES :=
ALL_PROGS  :=
ALL_TESTS  :=
CHECK_STEPS :=
EXTRA_ALL  :=

# $(call add_lib,NAME,SOURCES[,EXTERNAL]): static library $(BUILD)/libNAME.a;
# EXTERNAL lists the external libraries its code calls (zydis llvm elf ...).
define add_lib
ALL_LIBS += $(BUILD)/lib$(1).a
ALL_LIB_NAMES += $(1)
LIB_EXT_$(1) := $(3)
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2)))
	@mkdir -p $$(@D)
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef

# The link arguments of a list of library names: the archives, then the
# union of their external libraries.
lib_archives = $(foreach l,$(1),$(BUILD)/lib$(l).a)
lib_ext      = $(foreach e,$(sort $(foreach l,$(1),$(LIB_EXT_$(l)))),$(EXT_$(e)))

# $(call add_prog,NAME,SOURCES,LIBS): program $(BUILD)/bin/NAME linked with
# exactly the libraries LIBS (library names, dependencies included: the
# list says who uses whom; the linker catches a missing one).
define add_prog
ALL_PROGS += $(BUILD)/bin/$(1)
PROG_LIBS_$(1) := $(3)
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2))) \
		$$(call lib_archives,$(3))
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2))) \
		-Wl,--start-group $$(call lib_archives,$(3)) -Wl,--end-group \
		$$(call lib_ext,$(3))
endef

# Every tests/unit/test_NAME.c is a CMocka program linked with every library
# (tests are the clients of every module); --as-needed keeps only the
# shared libraries a test really calls.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(EXT_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.S
	@mkdir -p $(@D)
	@echo "  AS      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

include $(sort $(wildcard */module.mk */*/module.mk))

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(ALL_LIBS) -Wl,--end-group \
		-Wl,--as-needed $(call lib_ext,$(ALL_LIB_NAMES)) $(CMOCKA_LIBS)

.PHONY: all deps check check-build unit format format-check demo clean install uninstall
.DEFAULT_GOAL := all

all: $(ALL_LIBS) $(ALL_PROGS) $(UNIT_BINS) $(EXTRA_ALL)

deps:
	$(Q)tests/tools/deps.sh

# `make check` installs what it needs first, then runs in a second make so
# that pkg-config and llvm-config answer for the installed packages.
check: deps
	$(Q)$(MAKE) --no-print-directory check-build
	$(Q)tests/tools/run-checks.sh "$(BUILD)" $(CHECK_STEPS)

check-build: all format-check

unit: $(UNIT_BINS)
	$(Q)tests/tools/run-unit.sh $(UNIT_BINS)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(Q)clang-format -i $(FORMAT_SRCS)
format-check:
	@echo "  FORMAT  checking $(words $(FORMAT_SRCS)) files"
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf $(BUILD)

# Installed as a Debian tool would be: bin/, share/man/man1/, bash completion.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL ?= install
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MAN1DIR  = $(DESTDIR)$(PREFIX)/share/man/man1
COMPDIR  = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
install: $(patsubst %,$(BUILD)/bin/%,$(MAN_PROGS)) $(MAN_PAGES)
	$(INSTALL) -d $(BINDIR) $(MAN1DIR) $(COMPDIR)
	$(INSTALL) -m 755 $(patsubst %,$(BUILD)/bin/%,$(MAN_PROGS)) $(BINDIR)/
	$(INSTALL) -m 644 $(MAN_PAGES) $(MAN1DIR)/
	$(INSTALL) -m 644 docs/completion/btkern.bash $(COMPDIR)/pretrans
	for p in btvm ptdiff; do ln -sf pretrans $(COMPDIR)/$$p; done

uninstall:
	rm -f $(patsubst %,$(BINDIR)/%,$(MAN_PROGS)) $(patsubst %,$(MAN1DIR)/%.1,$(MAN_PROGS)) \
		$(patsubst %,$(COMPDIR)/%,$(MAN_PROGS))

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
