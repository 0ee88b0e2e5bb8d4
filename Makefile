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
LIB_INIT := printf string console uart16550 cmdline e820 acpi sha1 region
LIB_RT := printf string console uart16550 palloc e820 mtrr ept insn mmio-store acpi vmcs-fields vmcs-translate nested-logic

INIT_SRC := xmhf/boot/header.S xmhf/boot/longmode.S xmhf/boot/init.c $(LIB_INIT:%=xmhf/lib/%.c)
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

all: $(INIT_BIN) $(RT_GZ)

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

# Tests and running (see README.md).
# install-deps.sh is a no-op when every package is present.
deps:
	@tools/install-deps.sh
test: deps
	$(MAKE) all
	tests/run
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
	rm -rf $(B) init-x86-amd64.bin init-x86-amd64.elf hypervisor-x86-amd64.bin.gz hypervisor-x86-amd64.elf

FORCE:
.PHONY: all deps test unit run bench fuzz clean FORCE

-include $(INIT_OBJ:.o=.d) $(RT_OBJ:.o=.d)
