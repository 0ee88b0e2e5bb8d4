# XMHF amd64: builds init-x86-amd64.bin (32-bit multiboot kernel) and hypervisor-x86-amd64.bin.gz
# (the 64-bit runtime GRUB gunzips) at the top of the tree, with ELF symbol files beside them.
# Options (build.sh sets them; see ./build.sh -h):
#   OPT=O0|O2|O3   optimisation (default O2)
#   FAST=1         skip init's SHA-1 of the runtime (XMHF's "fast")
#   MEM=BYTES      upper bound of machine memory this build accepts (default: none)
#   EVENT_LOGGER=1 per-CPU VM-exit counters
#   APP=NAME       link hypapps/NAME into the runtime
#   V=1            show commands
#   B=DIR OUT=DIR  object and output directories (default build/ and the top of the tree), for
#                  building variants side by side (tests build hypapp and event-logger variants)

OPT ?= O2
FAST ?=
MEM ?=
EVENT_LOGGER ?=
APP ?=

B ?= build
OUT ?= .
CC := gcc
LD := ld
OBJCOPY := objcopy

ifneq ($(V),1)
Q := @
endif

DEFS :=
ifeq ($(FAST),1)
DEFS += -DXMHF_FAST
endif
ifneq ($(MEM),)
DEFS += -DXMHF_MEM_LIMIT=$(MEM)ULL
endif
ifeq ($(EVENT_LOGGER),1)
DEFS += -DXMHF_EVENT_LOGGER
endif
ifneq ($(APP),)
ifeq ($(wildcard hypapps/$(APP)/*.c),)
$(error no hypapp '$(APP)': hypapps/$(APP)/ has no C files)
endif
DEFS += -DXMHF_APP=$(APP)
endif

CFLAGS_COMMON := -std=gnu11 -$(OPT) -g -Wall -Wextra -Werror -ffreestanding -fno-stack-protector \
	-mgeneral-regs-only -fno-asynchronous-unwind-tables -fno-common -fno-strict-aliasing \
	-Ixmhf/include -Ixmhf/arch $(DEFS)
CFLAGS_INIT := $(CFLAGS_COMMON) -m32 -march=i686 -fno-pic -fno-pie
CFLAGS_RT := $(CFLAGS_COMMON) -m64 -fPIE -mno-red-zone -fvisibility=hidden

# Library files used by each side.
LIB_INIT := printf string console uart16550 cmdline e820 acpi sha1 sha256 tpm2 tis tcg-log dmar vtd-unit region runtime-image
LIB_RT := apic-dest cpu-errata printf string console uart16550 palloc e820 mtrr ept insn mmio-store acpi dmar vtd-pt vtd-unit vmcs-fields vmcs-translate nested-logic task-switch segdesc

INIT_SRC := xmhf/boot/header.S xmhf/boot/longmode.S xmhf/boot/init.c xmhf/boot/tpm-tis.c xmhf/boot/measure.c \
	xmhf/boot/dmaprot.c \
	$(LIB_INIT:%=xmhf/lib/%.c)
RT_SRC := $(sort $(wildcard xmhf/runtime/*/*.S xmhf/runtime/*/*.c)) $(LIB_RT:%=xmhf/lib/%.c)
ifneq ($(APP),)
RT_SRC += $(wildcard hypapps/$(APP)/*.c)
endif

INIT_OBJ := $(patsubst %,$(B)/init/%.o,$(basename $(INIT_SRC)))
RT_OBJ := $(patsubst %,$(B)/runtime/%.o,$(basename $(RT_SRC)))

INIT_BIN := $(OUT)/init-x86-amd64.bin
INIT_ELF := $(OUT)/init-x86-amd64.elf
RT_ELF := $(OUT)/hypervisor-x86-amd64.elf
RT_GZ := $(OUT)/hypervisor-x86-amd64.bin.gz

# UEFI: the EFI loader (xmhf/boot/uefi), a PE32+ EFI application that carries the runtime image.
LIB_EFI := printf string console uart16550 cmdline e820 efi-memmap acpi sha1 region runtime-image
EFI_SRC := xmhf/boot/uefi/start.S xmhf/boot/uefi/switch.S xmhf/boot/uefi/relocate.c xmhf/boot/uefi/main.c xmhf/boot/uefi/runtime-blob.S \
	$(LIB_EFI:%=xmhf/lib/%.c)
EFI_OBJ := $(patsubst %,$(B)/efi/%.o,$(basename $(EFI_SRC)))
CFLAGS_EFI := $(CFLAGS_COMMON) -m64 -fPIE -mno-red-zone -fvisibility=hidden
EFI_ELF := $(OUT)/init-x86-amd64-efi.elf
EFI_APP := $(OUT)/init-x86-amd64.efi

all: $(INIT_BIN) $(RT_GZ) $(EFI_APP)
uefi: $(EFI_APP)

# Rebuild everything when the options change.
CONFIG := OPT=$(OPT) FAST=$(FAST) MEM=$(MEM) EVENT_LOGGER=$(EVENT_LOGGER) APP=$(APP)
$(B)/config.stamp: FORCE
	@mkdir -p $(B)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(CONFIG)" ]; then echo "$(CONFIG)" > $@; fi

$(B)/init/%.o: %.c $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  CC32  $<"
	$(Q)$(CC) $(CFLAGS_INIT) -MMD -MP -c $< -o $@
$(B)/init/%.o: %.S $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  AS32  $<"
	$(Q)$(CC) $(CFLAGS_INIT) -MMD -MP -c $< -o $@
$(B)/runtime/%.o: %.c $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  CC64  $<"
	$(Q)$(CC) $(CFLAGS_RT) -MMD -MP -c $< -o $@
$(B)/runtime/%.o: %.S $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  AS64  $<"
	$(Q)$(CC) $(CFLAGS_RT) -MMD -MP -c $< -o $@

$(INIT_ELF): $(INIT_OBJ) xmhf/boot/init.lds
	@mkdir -p $(OUT)
	@echo "  LD    $@"
	$(Q)$(LD) -m elf_i386 -nostdlib -z noexecstack --no-warn-rwx-segments -T xmhf/boot/init.lds -o $@ $(INIT_OBJ)
$(INIT_BIN): $(INIT_ELF)
	$(Q)$(OBJCOPY) -O binary $< $@

# The runtime is a static PIE linked at 0; only R_X86_64_RELATIVE relocations are allowed (init applies
# just those), which the check below enforces at build time.
$(RT_ELF): $(RT_OBJ) xmhf/runtime/runtime.lds
	@mkdir -p $(OUT)
	@echo "  LD    $@"
	$(Q)$(LD) -m elf_x86_64 -nostdlib -pie --no-dynamic-linker -z noexecstack --no-warn-rwx-segments -z norelro --hash-style=sysv \
		-T xmhf/runtime/runtime.lds -o $@ $(RT_OBJ)
	$(Q)if readelf -rW $@ | awk 'NR>3 && NF>2 && $$3 ~ /^R_X86_64/ && $$3 != "R_X86_64_RELATIVE"' | grep .; then \
		echo "error: the runtime has relocations other than R_X86_64_RELATIVE" >&2; rm -f $@; exit 1; fi
$(B)/hypervisor-x86-amd64.bin: $(RT_ELF)
	$(Q)$(OBJCOPY) -O binary $< $@
$(RT_GZ): $(B)/hypervisor-x86-amd64.bin
	@echo "  GZIP  $@"
	$(Q)gzip -9 -n -c $< > $@

$(B)/efi/%.o: %.c $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  CCEFI $<"
	$(Q)$(CC) $(CFLAGS_EFI) -MMD -MP -c $< -o $@
$(B)/efi/%.o: %.S $(B)/config.stamp
	@mkdir -p $(dir $@)
	@echo "  ASEFI $<"
	$(Q)$(CC) $(CFLAGS_EFI) -MMD -MP -c $< -o $@
$(B)/efi/xmhf/boot/uefi/runtime-blob.o: xmhf/boot/uefi/runtime-blob.S $(B)/hypervisor-x86-amd64.bin
	@mkdir -p $(dir $@)
	@echo "  ASEFI $<"
	$(Q)$(CC) $(CFLAGS_EFI) -DRUNTIME_BIN='"$(B)/hypervisor-x86-amd64.bin"' -c $< -o $@

# An ELF linked at 0 with its relocations kept (the image applies them itself: start.S), converted to
# PE32+ (subsystem 10, EFI application) with only the sections the firmware loads.
EFI_LINK = $(LD) -m elf_x86_64 -nostdlib -pie --no-dynamic-linker -z noexecstack --no-warn-rwx-segments \
	-z norelro --hash-style=sysv -T xmhf/boot/uefi/efi.lds
EFI_PE = $(OBJCOPY) -j .text -j .data -j .rela -j .reloc --target efi-app-x86_64
$(EFI_ELF): $(EFI_OBJ) xmhf/boot/uefi/efi.lds
	@mkdir -p $(OUT)
	@echo "  LD    $@"
	$(Q)$(EFI_LINK) -o $@ $(EFI_OBJ)
$(EFI_APP): $(EFI_ELF)
	@echo "  EFI   $@"
	$(Q)$(EFI_PE) $< $@

# The UEFI tests' next boot entry (tests/guests/uefi): built like the loader, from its objects.
UEFI_TESTAPP := $(B)/uefi-tests/xmhf-memcheck.efi
TESTAPP_OBJ := $(B)/efi/xmhf/boot/uefi/start.o $(B)/efi/xmhf/boot/uefi/relocate.o $(B)/efi/tests/guests/uefi/memcheck.o \
	$(patsubst %,$(B)/efi/xmhf/lib/%.o,printf string console uart16550 e820 efi-memmap)
# xmhf-bsgone.efi: the loader's objects behind another entry, which calls it with bad system tables.
UEFI_BSGONE := $(B)/uefi-tests/xmhf-bsgone.efi
BSGONE_OBJ := $(EFI_OBJ) $(B)/efi/tests/guests/uefi/bsgone.o
uefi-testapp: $(UEFI_TESTAPP) $(UEFI_BSGONE)
$(UEFI_BSGONE): $(BSGONE_OBJ) xmhf/boot/uefi/efi.lds
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(EFI_LINK) -e bsgone_main -o $@.elf $(BSGONE_OBJ)
	$(Q)$(EFI_PE) $@.elf $@
$(UEFI_TESTAPP): $(TESTAPP_OBJ) xmhf/boot/uefi/efi.lds
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(EFI_LINK) -o $@.elf $(TESTAPP_OBJ)
	$(Q)$(EFI_PE) $@.elf $@

# Debian integration (docs/trusted-boot.md): make install DESTDIR=... puts the images in /boot (init also
# as a stripped ELF, the format tboot loads), their symbol files under /usr/lib/debug/boot, the GRUB
# script in /etc/grub.d; make deb packs the same tree.
DESTDIR ?=
DEB_VERSION := $(shell sed -n 's/^\#define XMHF_VERSION "\(.*\)"/\1/p' xmhf/include/xmhf/bootinfo.h)
DEB := $(OUT)/xmhf-amd64_$(DEB_VERSION)_amd64.deb

install: $(INIT_BIN) $(RT_GZ)
	install -d $(DESTDIR)/boot $(DESTDIR)/usr/lib/debug/boot $(DESTDIR)/etc/grub.d $(DESTDIR)/etc/default \
		$(DESTDIR)/usr/share/doc/xmhf-amd64
	install -m 644 $(INIT_BIN) $(RT_GZ) $(DESTDIR)/boot/
	$(OBJCOPY) --strip-debug $(INIT_ELF) $(DESTDIR)/boot/init-x86-amd64.elf  # what tboot loads (ELF only)
	chmod 644 $(DESTDIR)/boot/init-x86-amd64.elf
	install -m 644 $(INIT_ELF) $(RT_ELF) $(DESTDIR)/usr/lib/debug/boot/
	install -m 755 dist/grub.d/20_xmhf $(DESTDIR)/etc/grub.d/20_xmhf
	install -m 644 dist/default/xmhf $(DESTDIR)/etc/default/xmhf
	install -m 644 README.md docs/trusted-boot.md $(DESTDIR)/usr/share/doc/xmhf-amd64/

deb: $(INIT_BIN) $(RT_GZ)
	rm -rf $(B)/deb
	$(MAKE) -s install DESTDIR=$(abspath $(B)/deb)
	install -d $(B)/deb/DEBIAN
	sed -e 's/@VERSION@/$(DEB_VERSION)/' -e "s/@SIZE@/$$(du -sk $(B)/deb | cut -f1)/" dist/debian/control \
		> $(B)/deb/DEBIAN/control
	install -m 644 dist/debian/conffiles $(B)/deb/DEBIAN/conffiles
	install -m 755 dist/debian/postinst dist/debian/postrm $(B)/deb/DEBIAN/
	dpkg-deb --root-owner-group -Zxz --build $(B)/deb $(DEB)

# Tests and running (see README.md).
# install-deps.sh is a no-op when every package is present.
deps:
	@tools/install-deps.sh
test: deps
	$(MAKE) all
	tests/run
# The long runs (a whole OS as L2, Xen as L1): CI runs them after make test.
test-long: deps
	$(MAKE) all
	tests/run --long
unit:
	tests/run unit
run: deps
	$(MAKE) all
	tools/run-bochs.sh
bench: deps
	$(MAKE) all
	tests/run --bench
# The differential VMX fuzzer (tests/runner/fuzz.py): make fuzz SEEDS=1-20 OPS=5000 [SMP=1,2] [J=1]
SEEDS ?= 1-5
OPS ?= 2000
SMP ?= 1,2
J ?= 1
fuzz: deps
	$(MAKE) all
	tests/runner/fuzz.py --seeds $(SEEDS) --ops $(OPS) --smp $(SMP) -j $(J)

clean:
	rm -rf $(B) init-x86-amd64.bin init-x86-amd64.elf hypervisor-x86-amd64.bin.gz hypervisor-x86-amd64.elf \
		init-x86-amd64.efi init-x86-amd64-efi.elf xmhf-amd64_*.deb

FORCE:
.PHONY: all uefi uefi-testapp deps test test-long unit run bench fuzz clean install deb FORCE

-include $(INIT_OBJ:.o=.d) $(RT_OBJ:.o=.d) $(EFI_OBJ:.o=.d) $(TESTAPP_OBJ:.o=.d) $(BSGONE_OBJ:.o=.d)
