# Thin wrapper around Meson.  `make run` and `make test` do all the set-up.
BUILD   ?= build
ASAN    ?= build-asan
FUZZ    ?= build-fuzz
PYTHON  ?= /usr/bin/python3
FUZZ_SECONDS ?= 10

.PHONY: all build run test unit fuzz fuzz-run pytest bench clean deps-build deps-run deps-test

all: build

deps-build:
	@sh scripts/deps.sh build
deps-run:
	@sh scripts/deps.sh run
deps-test:
	@sh scripts/deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: deps-run build
	@sh scripts/dev-instance.sh $(BUILD)

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false

$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

# Everything: warnings-as-errors build with gcc, the sanitizer build and its
# unit tests, the libFuzzer targets built with clang and run briefly, then
# the protocol tests against the sanitizer binaries.
test: deps-test
	@sh scripts/test.sh

fuzz: deps-test $(FUZZ)/build.ninja
	ninja -C $(FUZZ)

bench: deps-build build
	@sh scripts/deps.sh bench
	@sh bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
