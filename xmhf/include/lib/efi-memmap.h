/* UEFI memory maps (UEFI 2.10, 7.2 GetMemoryMap) in E820 form, as an OS sees them once boot services
 * are gone (Linux's EFI stub and Windows treat the types this way). Pure logic, unit-tested. */
#ifndef LIB_EFI_MEMMAP_H
#define LIB_EFI_MEMMAP_H
#include <xmhf/types.h>
#include <lib/e820.h>

/* The first fields of EFI_MEMORY_DESCRIPTOR; the firmware's descriptor_size may be larger. */
struct efi_memdesc {
	u32 type;
	u32 pad;
	u64 physical_start;
	u64 virtual_start;
	u64 number_of_pages;
	u64 attribute;
};

#define EFI_MEMTYPE_RESERVED 0
#define EFI_MEMTYPE_CONVENTIONAL 7

/* E820 type of an EFI memory type: loader and boot-services memory and free memory are RAM once boot
 * services exit; ACPI reclaim is ACPI data, ACPI NVS is NVS, unusable memory is unusable; everything
 * else (reserved, runtime services, MMIO, PAL code, persistent and unaccepted memory, unknown types) is
 * reserved. */
u32 efi_type_to_e820(u32 efi_type);

/* Converts map_size bytes of descriptors, desc_size bytes apart. With free_only, only
 * EfiConventionalMemory counts as RAM (what may be allocated now); every other type is reserved.
 * Returns 0, or -1 if malformed (desc_size smaller than a descriptor or not a multiple of 8, map_size not
 * a multiple of desc_size or empty, a range overflowing 64 bits, more ranges than E820_MAX_ENTRIES after
 * merging). The result is normalised (e820_normalize). */
int e820_from_efi_map(const void *map, u64 map_size, u64 desc_size, bool free_only, struct e820_map *out);

#endif
