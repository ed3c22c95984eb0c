#!/usr/bin/env bash
# tests/install/test_install.sh BUILD SRC TMP CONFIG LIBDIR VERSION CC CXX CMAKE [SANITIZE]
# libvtstore used from outside the source tree: `cmake --install BUILD --prefix TMP/prefix`, then,
# with nothing but that prefix (no -I into SRC; PKG_CONFIG_PATH at the installed vtstore.pc):
#   (a) examples/store_gemv.c built with `pkg-config --cflags --libs vtstore` against
#       libvtstore.so, and run (it writes, streams and multiplies a q4_0 tensor and checks y);
#   (b) the same linked with `pkg-config --static --libs vtstore` against libvtstore.a (forced
#       with -l:libvtstore.a, since -lvtstore picks the .so beside it), and run;
#   (c) each public header compiled alone as C11 and as C++17, and tests/install/cxx_api.cpp
#       (g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror) linked against the shared library and run;
#   (d) examples/ as a CMake project, find_package(vtstore): vtstore::vtstore and
#       vtstore::vtstore_static, both run.
# SANITIZE (the build's VT_SANITIZE): the installed library is instrumented, so the programs are
# built with the same -fsanitize flags (an uninstrumented program cannot load an ASan library).
# Exit 0 pass, 1 fail (naming the step), 77 skip (pkg-config or the C++ compiler missing).
set -u
if [ $# -lt 9 ]; then
    echo "usage: $0 BUILD SRC TMP CONFIG LIBDIR VERSION CC CXX CMAKE [SANITIZE]" >&2
    exit 1
fi
build=$1 src=$2 tmp=$3 config=$4 libdir=$5 version=$6 cc=$7 cxx=$8 cmake=$9 sanitize=${10:-}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
skip() {
    echo "SKIP: $* (scripts/setup.sh installs it)"
    exit 77
}
command -v pkg-config >/dev/null || skip "pkg-config not found"
command -v "$cxx" >/dev/null || skip "no C++ compiler $cxx"
for t in readelf ldd; do command -v $t >/dev/null || fail "$t not found"; done

# step WHAT CMD...: run CMD, showing the command; its output is shown when it fails
step() {
    local what=$1
    shift
    echo "+ $*"
    "$@" >"$tmp/step.log" 2>&1 || { cat "$tmp/step.log" >&2; fail "$what"; }
}
# run_example WHAT EXE: run a built program on a fresh store and show what it printed
run_example() {
    rm -rf "$tmp/$1.vts"
    echo "+ $2 $tmp/$1.vts"
    "$2" "$tmp/$1.vts" || fail "$1: the program failed (exit $?)"
}
# needs_libvtstore EXE yes|no
needs_libvtstore() {
    local got=no
    readelf -d "$1" | grep -q 'NEEDED.*\[libvtstore\.so\.0\]' && got=yes
    [ $got = "$2" ] || fail "${1##*/}: NEEDED libvtstore.so.0 is '$got', expected '$2'"
}

rm -rf "$tmp"
mkdir -p "$tmp"
prefix=$tmp/prefix
unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH # headers from the prefix only (the ldd check below
# shows which libvtstore.so.0 is loaded; LD_LIBRARY_PATH stays, CUDA runtimes may need it)
san=()
[ -n "$sanitize" ] && san=(-fsanitize="$sanitize" -fno-omit-frame-pointer -fno-sanitize-recover=all)

# ---- install ----
step "cmake --install" "$cmake" --install "$build" --prefix "$prefix" --config "$config"
so=$prefix/$libdir/libvtstore.so
for f in include/vtstore/vtstore.h include/vtstore/blocks.h "$libdir/libvtstore.so.$version" \
    "$libdir/libvtstore.so.0" "$libdir/libvtstore.so" "$libdir/libvtstore.a" bin/vtstore \
    "$libdir/pkgconfig/vtstore.pc" "$libdir/cmake/vtstore/vtstoreConfig.cmake" \
    "$libdir/cmake/vtstore/vtstoreConfigVersion.cmake"; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ "$(readlink "$so")" = libvtstore.so.0 ] || fail "libvtstore.so does not link to libvtstore.so.0"
readelf -d "$so" | grep -q 'SONAME.*\[libvtstore\.so\.0\]' || fail "SONAME of $so is not libvtstore.so.0"
v=$("$prefix/bin/vtstore" --version) || fail "the installed vtstore CLI failed: $v"
[ "$v" = "vtstore $version" ] || fail "the installed vtstore CLI says '$v', not 'vtstore $version'"

# ---- pkg-config ----
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
[ "$(pkg-config --modversion vtstore)" = "$version" ] || fail "pkg-config --modversion: not $version"
cflags=$(pkg-config --cflags vtstore) || fail "pkg-config --cflags vtstore"
libs=$(pkg-config --libs vtstore) || fail "pkg-config --libs vtstore"
slibs=$(pkg-config --static --libs vtstore) || fail "pkg-config --static --libs vtstore"
pc_libdir=$(pkg-config --variable=libdir vtstore)
echo "pkg-config: --cflags '$cflags' --libs '$libs' --static --libs '$slibs'"
[ "$(cd "$pc_libdir" && pwd -P)" = "$(cd "$prefix/$libdir" && pwd -P)" ] ||
    fail "vtstore.pc's libdir $pc_libdir is not $prefix/$libdir"
rest="$cflags $libs $slibs"
rest=${rest//$prefix/} # the prefix lies in the build directory
case "$rest" in *"$src/include"* | *"$build"*) fail "pkg-config names the source or build tree" ;; esac
[ "${slibs/-lvtstore/}" != "$slibs" ] || fail "no -lvtstore in: $slibs"

# ---- (a) shared ----
cwarn=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
step "(a) compile and link store_gemv.c against libvtstore.so" \
    "$cc" "${cwarn[@]}" "${san[@]}" $cflags "$src/examples/store_gemv.c" \
    -o "$tmp/store_gemv_shared" $libs -Wl,-rpath,"$pc_libdir"
needs_libvtstore "$tmp/store_gemv_shared" yes
ldd "$tmp/store_gemv_shared" | grep -F "libvtstore.so.0 => $pc_libdir/" >/dev/null ||
    fail "store_gemv_shared does not load libvtstore.so.0 from $pc_libdir"
run_example store_gemv_shared "$tmp/store_gemv_shared"

# ---- (b) static ----
step "(b) compile and link store_gemv.c against libvtstore.a" \
    "$cc" "${cwarn[@]}" "${san[@]}" $(pkg-config --static --cflags vtstore) \
    "$src/examples/store_gemv.c" -o "$tmp/store_gemv_static" ${slibs/-lvtstore/-l:libvtstore.a}
needs_libvtstore "$tmp/store_gemv_static" no
run_example store_gemv_static "$tmp/store_gemv_static"

# ---- (c) C++ ----
echo "+ each of $prefix/include/vtstore/*.h alone, as C11 and as C++17 (-Wpedantic -Werror)"
for h in "$prefix"/include/vtstore/*.h; do
    echo "#include <vtstore/${h##*/}>" >"$tmp/one.c"
    "$cc" "${cwarn[@]}" $cflags -fsyntax-only "$tmp/one.c" ||
        fail "(c) ${h##*/} alone does not compile as C11"
    "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror $cflags -fsyntax-only -x c++ "$tmp/one.c" ||
        fail "(c) ${h##*/} alone does not compile as C++17"
done
step "(c) compile and link cxx_api.cpp (C++17)" \
    "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror "${san[@]}" $cflags \
    "$src/tests/install/cxx_api.cpp" -o "$tmp/cxx_api" $libs -Wl,-rpath,"$pc_libdir"
echo "+ $tmp/cxx_api"
"$tmp/cxx_api" || fail "(c) cxx_api failed (exit $?)"

# ---- (d) find_package ----
cm=(-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
[ -n "$sanitize" ] && cm+=(-DCMAKE_C_FLAGS="${san[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san[*]}")
step "(d) configure examples/ with find_package(vtstore)" \
    "$cmake" -S "$src/examples" -B "$tmp/example-build" "${cm[@]}"
found=$(sed -n 's/^vtstore_DIR:PATH=//p' "$tmp/example-build/CMakeCache.txt")
[ "$(cd "$found" && pwd -P)" = "$(cd "$prefix/$libdir/cmake/vtstore" && pwd -P)" ] ||
    fail "(d) find_package(vtstore) found $found, not the installed package"
step "(d) build examples/" "$cmake" --build "$tmp/example-build"
needs_libvtstore "$tmp/example-build/store_gemv" yes
needs_libvtstore "$tmp/example-build/store_gemv_static" no
run_example cmake_shared "$tmp/example-build/store_gemv"
run_example cmake_static "$tmp/example-build/store_gemv_static"

echo "test_install: ok"
