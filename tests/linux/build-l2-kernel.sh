#!/bin/bash
# build-l2-kernel.sh OUTDIR - the Linux L2 kernel (tests/runner/linux_kvm_l2.py): linux-source-6.1
# (Debian's /usr/src/linux-source-6.1.tar.xz) configured with `make allnoconfig KCONFIG_ALLCONFIG=`
# tests/linux/l2.config, an LZ4 bzImage. Outputs:
#   OUTDIR/l2/src/          the unpacked source tree (kept: a changed config rebuilds incrementally)
#   OUTDIR/l2/bzImage       the kernel
#   OUTDIR/l2/bzImage.key   what it was built from (config, source tarball, this script): when it
#                           still matches, nothing is done
# Build time: about 550 s of CPU (user), i.e. about 5 minutes on 2 idle cores (make -j2).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $prog OUTDIR"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1/l2"
out=$(cd "$1/l2" && pwd)
tarball=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
[ -r "$tarball" ] || die "$tarball not found (apt-get install linux-source-6.1)"
for t in make gcc flex bison bc lz4; do
    command -v $t >/dev/null || die "$t not found (tools/install-deps.sh installs the kernel build tools)"
done

key=$( { stat -c "%n %s %Y" "$tarball"; cat "$here/l2.config" "$0"; } | sha256sum | cut -d" " -f1)
if [ -s "$out/bzImage" ] && [ "$(cat "$out/bzImage.key" 2>/dev/null)" = "$key" ]; then
    echo "$out/bzImage"
    exit 0
fi

# The source tree, unpacked once per tarball.
tkey=$(stat -c '%n %s %Y' "$tarball")
if [ "$(cat "$out/src.key" 2>/dev/null)" != "$tkey" ]; then
    rm -rf "$out/src" "$out/src.tmp"
    mkdir -p "$out/src.tmp"
    echo "$prog: unpacking $tarball" >&2
    tar -xJf "$tarball" -C "$out/src.tmp" --strip-components=1
    mv "$out/src.tmp" "$out/src"
    echo "$tkey" >"$out/src.key"
fi

# Fixed build identity, so the same inputs give the same kernel.
export KBUILD_BUILD_TIMESTAMP=@0 KBUILD_BUILD_USER=xmhf KBUILD_BUILD_HOST=tests KBUILD_BUILD_VERSION=1
echo "$prog: building the L2 kernel (make -j$(nproc) bzImage)" >&2
start=$(date +%s)
make -C "$out/src" -s allnoconfig KCONFIG_ALLCONFIG="$here/l2.config" >&2
# What l2.config asks for must be what Kconfig kept (a symbol whose dependency is off is dropped silently).
while read -r line; do
    case $line in
        CONFIG_*=*) grep -qx "$line" "$out/src/.config" || die "Kconfig dropped $line (a dependency missing from l2.config?)" ;;
    esac
done <"$here/l2.config"
make -C "$out/src" -s -j"$(nproc)" bzImage >&2
cp "$out/src/arch/x86/boot/bzImage" "$out/bzImage.tmp"
mv -f "$out/bzImage.tmp" "$out/bzImage"
echo "$key" >"$out/bzImage.key"
echo "$prog: built in $(( $(date +%s) - start )) s" >&2
echo "$out/bzImage"
