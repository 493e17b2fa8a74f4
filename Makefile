# aiocopd build. `make` builds; `make deps` installs Debian build dependencies (root);
# `make test` runs unit and end-to-end tests, then both again under ASan and UBSan (`make
# sanitize`) and each fuzz harness briefly (`make fuzz` runs them longer); `make demo` shows
# aiocopd on a bundled program.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR      = $(PREFIX)/sbin
MANDIR      = $(PREFIX)/share/man
DOCDIR      = $(PREFIX)/share/doc/aiocopd
# The service's unit goes where this machine's systemd looks for packaged units; its
# configuration is always under /etc, the path aiocopd reads by default (SPEC 6.1).
SYSTEMDUNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),\
                       /lib/systemd/system)
CONFDIR     = /etc/aiocopd

CC         ?= cc
CLANG      ?= clang
BPFTOOL    ?= bpftool
LLVM_STRIP ?= llvm-strip
PYTHON     ?= /usr/bin/python3
# compile jobs of the builds `make test` runs (a plain `make` stays as the caller asks)
JOBS       ?= $(shell nproc 2>/dev/null || echo 1)
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

OUT        := build
ARCH       := x86
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's (`make CFLAGS='-O0 -g'`): a value given
# on the command line replaces only the default, and what the build needs is still added after it.
CFLAGS     ?= -O2 -g
override CPPFLAGS += -Iinclude -I$(OUT) -D_GNU_SOURCE -DAIOCOPD_VERSION='"$(VERSION)"'
override CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter
override LDLIBS   += -lbpf -lelf -lz -ljson-c -lsystemd -linih -lmicrohttpd -lpthread
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
        debootstrap bubblewrap libclang-rt-14-dev libinih-dev libmicrohttpd-dev \
        systemd-container prometheus python3-prometheus-client python3-aiohttp wrk

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

.PHONY: all deps demo test unit-test e2e-test sanitize fuzz fuzz-test install uninstall clean
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

# (its own mkdir: $(OUT) may exist already, made by another tree's rule such as the fuzzers')
$(OUT)/tests/%.o: tests/unit/%.c | $(OUT)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(UNIT_BINS): $(OUT)/tests/%: $(OUT)/tests/%.o $(OUT)/libaiocopd.a
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.o,$^) $(OUT)/libaiocopd.a -o $@ $(LDLIBS) -lcmocka

unit-test: $(UNIT_BINS)
	@tools/run-unit-tests.sh $(UNIT_BINS)

e2e-test: $(OUT)/aiocopd
	$(PYTHON) -m pytest -q -rs --durations=10 tests/e2e

# The test roots (tools/test-root.sh) are built in the background meanwhile, on a machine
# that has none yet: the end-to-end tests wait for them (the script's lock) when they need them.
test: deps
	@mkdir -p $(OUT) && for r in sid systemd; do \
		tools/test-root.sh $$r >$(OUT)/test-root-$$r.log 2>&1 </dev/null & \
	done
	$(MAKE) -j$(JOBS) all $(UNIT_BINS)
	$(MAKE) unit-test
	$(MAKE) e2e-test
	$(MAKE) sanitize
	$(MAKE) -j$(JOBS) $(FUZZ_BINS)
	$(MAKE) fuzz-test

# ---- sanitizers --------------------------------------------------------------------------
# aiocopd and the unit tests built again with ASan and UBSan into their own tree, run, and a
# representative part of the end-to-end suite (live -p, a target exiting, trace, exec,
# hostile targets, missing privileges, the service's reloads, limits and log, under every
# installed CPython) run against that binary; tests that only time things or kill aiocopd are left out, a sanitizer has nothing
# to say there. Any report fails: the runtimes stop at the first one with an exit status of
# their own (SAN_EXIT), and the e2e harness fails a test whose aiocopd printed a report or
# exited so (tests/e2e/aiocopd_e2e.py, SANITIZER_REPORT and SANITIZER_EXITS).
SAN_OUT    ?= build-san
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_EXIT   := 86
SAN_ENV    := ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:exitcode=$(SAN_EXIT):detect_leaks=1 \
              UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=$(SAN_EXIT)
# under two interpreters: Debian's (the built-in layout table) and sid's 3.14 (the debug
# offsets' format); the others run the same C code paths as one of them
SAN_SKIP_INTERPRETERS ?= pyenv or py310 or py312 or py313 or py315
SAN_E2E    ?= test_attached_line_and_quiet_loop or test_time_sleep_in_named_task or \
              test_target_exits_mid_run or test_long_path_is_named_whole_or_marked_cut or \
              test_missing_privileges or test_trace_document or test_trace_target_exits_early or \
              test_exec_violation_from_the_first_callback or test_exec_follows_a_child_python or \
              test_text_output_escapes_a_hostile_task_name or test_not_a_cpython_process or \
              test_reload_changes_thresholds_and_rules_in_place or test_hostile_command_lines or \
              test_invalid_reload_is_refused_and_storms_survive or test_report_limit_counts_and_summarises or \
              test_log_file_is_reopened_on_sigusr1 or test_bad_configuration_is_refused_with_its_line

sanitize:
	$(MAKE) -j$(JOBS) OUT=$(SAN_OUT) CC=$(CLANG) CFLAGS='-O1 -g $(SAN_FLAGS)' LDFLAGS='$(SAN_FLAGS)' \
		$(SAN_OUT)/aiocopd $(patsubst $(OUT)/%,$(SAN_OUT)/%,$(UNIT_BINS))
	$(SAN_ENV) tools/run-unit-tests.sh $(patsubst $(OUT)/%,$(SAN_OUT)/%,$(UNIT_BINS))
	$(SAN_ENV) AIOCOPD=$(SAN_OUT)/aiocopd $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e \
		-k '($(SAN_E2E)) and not ($(SAN_SKIP_INTERPRETERS))'

# ---- fuzzing -----------------------------------------------------------------------------
# One libFuzzer harness per parser of hostile bytes (tests/fuzz/fuzz_NAME.c), seeded from
# tests/fuzz/corpus/NAME (tests/fuzz/make_corpus.py writes it). What a run finds goes to
# $(OUT)/fuzz/: new inputs to corpus-NAME, a crashing one to NAME-crash-*. `make fuzz-test`
# (part of `make test`) runs each for FUZZ_TEST_TIME seconds, `make fuzz` for FUZZ_TIME.
FUZZERS        := elf linetable pydebug pyresolve config
FUZZ_TIME      ?= 300
FUZZ_TEST_TIME ?= 6
FUZZ_OUT        = $(OUT)/fuzz
FUZZ_SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS    := -g -O1 -std=gnu11 -Wall -Wextra -Wno-unused-parameter $(FUZZ_SAN) \
                  $(if $(filter true,$(CI)),-Werror)
# the modules the harnesses reach, instrumented for coverage
FUZZ_LIB_OBJS   = $(patsubst %,$(FUZZ_OUT)/src/%.o,elf_file linetable procmem pydebug pylayout pyresolve \
                  service_config bounded_regex proc_facts array)
FUZZ_BINS       = $(patsubst %,$(FUZZ_OUT)/fuzz_%,$(FUZZERS))

$(FUZZ_OUT)/src/%.o: src/%.c $(wildcard VERSION)
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c $< -o $@

$(FUZZ_OUT)/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEPFLAGS) -c $< -o $@

$(FUZZ_OUT)/libfuzzed.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(FUZZ_BINS): $(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/fuzz_%.o $(FUZZ_OUT)/libfuzzed.a
	$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ -lelf -lz -linih

# run-fuzzers SECONDS: each harness in turn; a crash, leak or sanitizer report stops make
define run-fuzzers
	@for f in $(FUZZERS); do \
		mkdir -p $(FUZZ_OUT)/corpus-$$f && \
		echo "fuzz: $$f for $(1) s" && \
		$(FUZZ_OUT)/fuzz_$$f -max_total_time=$(1) -timeout=10 -rss_limit_mb=1024 \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/$$f- \
			$(FUZZ_OUT)/corpus-$$f tests/fuzz/corpus/$$f 2>$(FUZZ_OUT)/$$f.log || \
			{ tail -n 40 $(FUZZ_OUT)/$$f.log; echo "fuzz: $$f failed (log: $(FUZZ_OUT)/$$f.log)"; \
			  exit 1; }; \
		grep -E '^stat::number_of_executed_units' $(FUZZ_OUT)/$$f.log; \
	done
endef

fuzz-test: $(FUZZ_BINS)
	$(call run-fuzzers,$(FUZZ_TEST_TIME))

fuzz: $(FUZZ_BINS)
	$(call run-fuzzers,$(FUZZ_TIME))

demo: deps
	$(MAKE) all
	@tools/demo.sh $(OUT)/aiocopd

# The unit is written with the binary's path. An existing configuration is never replaced;
# uninstall removes it only while it is still the one shipped (an edited one stays, and is
# named), and the drop-in directory only when empty.
install: $(OUT)/aiocopd
	install -D -m 0755 $(OUT)/aiocopd $(DESTDIR)$(BINDIR)/aiocopd
	install -D -m 0644 docs/aiocopd.8 $(DESTDIR)$(MANDIR)/man8/aiocopd.8
	install -D -m 0644 docs/aiocopd.conf.5 $(DESTDIR)$(MANDIR)/man5/aiocopd.conf.5
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(CONFDIR)/aiocopd.conf.d
	sed 's|@BINDIR@|$(BINDIR)|g' tools/aiocopd.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/aiocopd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/aiocopd.service
	@if [ -e $(DESTDIR)$(CONFDIR)/aiocopd.conf ]; then \
		echo "install: keeping the existing $(DESTDIR)$(CONFDIR)/aiocopd.conf"; \
	else \
		echo "install -m 0644 tools/aiocopd.conf $(DESTDIR)$(CONFDIR)/aiocopd.conf"; \
		install -m 0644 tools/aiocopd.conf $(DESTDIR)$(CONFDIR)/aiocopd.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/aiocopd $(DESTDIR)$(MANDIR)/man8/aiocopd.8
	rm -f $(DESTDIR)$(MANDIR)/man5/aiocopd.conf.5
	rm -rf $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/aiocopd.service
	@if cmp -s tools/aiocopd.conf $(DESTDIR)$(CONFDIR)/aiocopd.conf; then \
		echo "rm -f $(DESTDIR)$(CONFDIR)/aiocopd.conf"; \
		rm -f $(DESTDIR)$(CONFDIR)/aiocopd.conf; \
	elif [ -e $(DESTDIR)$(CONFDIR)/aiocopd.conf ]; then \
		echo "uninstall: keeping $(DESTDIR)$(CONFDIR)/aiocopd.conf, changed since it was installed"; \
	fi
	rmdir $(DESTDIR)$(CONFDIR)/aiocopd.conf.d $(DESTDIR)$(CONFDIR) 2>/dev/null || true

clean:
	rm -rf $(OUT) $(SAN_OUT)

-include $(wildcard $(OUT)/*.d $(OUT)/tests/*.d $(OUT)/fuzz/*.d $(OUT)/fuzz/src/*.d)
