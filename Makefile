# crawler_ha: the extension (extension/, PGXS) and the crawler worker
# (worker/, CMake), built and tested together.
#
#   make            build both
#   make install    install both (as root)
#   make check      install missing Debian packages, build, install, run every test suite
#   make demo       two local nodes, a generated site, a crawl, a failover in the middle
#   make bench      the benchmarks in bench/ (not part of check)

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
CMAKE     ?= cmake
BUILD_DIR ?= worker/build
export PG_CONFIG

.PHONY: all extension worker install install-extension install-worker check installcheck demo bench clean

all: extension worker

extension:
	$(MAKE) -C extension

worker: $(BUILD_DIR)/Makefile
	$(CMAKE) --build $(BUILD_DIR) -j 2

$(BUILD_DIR)/Makefile: worker/CMakeLists.txt
	$(CMAKE) -S worker -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

install: install-extension install-worker

install-extension: extension
	$(MAKE) -C extension install

install-worker: worker
	$(CMAKE) --install $(BUILD_DIR)

# Everything: dependencies, build, install, then the suites as an
# unprivileged user against servers the harness starts and stops.
check:
	scripts/check

# The same suites against what is already built and installed.
installcheck:
	scripts/check --no-build

demo:
	scripts/demo $(if $(SEED),--seed '$(SEED)')

bench:
	bench/run

clean:
	$(MAKE) -C extension clean
	rm -rf $(BUILD_DIR) tmp_check
