# crawler_ha: the extension (extension/, PGXS) and the C++ programs (one
# CMake project at the root: common/, worker/ for crawler-worker, agent/ for
# the node program crawler-ha), built and tested together.
#
#   make            build the extension and both programs
#   make install    install the extension, crawler-worker, crawler-ha and
#                   their systemd units (as root)
#   make programs   build crawler-worker and crawler-ha only (build/)
#   make check      install missing Debian packages, build, install, run every test suite
#   make demo       two local nodes, a generated site, a crawl, a failover in the middle
#   make bench      the benchmarks in bench/ (not part of check)
#   make worker-sanitize
#                   build-sanitize: clang++, AddressSanitizer and
#                   UndefinedBehaviorSanitizer on crawler-tests and
#                   crawler-worker, and the libFuzzer harnesses of worker/fuzz/
#   make fuzz       build build-sanitize, then fuzz each harness for
#                   FUZZ_SECONDS (default 600, i.e. 10 minutes each) after
#                   replaying its regressions and seeds; FUZZ_TARGETS= picks
#                   harnesses (default all: fuzz_extract_html fuzz_url
#                   fuzz_robots fuzz_sitemap fuzz_image_info fuzz_image_file). Corpora grow
#                   in build-sanitize/fuzz-work/corpus/; a crash, hang,
#                   leak or broken property fails with its reproducer in
#                   build-sanitize/fuzz-work/crashes/ and the command
#                   that replays it. make check runs the same, 6 s each.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
CMAKE     ?= cmake
BUILD_DIR ?= build
SANITIZE_DIR ?= build-sanitize
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
export PG_CONFIG

.PHONY: all extension programs worker agent worker-sanitize fuzz install install-extension install-programs install-worker check installcheck demo bench clean

all: extension programs

extension:
	$(MAKE) -C extension

# Both programs come from the one CMake project: building it builds both.
programs: $(BUILD_DIR)/Makefile
	$(CMAKE) --build $(BUILD_DIR) -j 2

# Older names of the same build, kept for scripts and habits.
worker agent: programs

$(BUILD_DIR)/Makefile: CMakeLists.txt common/CMakeLists.txt worker/CMakeLists.txt agent/CMakeLists.txt \
		$(wildcard agent/*.cmake)
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

# A build directory of its own: the normal build (gcc, RelWithDebInfo) keeps
# its flags and speed.
worker-sanitize: $(SANITIZE_DIR)/Makefile
	$(CMAKE) --build $(SANITIZE_DIR) -j 2

$(SANITIZE_DIR)/Makefile: CMakeLists.txt common/CMakeLists.txt worker/CMakeLists.txt worker/fuzz/CMakeLists.txt \
		agent/CMakeLists.txt $(wildcard agent/*.cmake)
	$(CMAKE) -S . -B $(SANITIZE_DIR) -DCMAKE_CXX_COMPILER=clang++ \
		-DCRAWLER_SANITIZE=ON -DCRAWLER_FUZZ=ON

fuzz: worker-sanitize
	worker/fuzz/run --seconds $(FUZZ_SECONDS) --build $(SANITIZE_DIR) $(FUZZ_TARGETS)

install: install-extension install-programs

install-extension: extension
	$(MAKE) -C extension install

# crawler-worker and crawler-ha with their systemd units (CMake's install
# rules in worker/ and agent/).
install-programs: programs
	$(CMAKE) --install $(BUILD_DIR)

install-worker: install-programs

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
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) tmp_check
