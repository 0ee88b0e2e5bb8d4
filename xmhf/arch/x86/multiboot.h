/* Multiboot specification version 0.6.96 (the one GRUB's `multiboot` command implements). */
#ifndef X86_MULTIBOOT_H
#define X86_MULTIBOOT_H
#include <xmhf/types.h>

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#define MULTIBOOT_HEADER_PAGE_ALIGN (1U << 0)
#define MULTIBOOT_HEADER_MEMORY_INFO (1U << 1)
#define MULTIBOOT_HEADER_AOUT_KLUDGE (1U << 16)

#define MULTIBOOT_INFO_MEMORY (1U << 0)
#define MULTIBOOT_INFO_CMDLINE (1U << 2)
#define MULTIBOOT_INFO_MODS (1U << 3)
#define MULTIBOOT_INFO_MEM_MAP (1U << 6)

struct multiboot_info {
	u32 flags;
	u32 mem_lower;
	u32 mem_upper;
	u32 boot_device;
	u32 cmdline;
	u32 mods_count;
	u32 mods_addr;
	u32 syms[4];
	u32 mmap_length;
	u32 mmap_addr;
	u32 drives_length;
	u32 drives_addr;
	u32 config_table;
	u32 boot_loader_name;
} PACKED;

struct multiboot_module {
	u32 mod_start;
	u32 mod_end;
	u32 string;
	u32 reserved;
} PACKED;

#endif
