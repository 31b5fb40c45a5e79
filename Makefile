# darkroom: build, run and test.  Everything made here lives under var/.

SHELL      := /bin/bash
TOP        := $(CURDIR)
VAR        := $(TOP)/var
PORT       ?= 8080
NGINX      ?= /usr/sbin/nginx
NGX_SRC    ?= /usr/share/nginx/src
BUILD      := $(VAR)/build
MODULE     := $(VAR)/modules/ngx_http_darkroom_module.so
CFLAGS_EXTRA ?= -g -O2
PROVE_JOBS ?= 2
TESTS      ?= t/
FUZZ_TIME  ?= 30
FUZZ_JOBS  ?= 1
FUZZ       ?=

# make test SANITIZE=address: the module built with ASan and UBSan in a
# build of its own (var/asan/), run by the stock nginx through a wrapper
# that preloads the runtimes; any sanitizer report fails the test.
SANITIZE   ?=
ifeq ($(SANITIZE),address)
BUILD      := $(VAR)/asan/build
MODULE     := $(VAR)/asan/modules/ngx_http_darkroom_module.so
SANITIZE_CFLAGS ?= -fsanitize=address,undefined,float-cast-overflow \
                   -fno-sanitize-recover=all
CFLAGS_EXTRA := -g -O1 -fno-omit-frame-pointer $(SANITIZE_CFLAGS)
NGINX      := $(TOP)/tools/darkroom-nginx-sanitize
else ifneq ($(SANITIZE),)
$(error SANITIZE=$(SANITIZE): only SANITIZE=address is supported)
endif

DEB_PACKAGES := nginx nginx-dev libcurl4-openssl-dev libcjson-dev libpq-dev \
                postgresql wrk hyperfine curl unzip libarchive-tools \
                python3 imagemagick gcc pkg-config libasan8 libubsan1 \
                clang libclang-rt-14-dev \
                chromium chromium-driver python3-selenium \
                python3-icalendar prometheus \
                debhelper dpkg-dev lintian

SOURCES := config $(wildcard src/*/*.c src/*/*.h)

export DARKROOM_NGINX = $(NGINX)
export DARKROOM_MODULE = $(MODULE)

.PHONY: all deps build build-upstream deb db run test fuzz bench stop clean FORCE

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	        grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	        $$missing >/dev/null; \
	fi

build: deps $(MODULE)

# Debian's nginx-dev ships headers, auto/ and configure: configure a private
# copy with the distribution's own flags so the module is binary compatible.
# The module is installed beside, under var/modules, and replaced by rename,
# so a running nginx or test never sees a missing or half-written file.
$(BUILD)/objs/Makefile: config $(BUILD).cflags
	@rm -rf $(BUILD) && mkdir -p $(dir $(BUILD)) && cp -a $(NGX_SRC) $(BUILD)
	@cd $(BUILD) && source ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(CFLAGS_EXTRA) -fPIC -Wall -Wextra -Werror -Wno-unused-parameter" \
	        --add-dynamic-module=$(TOP) >$(BUILD)/configure.log 2>&1 \
	    || { tail -n 30 $(BUILD)/configure.log; exit 1; }

# other compiler flags than the last configure's configure again
$(BUILD).cflags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(CFLAGS_EXTRA)' | cmp -s - $@ || echo '$(CFLAGS_EXTRA)' >$@

FORCE:

$(MODULE): $(BUILD)/objs/Makefile $(SOURCES)
	@$(MAKE) -s -C $(BUILD) -f objs/Makefile modules >$(BUILD)/make.log 2>&1 \
	    || { grep -E 'error|warning' -A3 $(BUILD)/make.log | head -n 60; exit 1; }
	@mkdir -p $(dir $(MODULE))
	@cp $(BUILD)/objs/ngx_http_darkroom_module.so $(MODULE).tmp
	@mv $(MODULE).tmp $(MODULE)
	@echo "built $(MODULE)"

# make build-upstream NGX_UPSTREAM=<dir>: the module built against upstream
# nginx sources (a release tarball or a git checkout, 1.22 or later) in a
# copy under var/upstream, with the flags above: checks that config works
# without Debian's nginx-dev.  Needs the libraries' headers; installs nothing.
NGX_UPSTREAM ?=
UPSTREAM     := $(VAR)/upstream

build-upstream:
	@[ -n "$(NGX_UPSTREAM)" ] && [ -f "$(NGX_UPSTREAM)/src/core/nginx.h" ] \
	    || { echo "usage: make build-upstream NGX_UPSTREAM=<nginx sources>" >&2; \
	         exit 2; }
	@rm -rf $(UPSTREAM) && mkdir -p $(UPSTREAM) \
	    && cp -a $(NGX_UPSTREAM)/. $(UPSTREAM)/src \
	    && rm -rf $(UPSTREAM)/src/objs $(UPSTREAM)/src/Makefile
	@cd $(UPSTREAM)/src && c=./configure && { [ -x $$c ] || c=auto/configure; } \
	    && $$c --with-threads --with-compat --with-debug \
	        --with-cc-opt="$(CFLAGS_EXTRA) -fPIC -Wall -Wextra -Werror -Wno-unused-parameter" \
	        --add-dynamic-module=$(TOP) >$(UPSTREAM)/configure.log 2>&1 \
	    || { tail -n 30 $(UPSTREAM)/configure.log; exit 1; }
	@$(MAKE) -s -C $(UPSTREAM)/src -f objs/Makefile modules \
	        >$(UPSTREAM)/make.log 2>&1 \
	    || { grep -E 'error|warning' -A3 $(UPSTREAM)/make.log | head -n 60; exit 1; }
	@echo "built $(UPSTREAM)/src/objs/ngx_http_darkroom_module.so against" \
	    "nginx $$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' \
	              $(UPSTREAM)/src/src/core/nginx.h)"

# make deb: the Debian package libnginx-mod-http-darkroom (debian/), built
# the way Debian builds its nginx modules, by dpkg-buildpackage in a copy
# of the tree under DEB_OUT, then checked by lintian (no error, no warning
# without an override that gives its reason); this make's flags do not
# reach debian/rules.  Its version is the module's
# (NGX_HTTP_DARKROOM_VERSION) and, in a git checkout, the commit's count
# and hash: 0.1.0+git412.a4cb609, newer for every commit.
DEB_OUT ?= $(VAR)/deb
DEB_DIR := $(abspath $(DEB_OUT))
DEB_SRC := $(DEB_DIR)/darkroom
DEB_COMMIT = $(shell git rev-parse -q --short HEAD 2>/dev/null)
DEB_VERSION = $(shell sed -n \
    's/^\#define NGX_HTTP_DARKROOM_VERSION *"\(.*\)"/\1/p' \
    src/core/ngx_http_darkroom.h)$(if $(DEB_COMMIT),+git$(shell \
    git rev-list --count HEAD).$(DEB_COMMIT))

deb: deps
	@rm -rf $(DEB_SRC) $(DEB_DIR)/*darkroom*_* && mkdir -p $(DEB_SRC)
	@tar -C $(TOP) --exclude=./var --exclude=./.git -cf - . \
	    | tar -C $(DEB_SRC) -xf -
	@cd $(DEB_SRC) \
	&& if [ "$(DEB_VERSION)" != "$$(dpkg-parsechangelog -S Version)" ]; then \
	    { printf '%s (%s) unstable; urgency=medium\n\n  * %s\n\n -- %s  %s\n\n' \
	          darkroom "$(DEB_VERSION)" "Snapshot of commit $(DEB_COMMIT)." \
	          "$$(dpkg-parsechangelog -S Maintainer)" "$$(date -R)"; \
	      cat debian/changelog; } >debian/changelog.new \
	    && mv debian/changelog.new debian/changelog; fi
	@cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -b --no-sign -Jauto \
	        >$(DEB_DIR)/build.log 2>&1 \
	    || { grep -E 'error|warning|dh_' $(DEB_DIR)/build.log | tail -n 40; \
	         exit 1; }
	@lintian --fail-on error,warning $(DEB_DIR)/libnginx-mod-http-darkroom_*.deb
	@echo "built $$(ls $(DEB_DIR)/libnginx-mod-http-darkroom_*.deb)"

# The suite's Postgres: a throwaway cluster under var/pg, migrated
# (sql/NNN_*.sql once, sql/functions/*.sql on every run).
db: deps
	@tools/darkroom-pg start $(VAR)/pg darkroom
	@tools/darkroom-migrate "$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom)"

run: build db
	@tools/darkroom-run start $(VAR) $(PORT)

stop:
	@tools/darkroom-run stop $(VAR) || true
	@tools/darkroom-pg stop $(VAR)/pg

# Each test audits the money of its own database before dropping it
# (t/lib/Darkroom/Test.pm writes $(MONEY_AUDIT)/*.tsv); the money
# invariant test reads them in a second prove, after every other test of
# the run, whichever TESTS were run.  It skips itself in the first.
MONEY_AUDIT := $(VAR)/money-audit
MONEY_TEST  := t/999_money_invariant.t

test: build
	@tools/darkroom-pg start $(VAR)/pg darkroom_test
	@tools/darkroom-migrate "$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom_test)" >/dev/null
	@rm -rf $(MONEY_AUDIT) && mkdir -p $(MONEY_AUDIT)
	@export DARKROOM_TEST_DB="$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom_test)" \
	    DARKROOM_PG_DIR=$(VAR)/pg DARKROOM_MONEY_AUDIT=$(MONEY_AUDIT); \
	    prove -j$(PROVE_JOBS) -r $(TESTS); rc=$$?; \
	    DARKROOM_MONEY_FINAL=1 prove $(MONEY_TEST) || rc=1; \
	    exit $$rc

# libFuzzer targets t/fuzz/*.c, FUZZ_TIME seconds each (see t/fuzz/run)
fuzz: deps
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_JOBS=$(FUZZ_JOBS) t/fuzz/run $(VAR)/fuzz $(FUZZ)

# make bench: every bench/<name> (or BENCH="soak media"), then a summary of
# their ratios (bench/lib/run-all); their own variables (SOAK_REQUESTS=...,
# ROUNDS=...) pass through the environment
BENCH ?=

bench: build db
	@bench/lib/run-all $(BENCH)

clean: stop
	@[ ! -L $(VAR)/pg ] || rm -rf "$$(readlink -f $(VAR)/pg)"
	rm -rf $(VAR)
