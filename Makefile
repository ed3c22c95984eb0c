# The two README commands. Each sets up what it needs (scripts/setup.sh is idempotent).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all setup build test demo install asan tsan format format-check clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/CMakeCache.txt: | setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	@sh scripts/setup_llamacpp.sh
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@bash scripts/demo.sh $(BUILD)

# libvtstore.so/.a, the headers, the vtstore CLI, vtstore.pc and the CMake package under PREFIX
# (DESTDIR=... in the environment stages it, as for a package).
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Sanitizer builds (CUDA off: the sanitizers instrument host code only).
asan: setup
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVT_CUDA=OFF -DVT_BUILD_BENCH=OFF -DVT_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -LE gpu --timeout 1800

tsan: setup
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DVT_CUDA=OFF -DVT_BUILD_BENCH=OFF -DVT_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -L tsan --timeout 1800

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cu') && echo "format ok"

clean:
	rm -rf $(BUILD) build-asan build-tsan
