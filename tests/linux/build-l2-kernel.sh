#!/bin/bash
# build-l2-kernel.sh OUTDIR [NAME CONFIG] - the Linux L2 kernel (tests/runner/linux_kvm_l2.py):
# linux-source-6.1 (Debian's /usr/src/linux-source-6.1.tar.xz) configured with `make allnoconfig
# KCONFIG_ALLCONFIG=` tests/linux/l2.config, an LZ4 bzImage; with NAME and CONFIG, the same for another
# small kernel (tests/xen/build.sh: NAME domu-kernel, CONFIG tests/xen/domu.config). Outputs:
#   OUTDIR/NAME/src/        the unpacked source tree (kept: a changed config rebuilds incrementally)
#   OUTDIR/NAME/bzImage     the kernel (NAME: l2 by default)
#   OUTDIR/NAME/bzImage.key what it was built from (config, source tarball, this script): when it
#                           still matches, nothing is done
# Build time: about 550 s of CPU (user), i.e. about 5 minutes on 2 idle cores (make -j2).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || [ $# -eq 3 ] || die "usage: $prog OUTDIR [NAME CONFIG]"
here=$(cd "$(dirname "$0")" && pwd)
name=${2:-l2}
config=${3:-$here/l2.config}
[ -r "$config" ] || die "$config not found"
config=$(cd "$(dirname "$config")" && pwd)/${config##*/}   # make -C runs elsewhere
mkdir -p "$1/$name"
out=$(cd "$1/$name" && pwd)
tarball=${LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
[ -r "$tarball" ] || die "$tarball not found (apt-get install linux-source-6.1)"
for t in make gcc flex bison bc lz4; do
    command -v $t >/dev/null || die "$t not found (tools/install-deps.sh installs the kernel build tools)"
done

key=$( { stat -c "%n %s %Y" "$tarball"; cat "$config" "$0"; } | sha256sum | cut -d" " -f1)
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
echo "$prog: building the $name kernel (make -j$(nproc) bzImage)" >&2
start=$(date +%s)
make -C "$out/src" -s allnoconfig KCONFIG_ALLCONFIG="$config" >&2
# What CONFIG asks for must be what Kconfig kept (a symbol whose dependency is off is dropped silently).
while read -r line; do
    case $line in
        CONFIG_*=*) grep -qx "$line" "$out/src/.config" || die "Kconfig dropped $line (a dependency missing from ${config##*/}?)" ;;
    esac
done <"$config"
make -C "$out/src" -s -j"$(nproc)" bzImage >&2
cp "$out/src/arch/x86/boot/bzImage" "$out/bzImage.tmp"
mv -f "$out/bzImage.tmp" "$out/bzImage"
echo "$key" >"$out/bzImage.key"
echo "$prog: built in $(( $(date +%s) - start )) s" >&2
echo "$out/bzImage"
