/* ACPI and MP-table discovery of the CPUs. Physical memory is reached through a callback so that the
 * same code runs in init (identity, 32-bit), the runtime (identity, 64-bit) and host unit tests. */
#ifndef LIB_ACPI_H
#define LIB_ACPI_H
#include <xmhf/types.h>

/* Returns a pointer through which [pa, pa+len) can be read, or NULL if that range is not accessible. */
typedef const void *(*phys_map_fn)(void *ctx, u64 pa, u64 len);

/* Searches for the RSDP ("RSD PTR ", checksum of the first 20 bytes, and of the whole extended
 * structure when revision >= 2) on 16-byte boundaries in the first KiB of the EBDA (segment read as a
 * u16 at 0x40E) and then in 0xE0000..0xFFFFF. Returns 0 and sets *rsdp_pa, or -1. */
int acpi_find_rsdp(phys_map_fn map, void *ctx, u64 *rsdp_pa);

/* Finds the first table with signature sig (4 chars) through the XSDT (if revision >= 2 and its
 * address is non-zero and the XSDT checksum is valid) or else the RSDT. Tables with a bad checksum are
 * skipped. Returns 0 and sets *table_pa, or -1. */
int acpi_find_table(phys_map_fn map, void *ctx, u64 rsdp_pa, const char *sig, u64 *table_pa);

struct cpu_list {
	u32 count;        /* CPUs found (may exceed max; only max ids stored) */
	u32 max;          /* capacity of apic_ids (0 = just count) */
	u32 *apic_ids;    /* in table order, duplicates removed */
	u64 lapic_base;   /* local APIC MMIO base (MADT, overridden by a type-5 entry; or MP table) */
};

/* Enumerates enabled processors in the MADT at madt_pa: type 0 (local APIC, flags bit 0 "enabled") and
 * type 9 (local x2APIC, flags bit 0). Processors with enabled=0 but "online capable" (bit 1) are not
 * counted: they are not running at boot. An id seen twice counts once. Returns 0, or -1 if the table
 * is malformed (bad signature/checksum, an entry length < 2, shorter than its type needs, or running
 * past the table). */
int madt_enum_cpus(phys_map_fn map, void *ctx, u64 madt_pa, struct cpu_list *out);

/* Fallback: the Intel MultiProcessor table. Finds the floating pointer "_MP_" (16-byte aligned, in the
 * first KiB of the EBDA, the last KiB of base memory (639 KiB), or 0xF0000..0xFFFFF), validates the
 * checksums, and enumerates processor entries (type 0, 20 bytes, flags bit 0 enabled). Returns 0, or -1. */
int mptable_enum_cpus(phys_map_fn map, void *ctx, struct cpu_list *out);

#endif
