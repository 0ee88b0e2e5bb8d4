/* The hand-off from init (32-bit) to the runtime (64-bit): the runtime image header and the boot-info
 * block. Both sides compile this header, so every field has the same offset in both ABIs: u64 fields sit
 * on 8-byte offsets, checked by the static assertions below. */
#ifndef XMHF_BOOTINFO_H
#define XMHF_BOOTINFO_H
#include <xmhf/types.h>
#include <lib/cmdline.h>
#include <lib/e820.h>

#define XMHF_VERSION "0.1.0"

/* First bytes of hypervisor-x86-amd64.bin (after GRUB gunzipped it). The runtime is linked at address 0
 * as a position-independent image; init copies it to the region, zeroes its bss and applies the
 * R_X86_64_RELATIVE relocations found at [rela_offset, rela_offset + rela_size). */
#define RUNTIME_HEADER_MAGIC 0x544e5552464d4858ULL /* "XHMFRUNT" */
struct runtime_header {
	u64 magic;
	u64 header_version; /* 1 */
	u64 entry_offset;   /* 64-bit entry, called with RDI = boot-info physical address */
	u64 file_size;      /* bytes of the image file (text, data, relocations) */
	u64 mem_size;       /* bytes in memory including bss */
	u64 rela_offset;
	u64 rela_size;
	u64 reserved;
};

/* Extra multiboot modules after the runtime and the guest boot sector (hypapp data, SINIT, ...). */
struct bootinfo_module {
	u64 base;
	u64 size;
	char string[64];
};

#define BOOTINFO_MAGIC 0x4f464e49464d4858ULL /* "XHMFINFO" */
#define BOOTINFO_CMDLINE_MAX 256
#define BOOTINFO_MAX_EXTRA_MODULES 8

struct bootinfo {
	u64 magic;
	u64 size;            /* bytes of this block including the CPU array that follows it */
	u64 region_base;     /* the hypervisor's physical region, 2 MiB aligned */
	u64 region_size;
	u64 runtime_mem;     /* runtime image + bss at region_base */
	u64 free_base;       /* first byte of the region free for the runtime's page allocator */
	u64 tsc_at_entry;    /* TSC when GRUB handed over to init (for boot-time measurements) */
	u64 rsdp_pa;         /* ACPI RSDP, 0 if none */
	u64 lapic_base;      /* from the MADT or MP table */
	u64 ap_trampoline_pa;/* a free 4 KiB page below 1 MiB for the AP start-up code */
	u64 guest_boot_sector_pa; /* where the guest's boot sector module was (informational) */
	u64 cpus_offset;     /* offset of u32 apic_ids[ncpus] from the start of this block */
	u32 ncpus;
	u32 bsp_apic_id;
	u32 n_extra_modules;
	u32 cpu_source;      /* 1 = ACPI MADT, 2 = MP table, 3 = none found (BSP only) */
	struct boot_cmdline cmdline;
	struct bootinfo_module extra_modules[BOOTINFO_MAX_EXTRA_MODULES];
	char cmdline_str[BOOTINFO_CMDLINE_MAX];
	u8 guest_boot_sector[512];
	struct e820_map e820_firmware; /* as the firmware reported it (normalised) */
	struct e820_map e820_guest;    /* what the guest will see: the region reserved */
	u64 uefi_fw_pa;      /* UEFI boot: the firmware's CPU state (struct uefi_fw_state); 0 on BIOS boot */
};

#define CPU_SOURCE_MADT 1
#define CPU_SOURCE_MPTABLE 2
#define CPU_SOURCE_NONE 3

static inline const u32 *bootinfo_apic_ids(const struct bootinfo *bi)
{
	return (const u32 *)((const u8 *)bi + bi->cpus_offset);
}

_Static_assert(sizeof(struct runtime_header) == 64, "runtime_header layout");
_Static_assert(sizeof(struct boot_cmdline) == 24, "boot_cmdline layout");
_Static_assert(__builtin_offsetof(struct bootinfo, cmdline) == 112, "bootinfo layout");
_Static_assert(__builtin_offsetof(struct bootinfo, extra_modules) == 136, "bootinfo layout");
_Static_assert(sizeof(struct bootinfo) == 7712, "bootinfo layout");
_Static_assert(sizeof(struct e820_entry) == 24, "e820 layout");
_Static_assert(__builtin_offsetof(struct bootinfo, e820_firmware) % 8 == 0, "bootinfo layout");

#endif
