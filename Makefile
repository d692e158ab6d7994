# Top-level, non-recursive build.  Every module directory carries a
# module.mk fragment that declares its libraries, programs, unit tests and
# check steps with the helpers below; this file never names a source file.
#
#   make            build everything into $(BUILD)
#   make check      install dependencies, build, run every test
#   make demo       the main job end to end on the bundled test guest
#   make deps       install build and test dependencies (idempotent)
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
PKG_CFLAGS  = $(shell pkg-config --cflags libelf sqlite3 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs libelf libdw sqlite3 2>/dev/null)
LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config)
LLVM_CFLAGS = -I$(shell $(LLVM_CONFIG) --includedir)
LLVM_LIBS   = -L$(shell $(LLVM_CONFIG) --libdir) $(shell $(LLVM_CONFIG) --libs --link-shared)
ZYDIS_LIBS  = -lZydis -lZycore
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)
EXT_CFLAGS  = $(PKG_CFLAGS) $(LLVM_CFLAGS)
EXT_LIBS    = $(ZYDIS_LIBS) $(PKG_LIBS) $(LLVM_LIBS) -lz -lpthread -lm

ALL_LIBS   :=
ALL_PROGS  :=
ALL_TESTS  :=
CHECK_STEPS :=
EXTRA_ALL  :=

# $(call add_lib,NAME,SOURCES): static library $(BUILD)/libNAME.a
define add_lib
ALL_LIBS += $(BUILD)/lib$(1).a
$(BUILD)/lib$(1).a: $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2)))
	@mkdir -p $$(@D)
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef

# $(call add_prog,NAME,SOURCES): program $(BUILD)/bin/NAME linked with every library
define add_prog
ALL_PROGS += $(BUILD)/bin/$(1)
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2))) $$(ALL_LIBS)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $(patsubst %.c,$(BUILD)/%.o,$(patsubst %.S,$(BUILD)/%.o,$(2))) \
		-Wl,--start-group $$(ALL_LIBS) -Wl,--end-group $$(EXT_LIBS)
endef

# Every tests/unit/test_NAME.c is a CMocka program linked with every library.
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

# add_prog expands its prerequisites when a fragment declares the program,
# so programs declared before a library would not wait for it: every
# program depends on every library.
$(ALL_PROGS): $(ALL_LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(ALL_LIBS) -Wl,--end-group \
		$(EXT_LIBS) $(CMOCKA_LIBS)

.PHONY: all deps check check-build unit format format-check demo clean
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

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
