#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and `make run` need (as root, or through sudo);
# linux-source-6.1 and the kernel build tools are for the small kernels of make test-long: the Linux L2
# and the Xen PVH domU (tests/linux/build-l2-kernel.sh).
# Skips apt entirely when everything is already there.
set -euo pipefail

pkgs=(build-essential binutils make gzip python3 bochs bochs-term bochsbios vgabios qemu-system-x86
	grub-pc-bin grub-common xorriso mtools e2fsprogs busybox-static cpio
	grub-efi-amd64-bin ovmf swtpm swtpm-tools tpm2-tools tboot
	linux-source-6.1 flex bison bc lz4 libelf-dev libssl-dev)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
