#!/usr/bin/env bash
# XMHF-style build front end: ./build.sh amd64 [uefi] [O0|O2|O3] [fast] [--mem SIZE] [--event-logger] [--app NAME] [-n]
# Translates XMHF's option names into make variables (see the Makefile) and runs make.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
	cat <<'USAGE'
usage: ./build.sh amd64 [uefi] [options]
  amd64            the only subarch built (64-bit runtime; init is always 32-bit)
  uefi             build only init-x86-amd64.efi, the EFI loader GRUB EFI chain-loads (it carries
                   the runtime); without it the BIOS files and the EFI loader are all built
  O0 | O2 | O3     optimisation level (default O2); "debug" = O0
  fast             skip init's SHA-1 of the runtime module (XMHF: no boot-loader hash)
  --mem SIZE       upper bound of machine memory this build accepts, e.g. 0x230000000;
                   the hypervisor still reads the real memory size at boot and sizes itself from it
  --event-logger   count VM exits per CPU by reason (has effect once the VMX core runs a guest)
  --app NAME       link the hypapp in hypapps/NAME/
  -n               print the make command instead of running it
  -j N             parallel jobs (default: number of CPUs)
  -h, --help       this text
USAGE
}

subarch="" target="" opt="O2" fast="" mem="" logger="" app="" dry="" jobs="$(nproc 2>/dev/null || echo 2)"
while [ $# -gt 0 ]; do
	case "$1" in
	amd64) subarch=amd64 ;;
	i386) echo "build.sh: i386 is not supported: only amd64 is built (init is 32-bit, the runtime 64-bit)" >&2; exit 2 ;;
	uefi) target=uefi ;;
	O0 | debug) opt=O0 ;;
	O2) opt=O2 ;;
	O3) opt=O3 ;;
	fast) fast=1 ;;
	--mem)
		[ $# -ge 2 ] || { echo "build.sh: --mem needs a size" >&2; usage >&2; exit 2; }
		mem="$2"; shift
		if ! [[ "$mem" =~ ^(0x[0-9a-fA-F]+|[0-9]+)$ ]] || [ $((mem)) -le 0 ]; then
			echo "build.sh: --mem: '$mem' is not a size in bytes (decimal or 0x hex)" >&2; exit 2
		fi ;;
	--event-logger) logger=1 ;;
	--app)
		[ $# -ge 2 ] || { echo "build.sh: --app needs a name" >&2; usage >&2; exit 2; }
		app="$2"; shift
		[ -d "hypapps/$app" ] || { echo "build.sh: no hypapp '$app' (no directory hypapps/$app)" >&2; exit 2; } ;;
	-n) dry=1 ;;
	-j) [ $# -ge 2 ] || { usage >&2; exit 2; }; jobs="$2"; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
if [ -z "$subarch" ]; then
	echo "build.sh: name the subarch: amd64" >&2
	usage >&2
	exit 2
fi

cmd=(make -j"$jobs" OPT="$opt" FAST="$fast" MEM="$mem" EVENT_LOGGER="$logger" APP="$app" $target)
if [ -n "$dry" ]; then
	printf '%q ' "${cmd[@]}"
	echo
	exit 0
fi
exec "${cmd[@]}"
