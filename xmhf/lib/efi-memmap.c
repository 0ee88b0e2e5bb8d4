/* UEFI memory map -> E820 map (see lib/efi-memmap.h). */
#include <lib/efi-memmap.h>
#include <lib/string.h>

u32 efi_type_to_e820(u32 efi_type)
{
	switch (efi_type) {
	case 1: /* EfiLoaderCode */
	case 2: /* EfiLoaderData */
	case 3: /* EfiBootServicesCode */
	case 4: /* EfiBootServicesData */
	case EFI_MEMTYPE_CONVENTIONAL:
		return E820_RAM;
	case 8: /* EfiUnusableMemory */
		return E820_UNUSABLE;
	case 9: /* EfiACPIReclaimMemory */
		return E820_ACPI;
	case 10: /* EfiACPIMemoryNVS */
		return E820_NVS;
	default:
		return E820_RESERVED;
	}
}

int e820_from_efi_map(const void *map, u64 map_size, u64 desc_size, bool free_only, struct e820_map *out)
{
	const u8 *p = map;

	out->count = 0;
	out->pad = 0;
	if (desc_size < sizeof(struct efi_memdesc) || desc_size % 8 || map_size == 0 || map_size % desc_size)
		return -1;
	for (u64 off = 0; off < map_size; off += desc_size) {
		struct efi_memdesc d;

		memcpy(&d, p + off, sizeof(d));
		if (d.number_of_pages == 0)
			continue;
		if (d.number_of_pages > (~0ULL >> 12) || d.physical_start > ~0ULL - (d.number_of_pages << 12))
			return -1;
		/* Merging as we go keeps maps with thousands of descriptors within the array. */
		u32 type = free_only ? (d.type == EFI_MEMTYPE_CONVENTIONAL ? E820_RAM : E820_RESERVED)
				     : efi_type_to_e820(d.type);
		struct e820_entry *last = out->count ? &out->e[out->count - 1] : NULL;
		if (last && last->type == type && last->base + last->length == d.physical_start) {
			last->length += d.number_of_pages << 12;
			continue;
		}
		if (out->count == E820_MAX_ENTRIES && e820_normalize(out) != 0)
			return -1;
		if (out->count == E820_MAX_ENTRIES)
			return -1;
		out->e[out->count].base = d.physical_start;
		out->e[out->count].length = d.number_of_pages << 12;
		out->e[out->count].type = type;
		out->e[out->count].pad = 0;
		out->count++;
	}
	if (out->count == 0)
		return -1;
	return e820_normalize(out);
}
