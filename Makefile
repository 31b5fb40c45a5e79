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

DEB_PACKAGES := nginx nginx-dev libcurl4-openssl-dev libcjson-dev libpq-dev \
                postgresql wrk hyperfine curl unzip libarchive-tools \
                python3 imagemagick

SOURCES := config $(wildcard src/*.c src/*.h)

export DARKROOM_NGINX = $(NGINX)
export DARKROOM_MODULE = $(MODULE)

.PHONY: all deps build db run test bench stop clean

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
$(BUILD)/objs/Makefile: config
	@rm -rf $(BUILD) && mkdir -p $(VAR) && cp -a $(NGX_SRC) $(BUILD)
	@cd $(BUILD) && source ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(CFLAGS_EXTRA) -fPIC -Wall -Wextra -Werror -Wno-unused-parameter" \
	        --add-dynamic-module=$(TOP) >$(BUILD)/configure.log 2>&1 \
	    || { tail -n 30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/objs/Makefile $(SOURCES)
	@$(MAKE) -s -C $(BUILD) -f objs/Makefile modules >$(BUILD)/make.log 2>&1 \
	    || { grep -E 'error|warning' -A3 $(BUILD)/make.log | head -n 60; exit 1; }
	@mkdir -p $(dir $(MODULE))
	@cp $(BUILD)/objs/ngx_http_darkroom_module.so $(MODULE).tmp
	@mv $(MODULE).tmp $(MODULE)
	@echo "built $(MODULE)"

# The suite's Postgres: a throwaway cluster under var/pg.
db: deps
	@tools/darkroom-pg start $(VAR)/pg darkroom
	@tools/darkroom-migrate "$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom)"

run: build db
	@tools/darkroom-run start $(VAR) $(PORT)

stop:
	@tools/darkroom-run stop $(VAR) || true
	@tools/darkroom-pg stop $(VAR)/pg

test: build
	@tools/darkroom-pg start $(VAR)/pg darkroom_test
	@tools/darkroom-migrate "$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom_test)" >/dev/null
	@DARKROOM_TEST_DB="$$(tools/darkroom-pg conninfo $(VAR)/pg darkroom_test)" \
	    DARKROOM_PG_DIR=$(VAR)/pg \
	    prove -j$(PROVE_JOBS) -r $(TESTS)

bench: build db
	@for b in bench/*; do [ -x "$$b" ] && [ -f "$$b" ] && "$$b"; done

clean: stop
	@[ ! -L $(VAR)/pg ] || rm -rf "$$(readlink -f $(VAR)/pg)"
	rm -rf $(VAR)
