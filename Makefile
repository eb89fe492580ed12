# Makefile -- `make run` builds and starts acdmd; `make test` builds and runs every test;
# `make bench` runs the benchmarks. Missing Debian packages are installed by scripts/deps.sh.

PKGS      := libwebsockets jansson libcurl sqlite3 libuv libssl libcrypto xlsxwriter
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror
CSTD      := -std=c11 -D_GNU_SOURCE
CFLAGS_BASE := $(CSTD) $(WARN) -Icore -Icore/include $(PKG_CFLAGS) -MMD -MP
LIBS      := $(PKG_LIBS) -lhpdf -ldl -lpthread -lm
REL_FLAGS := -O2 -g
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# the core's layers, one folder each (docs/architecture.md); cmd/ holds the two programs
CORE_SRCS := $(filter-out core/cmd/%,$(wildcard core/*/*.c))
REL_OBJS  := $(CORE_SRCS:%.c=build/rel/%.o)
SAN_OBJS  := $(CORE_SRCS:%.c=build/san/%.o)

# Channel plugins: every channels/<name>/ becomes plugins/<name>.so; a channels/<name>/plugin.mk
# may add <name>_CFLAGS and <name>_LIBS (e.g. pkg-config of libre).
PLUGIN_NAMES := $(patsubst channels/%/,%,$(wildcard channels/*/))
PLUGINS   := $(PLUGIN_NAMES:%=plugins/%.so)
-include $(wildcard channels/*/plugin.mk)
PLUGIN_FLAGS := $(CSTD) $(WARN) -O2 -g -fPIC -fvisibility=hidden -shared -Icore/include

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/san/tests/%)
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=build/rel/bench/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/san/fuzz/%)
# The plugin kit's mock host (tests/mock/mock_host.c): plugins' unit tests link it and no daemon
# code. A channel's own tests are channels/<name>/tests/test_*.c, built with the channel's
# sources (build/san/chtests/<name>/test_*); tests/mock/test_*.c test bundled plugins by their
# built .so (dlopen) on the mock host.
MOCK_SRC  := tests/mock/mock_host.c
MOCK_FLAGS := $(CSTD) $(WARN) $(SAN_FLAGS) -Icore/include -Itests/mock
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
CHTEST_SRCS := $(wildcard channels/*/tests/test_*.c)
CHTEST_BINS := $(patsubst channels/%.c,build/san/chtests/%,$(subst /tests/,/,$(CHTEST_SRCS)))
MOCKT_SRCS := $(wildcard tests/mock/test_*.c)
MOCKT_BINS := $(MOCKT_SRCS:tests/mock/%.c=build/san/mocktests/%)
# test-only plugins (bad ABI versions etc.) built from tests/plugins/*.c
TPLUG_SRCS := $(wildcard tests/plugins/*.c)
TPLUGS    := $(TPLUG_SRCS:tests/plugins/%.c=build/testplugins/%.so)

.PHONY: all run test layers unit integration fuzz-regress bench deps deps-test deps-bench cppcheck clean install install-kit
.PHONY: binaries install-bin deb package-test
.SECONDEXPANSION:

# deps first, then a second make: PKG_CFLAGS/PKG_LIBS are read when the Makefile is parsed, and on
# a fresh machine the packages that pkg-config asks about arrive only with deps (and `make -j`
# would otherwise compile beside the install)
all: deps
	@$(MAKE) --no-print-directory bin/acdmd bin/acdmctl $(PLUGINS)

deps:
	@scripts/deps.sh run
deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench

# make run PORT=8090: another port (--listen 127.0.0.1:$(PORT)); default: conf/acdm.json's listen
run: all
	@mkdir -p var
	bin/acdmd -c conf/acdm.json$(if $(PORT), --listen 127.0.0.1:$(PORT))

build/rel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -c $< -o $@
build/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -c $< -o $@

build/rel/libacdm.a: $(REL_OBJS)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^
build/san/libacdm.a: $(SAN_OBJS)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^

bin/acdmd: build/rel/core/cmd/main.o build/rel/libacdm.a
	@mkdir -p $(@D)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)
bin/acdmctl: build/rel/core/cmd/acdmctl.o build/rel/libacdm.a
	@mkdir -p $(@D)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)
# the sanitizer build of the daemon, used by the integration tests
build/san/acdmd: build/san/core/cmd/main.o build/san/libacdm.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LIBS)
build/san/acdmctl: build/san/core/cmd/acdmctl.o build/san/libacdm.a
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LIBS)

plugins/%.so: $$(wildcard channels/%/*.c) $$(wildcard channels/%/*.h) $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_FLAGS) $($*_CFLAGS) -o $@ $(filter %.c,$^) $($*_LIBS)

build/testplugins/%.so: tests/plugins/%.c $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_FLAGS) -o $@ $<

build/san/tests/%: tests/unit/%.c build/san/libacdm.a $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -Itests/unit -o $@ $< build/san/libacdm.a $(LIBS) $(shell pkg-config --libs check)

# build/san/chtests/<name>/test_x from channels/<name>/tests/test_x.c + the channel's sources
build/san/chtests/%: $$(dir $$(subst build/san/chtests/,channels/,$$@))tests/$$(notdir $$@).c \
		$$(wildcard $$(dir $$(subst build/san/chtests/,channels/,$$@))*.c) $(MOCK_SRC) tests/mock/mock_host.h \
		$(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(MOCK_FLAGS) $($(notdir $(@D))_CFLAGS) -o $@ $(filter %.c,$^) $($(notdir $(@D))_LIBS) -ldl -lpthread $(CHECK_LIBS)

build/san/mocktests/%: tests/mock/%.c $(MOCK_SRC) tests/mock/mock_host.h $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(MOCK_FLAGS) $(shell pkg-config --cflags jansson) -o $@ $< $(MOCK_SRC) $(shell pkg-config --libs jansson) -ldl -lpthread $(CHECK_LIBS)

build/rel/bench/%: tests/bench/%.c build/rel/libacdm.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -o $@ $< build/rel/libacdm.a $(LIBS)

# fuzz harnesses: libFuzzer entry points, run here over their corpus by a plain driver
build/san/fuzz/%: tests/fuzz/%.c tests/fuzz/driver.c build/san/libacdm.a $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< tests/fuzz/driver.c build/san/libacdm.a $(LIBS)

test: deps-test
	@$(MAKE) --no-print-directory bin/acdmd bin/acdmctl build/san/acdmd build/san/acdmctl $(PLUGINS) $(TPLUGS) $(UNIT_BINS) $(CHTEST_BINS) $(MOCKT_BINS) $(FUZZ_BINS)
	@$(MAKE) --no-print-directory cppcheck
	@scripts/check-layers.sh
	@tests/run-unit.sh $(UNIT_BINS) $(CHTEST_BINS) $(MOCKT_BINS)
	@tests/run-fuzz-regress.sh $(FUZZ_BINS)
	@tests/run-integration.sh
	@if [ -x tests/run-ui.sh ]; then tests/run-ui.sh; fi

unit: $(UNIT_BINS) $(CHTEST_BINS) $(MOCKT_BINS) $(TPLUGS) $(PLUGINS)
	@tests/run-unit.sh $(UNIT_BINS) $(CHTEST_BINS) $(MOCKT_BINS)

integration: bin/acdmd bin/acdmctl build/san/acdmd build/san/acdmctl $(PLUGINS)
	@tests/run-integration.sh

# a file includes only from its own folder and the layers below it (docs/architecture.md)
layers:
	@scripts/check-layers.sh

cppcheck:
	@cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -D__GNUC__ -Icore -Icore/include -Itests/mock core channels tests/bench tests/mock
	@echo "cppcheck: clean"

bench: deps-bench
	@$(MAKE) --no-print-directory $(BENCH_BINS) bin/acdmd bin/acdmctl $(PLUGINS)
	@tests/run-bench.sh $(BENCH_BINS)

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/bin
install: all install-kit install-bin
# what `install` copies, without `all`'s dependency check (debian/rules calls it)
install-bin: binaries
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PREFIX)/lib/acdm/plugins $(DESTDIR)$(PREFIX)/share/acdm/ui
	install -m 755 bin/acdmd $(DESTDIR)$(SBINDIR)/
	install -m 755 bin/acdmctl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(PLUGINS) $(DESTDIR)$(PREFIX)/lib/acdm/plugins/
	cp -r core/ui/. $(DESTDIR)$(PREFIX)/share/acdm/ui/

# The plugin kit (docs/plugin-guide.md): the ABI and helper headers, the mock host for plugins'
# unit tests, pkg-config files and the template channel to copy.
ABI_VERSION := $(shell sed -n 's/^\#define ACDM_PLUGIN_ABI_MAJOR \([0-9]*\)/\1/p' core/include/acdm/plugin.h).$(shell sed -n 's/^\#define ACDM_PLUGIN_ABI_MINOR \([0-9]*\)/\1/p' core/include/acdm/plugin.h)
build/rel/mock/mock_host.o: tests/mock/mock_host.c tests/mock/mock_host.h $(wildcard core/include/acdm/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g -fPIC -Icore/include -Itests/mock -c $< -o $@
build/rel/libacdm-mock.a: build/rel/mock/mock_host.o
	rm -f $@; ar rcs $@ $^
install-kit: build/rel/libacdm-mock.a
	install -d $(DESTDIR)$(PREFIX)/include/acdm $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/acdm/plugin-template/tests
	install -m 644 core/include/acdm/plugin.h core/include/acdm/plugin_util.h tests/mock/mock_host.h \
	  $(DESTDIR)$(PREFIX)/include/acdm/
	install -m 644 build/rel/libacdm-mock.a $(DESTDIR)$(PREFIX)/lib/
	for pc in acdm-plugin acdm-plugin-mock; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@ABI@|$(ABI_VERSION)|g' scripts/pkgconfig/$$pc.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc; done
	install -m 644 channels/template/template.c channels/template/Makefile channels/template/README.md \
	  $(DESTDIR)$(PREFIX)/share/acdm/plugin-template/
	install -m 644 channels/template/tests/test_template.c $(DESTDIR)$(PREFIX)/share/acdm/plugin-template/tests/

# The Debian package (debian/, docs/operations.md "Debian package and service"). DEFAULT_CONFIG:
# the config acdmd and acdmctl read without -c (the package: /etc/acdm/acdm.json).
binaries: bin/acdmd bin/acdmctl $(PLUGINS) build/rel/libacdm-mock.a
ifdef DEFAULT_CONFIG
build/rel/core/cmd/%.o: CFLAGS_BASE += -DACDM_DEFAULT_CONFIG='"$(DEFAULT_CONFIG)"'
endif
deb:
	@scripts/deps.sh package
	@scripts/build-deb.sh
# installs the .deb into a clean Debian 12 root (debootstrap, cached in build/pkgtest/), runs,
# reloads, upgrades and purges it there; a few minutes, so not part of `make test`
package-test:
	@scripts/deps.sh package
	@python3 tests/package/package_test.py

clean:
	rm -rf build bin plugins/*.so

# build/deb and build/pkgtest hold other trees (a package's build, a Debian root)
-include $(shell find build \( -path build/deb -o -path build/pkgtest \) -prune -o -name '*.d' -type f -print 2>/dev/null)
