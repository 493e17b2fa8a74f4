# aiocopd build. `make` builds; `make deps` installs Debian build dependencies (root);
# `make test` runs unit and end-to-end tests; `make demo` shows aiocopd on a bundled program.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR      = $(PREFIX)/sbin
MANDIR      = $(PREFIX)/share/man
DOCDIR      = $(PREFIX)/share/doc/aiocopd

CC         ?= cc
CLANG      ?= clang
BPFTOOL    ?= bpftool
LLVM_STRIP ?= llvm-strip
PYTHON     ?= /usr/bin/python3
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

OUT        := build
ARCH       := x86
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's (`make CFLAGS='-O0 -g'`): a value given
# on the command line replaces only the default, and what the build needs is still added after it.
CFLAGS     ?= -O2 -g
override CPPFLAGS += -Iinclude -I$(OUT) -D_GNU_SOURCE -DAIOCOPD_VERSION='"$(VERSION)"'
override CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter
override LDLIBS   += -lbpf -lelf -lz -ljson-c -lsystemd -lpthread
DEPFLAGS    = -MMD -MP
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -I$(OUT) \
              -idirafter /usr/include/x86_64-linux-gnu -Wall -Wno-unused-function

# CI runs `CI=true make test`: there a warning, in user space or BPF, fails the build.
ifeq ($(CI),true)
override CFLAGS += -Werror
BPF_CFLAGS      += -Werror
endif

# Debian packages needed to build and test.
DEPS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libcmocka-dev libjson-c-dev libsystemd-dev \
        pkg-config make gcc python3 python3-pytest python3-jsonschema python3.11 python3.11-dbg python3-uvloop \
        debootstrap bubblewrap

# bpf/maps.bpf.c, which defines the shared maps, links first: libbpf 1.1's linker gets a
# map's BTF offset wrong when a part declaring it extern comes before its definition.
BPF_SRCS   := bpf/maps.bpf.c $(filter-out bpf/maps.bpf.c,$(wildcard bpf/*.bpf.c))
BPF_PARTS  := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(OUT)/aiocopd.skel.h
LIB_SRCS   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS   := $(patsubst src/%.c,$(OUT)/%.o,$(LIB_SRCS))
# The objects that include the generated skeleton: only these need clang, bpftool and kernel BTF.
SKEL_OBJS  := $(OUT)/probes.o
CORE_OBJS  := $(filter-out $(SKEL_OBJS),$(LIB_OBJS))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

.PHONY: all deps demo test unit-test e2e-test install uninstall clean
all: $(OUT)/aiocopd

deps:
	@tools/install-deps.sh $(DEPS)

$(OUT):
	@mkdir -p $(OUT)/tests

$(OUT)/vmlinux.h: | $(OUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) include/aiocopd.h $(OUT)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The parts link into one object (libbpf's static linker resolves their shared maps), so
# user space loads one object through one skeleton. The binary embeds it without DWARF; BTF
# and BTF.ext stay, so CO-RE and the verifier's line info work as before.
$(OUT)/aiocopd.bpf.o: $(BPF_PARTS)
	$(BPFTOOL) gen object $@.linked $^
	$(LLVM_STRIP) -g -o $@ $@.linked && rm -f $@.linked

$(OUT)/aiocopd.skel.h: $(OUT)/aiocopd.bpf.o
	$(BPFTOOL) gen skeleton $< name aiocopd_bpf > $@.tmp && mv $@.tmp $@

# Header dependencies come from the compiler ($(OUT)/*.d); the skeleton is named here because
# it does not exist before the first build. VERSION is in CPPFLAGS (AIOCOPD_VERSION).
$(OUT)/%.o: src/%.c $(wildcard VERSION) | $(OUT)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(SKEL_OBJS): $(SKELS)

$(OUT)/aiocopd: $(OUT)/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The modules without the skeleton, as an archive: a unit test links only the members it needs.
$(OUT)/libaiocopd.a: $(CORE_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(OUT)/tests/%.o: tests/unit/%.c | $(OUT)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(UNIT_BINS): $(OUT)/tests/%: $(OUT)/tests/%.o $(OUT)/libaiocopd.a
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.o,$^) $(OUT)/libaiocopd.a -o $@ $(LDLIBS) -lcmocka

unit-test: $(UNIT_BINS)
	@tools/run-unit-tests.sh $(UNIT_BINS)

e2e-test: $(OUT)/aiocopd
	$(PYTHON) -m pytest -q tests/e2e

test: deps
	$(MAKE) all
	$(MAKE) unit-test
	$(MAKE) e2e-test

demo: deps
	$(MAKE) all
	@tools/demo.sh $(OUT)/aiocopd

install: $(OUT)/aiocopd
	install -D -m 0755 $(OUT)/aiocopd $(DESTDIR)$(BINDIR)/aiocopd
	install -D -m 0644 docs/aiocopd.8 $(DESTDIR)$(MANDIR)/man8/aiocopd.8
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/aiocopd $(DESTDIR)$(MANDIR)/man8/aiocopd.8
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(OUT)

-include $(wildcard $(OUT)/*.d $(OUT)/tests/*.d)
