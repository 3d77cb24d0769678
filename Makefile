# The two set-up commands of the README are `make run` and `make test`.
# Everything else is here for developers and CI.
#
#   make run        build, then run the main job: concur compare (~30 s)
#   make examples   build, then run every program in examples/
#   make test       install missing Debian packages (as root), build, run CTest
#   make test-tsan  the whole suite under ThreadSanitizer
#   make test-asan  the whole suite under AddressSanitizer + UBSan
#   make bench      concur bench (all suites)
#   make clean

BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?= --output-on-failure
WERROR     ?= ON

configure = cmake -S . -B $(1) -DCONCUR_WERROR=$(WERROR) $(2) $(CMAKE_ARGS) >/dev/null

.PHONY: all deps build run examples test test-tsan test-asan bench clean

all: build

deps:
	@sh tools/install-deps.sh

build: deps
	$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/tools/concur compare

examples: build
	@sh tools/run-examples.sh $(BUILD)

test: build
	cd $(BUILD) && ctest -j $(JOBS) $(CTEST_ARGS)

test-tsan: deps
	$(call configure,$(BUILD)-tsan,-DCONCUR_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  ctest -j $(JOBS) -LE install $(CTEST_ARGS)

test-asan: deps
	$(call configure,$(BUILD)-asan,-DCONCUR_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	  ctest -j $(JOBS) -LE install $(CTEST_ARGS)

bench: build
	$(BUILD)/tools/concur bench

clean:
	rm -rf $(BUILD) $(BUILD)-tsan $(BUILD)-asan
