#!/bin/sh
# `vtstore run` argument handling without a model: --help (0), usage errors (2), a store that
# cannot be opened (1, message naming it).
set -u
: "${VT_BIN:?VT_BIN must name the vtstore binary}"
fail=0
expect() { # expect CODE ARGS...
    want=$1
    shift
    "$VT_BIN" run "$@" >/dev/null 2>"${TMPDIR:-/tmp}/vt_run_cli.$$"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: vtstore run $* exited $got, expected $want" >&2
        cat "${TMPDIR:-/tmp}/vt_run_cli.$$" >&2
        fail=1
    fi
}
expect 0 --help
expect 2
expect 2 /nowhere
expect 2 /nowhere --prompt hi --tokens 1
expect 2 /nowhere --tokens 1 --kv-format q4_1
expect 2 /nowhere --tokens 1 --device tpu
expect 2 /nowhere --tokens 1 --max-new x
expect 2 /nowhere --tokens 1 --bogus
expect 2 /nowhere --tokens 1 --chat
expect 1 /nowhere/store --tokens 1
if ! grep -q "/nowhere/store" "${TMPDIR:-/tmp}/vt_run_cli.$$"; then
    echo "FAIL: the error does not name the store" >&2
    fail=1
fi
rm -f "${TMPDIR:-/tmp}/vt_run_cli.$$"
[ $fail = 0 ] && echo "ok"
exit $fail
