#!/usr/bin/env bash
# tests/install/check_symbols.sh LIB INCLUDE_DIR MAP CC — libvtstore.so exports exactly the public
# API: every defined dynamic symbol of LIB (nm -D --defined-only) is a function or object declared
# in INCLUDE_DIR/vtstore/*.h, every one declared there is exported, and the version script MAP
# (cmake/vtstore.map, which decides what is exported) lists exactly those. The declared functions
# come from the compiler (gcc -aux-info: prototypes with the file they are in; static inline
# helpers, defined in the headers, are not symbols); declared objects are the headers' one-line
# `extern` declarations. Exit 0 pass, 1 fail (the differences listed), 77 skip.
set -u
export LC_ALL=C
lib=$1 inc=$2 map=$3 cc=$4

command -v nm >/dev/null || { echo "SKIP: nm not found (binutils)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# -aux-info is gcc's: with another compiler (clang builds), use gcc when there is one
if ! "$cc" -fsyntax-only -aux-info "$tmp/probe" -x c /dev/null 2>/dev/null; then
    command -v gcc >/dev/null || { echo "SKIP: $cc has no -aux-info and gcc is missing"; exit 77; }
    cc=gcc
fi
for h in "$inc"/vtstore/*.h; do echo "#include \"vtstore/${h##*/}\""; done >"$tmp/all.c"
if ! "$cc" -std=gnu11 -I"$inc" -fsyntax-only -aux-info "$tmp/aux.txt" "$tmp/all.c"; then
    echo "FAIL: $cc -aux-info could not list the public headers' prototypes" >&2
    exit 1
fi
# /* INC/vtstore/core.h:47:NC */ extern const char *vt_strerror (int);   (NC: declared, prototyped)
grep -F "/* $inc/vtstore/" "$tmp/aux.txt" | grep -E '^/\* [^*]*\.h:[0-9]+:NC \*/' |
    sed -E 's@^/\*[^*]*\*/ @@; s@^([^(]*[^A-Za-z0-9_])?([A-Za-z_][A-Za-z0-9_]*) \(.*@\2@' >"$tmp/decl"
sed -nE 's/^extern [^(;]*[^A-Za-z0-9_(;]([A-Za-z_][A-Za-z0-9_]*) *(\[[^]]*\])? *;.*/\1/p' \
    "$inc"/vtstore/*.h >>"$tmp/decl"
sort -u "$tmp/decl" -o "$tmp/decl"
if [ "$(wc -l <"$tmp/decl")" -lt 50 ]; then
    echo "FAIL: found only $(wc -l <"$tmp/decl") declarations in $inc/vtstore/*.h" >&2
    exit 1
fi

# 0000000000012340 T vt_strerror@@VTSTORE_0   (the version node itself is an A symbol)
nm -D --defined-only "$lib" | awk 'NF == 3 && $2 != "A" { print $3 }' | sed 's/@.*//' |
    sort -u >"$tmp/exported"
sed -nE 's/^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*);.*/\1/p' "$map" | sort -u >"$tmp/map"

status=0
report() { # report TITLE FILE: list FILE's lines under TITLE when there are any
    if [ -s "$2" ]; then
        echo "FAIL: $1:" >&2
        sed 's/^/    /' "$2" >&2
        status=1
    fi
}
comm -23 "$tmp/exported" "$tmp/decl" >"$tmp/x"
report "exported by ${lib##*/} but declared in no public header" "$tmp/x"
comm -13 "$tmp/exported" "$tmp/decl" | comm -23 - "$tmp/map" >"$tmp/x"
report "declared in a public header but not in ${map##*/} (add them there)" "$tmp/x"
comm -13 "$tmp/exported" "$tmp/decl" | comm -12 - "$tmp/map" >"$tmp/x"
report "declared in a public header and listed in ${map##*/}, but not defined in the library" "$tmp/x"
comm -23 "$tmp/map" "$tmp/decl" >"$tmp/x"
report "listed in ${map##*/} but declared in no public header" "$tmp/x"
if [ $status = 0 ]; then
    echo "test_abi_symbols: ${lib##*/} exports the $(wc -l <"$tmp/decl") functions and objects" \
        "the public headers declare, and nothing else: ok"
fi
exit $status
