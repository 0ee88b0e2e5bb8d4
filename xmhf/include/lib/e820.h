/* Physical memory maps in E820 form: parsing the multiboot v1 map, normalising it, reserving ranges,
 * and finding a place for the hypervisor. Pure logic, unit-tested on the host. */
#ifndef LIB_E820_H
#define LIB_E820_H
#include <xmhf/types.h>

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_NVS 4
#define E820_UNUSABLE 5

/* Bound of the map array (entries, not memory): BIOS maps have a few dozen entries. */
#define E820_MAX_ENTRIES 128

struct e820_entry {
	u64 base;
	u64 length;
	u32 type;
	u32 pad;
};

struct e820_map {
	u32 count;
	u32 pad;
	struct e820_entry e[E820_MAX_ENTRIES];
};

struct phys_range {
	u64 base;
	u64 length;
};

/* Parses a multiboot v1 memory map (sequence of {u32 size; u64 base; u64 length; u32 type}, each entry
 * followed by `size` bytes after the size field) of mmap_length bytes at mmap.
 * Returns 0, or -1 if malformed (size < 20, an entry running past the end, no entries, more than
 * E820_MAX_ENTRIES entries, or base+length overflowing 64 bits). Zero-length entries are dropped.
 * The result is normalised as by e820_normalize(). */
int e820_from_multiboot(const void *mmap, u32 mmap_length, struct e820_map *out);

/* Sorts by base, resolves overlaps (where entries overlap the higher type number wins, except that
 * E820_RAM always loses to any other type), merges adjacent or overlapping entries of equal type,
 * and drops empty entries. Returns 0, or -1 if the result would exceed E820_MAX_ENTRIES. */
int e820_normalize(struct e820_map *m);

/* Marks [base, base+length) as `type` (splitting entries as needed; a part of the range not covered by
 * any entry is added as well). Keeps the map normalised. Returns 0, or -1 on overflow of the array. */
int e820_reserve(struct e820_map *m, u64 base, u64 length, u32 type);

/* Total bytes of E820_RAM. */
u64 e820_ram_bytes(const struct e820_map *m);

/* One past the highest address of any E820_RAM entry (0 if none). */
u64 e820_ram_top(const struct e820_map *m);

/* Finds the highest base, a multiple of align (a power of two), such that [base, base+size) lies
 * entirely within one E820_RAM entry, base >= floor, base+size <= limit, and the range overlaps none of
 * the n ranges in avoid. Returns 0 and sets *base_out, or -1 if there is no such place. */
int e820_find_highest(const struct e820_map *m, u64 size, u64 align, u64 floor, u64 limit,
		      const struct phys_range *avoid, u32 n, u64 *base_out);

/* Human-readable name of a type: "usable", "reserved", "ACPI data", "ACPI NVS", "unusable", or
 * "other" for unknown types. */
const char *e820_type_name(u32 type);

#endif
