#!/usr/bin/env bash
# scripts/device_deps.sh — the build dependencies for a machine where apt cannot reach a registry
# (the lent GPU machines): the Debian 12 packages unpacked into a folder that travels with the tree.
#
#   scripts/device_deps.sh fetch [DIR]   here (with Debian's registry): download and unpack into
#                                        DIR (default .devdeps; add /.devdeps/ to .git/info/exclude)
#   . scripts/device_deps.sh env [DIR]   there: point pkg-config, CMake and the loader at DIR
#
# Then `scripts/gpu_check.sh` builds as usual. Nothing is installed into / on either machine.
set -u
_vt_cmd=${1:-env}
_vt_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/${2:-.devdeps}
case "$_vt_cmd" in
fetch)
    set -e
    mkdir -p "$_vt_dir/debs" && cd "$_vt_dir/debs"
    apt-get download liburing-dev liburing2 liblmdb-dev liblmdb0 libzstd-dev libzstd1 \
        libxxhash-dev libxxhash0 pkgconf pkgconf-bin libpkgconf3 pkg-config
    for f in *.deb; do dpkg -x "$f" "$_vt_dir/root"; done
    cd "$_vt_dir" && rm -rf debs
    echo "device_deps: unpacked into $_vt_dir/root"
    ;;
env)
    _vt_root=$_vt_dir/root
    _vt_lib=$_vt_root/usr/lib/x86_64-linux-gnu
    if [ ! -d "$_vt_lib/pkgconfig" ]; then
        echo "device_deps: $_vt_lib/pkgconfig missing (run scripts/device_deps.sh fetch here)" >&2
        return 1 2>/dev/null || exit 1
    fi
    # the .pc files name /usr: rewrite them to the unpacked tree (idempotent)
    sed -i "s|=/usr|=$_vt_root/usr|" "$_vt_lib"/pkgconfig/*.pc
    export PATH="$_vt_root/usr/bin:$PATH"
    export PKG_CONFIG_PATH="$_vt_lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export CMAKE_PREFIX_PATH="$_vt_root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export LD_LIBRARY_PATH="$_vt_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LIBRARY_PATH="$_vt_lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export CPATH="$_vt_root/usr/include${CPATH:+:$CPATH}"
    ;;
*)
    echo "usage: scripts/device_deps.sh fetch|env [DIR]" >&2
    ;;
esac
