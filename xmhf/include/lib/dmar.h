/* The ACPI DMA Remapping table (Intel VT-d specification, chapter 8 "BIOS Considerations"): the
 * remapping hardware units (DRHD) and the reserved memory regions devices use (RMRR). Pure parsing,
 * unit-tested; the programming of the units is in xmhf/runtime/iommu/. */
#ifndef LIB_DMAR_H
#define LIB_DMAR_H
#include <xmhf/types.h>
#include <lib/acpi.h>

#define DMAR_MAX_DRHD 8
#define DMAR_MAX_RMRR 16
#define DMAR_DRHD_INCLUDE_PCI_ALL 0x01

struct dmar_info {
	u8 host_address_width;   /* DMA physical addressability minus 1 (8.1 "HAW") */
	u8 flags;                /* bit 0 INTR_REMAP, bit 1 X2APIC_OPT_OUT, bit 2 DMA_CTRL_PLATFORM_OPT_IN */
	u32 n_drhd;
	struct {
		u64 reg_base;    /* 4 KiB-aligned register pages */
		u32 reg_pages;   /* 2^Size pages (8.3 "Size" field; 0 there means one page) */
		u16 segment;
		u8 flags;        /* DMAR_DRHD_INCLUDE_PCI_ALL */
	} drhd[DMAR_MAX_DRHD];
	u32 n_rmrr;
	struct {
		u64 base, limit; /* limit is the last byte */
	} rmrr[DMAR_MAX_RMRR];
};

/* Parses the DMAR at dmar_pa (checked by signature, length and checksum). Returns 0, or -1 with a
 * one-line reason in err: a length shorter than the header, a structure shorter than 4 bytes or its
 * type needs or running past the table, a register base that is 0 or not page-aligned, an RMRR whose
 * limit is below its base, no DRHD, more DRHDs than DMAR_MAX_DRHD; *out is then all zero. */
int dmar_parse(phys_map_fn map, void *ctx, u64 dmar_pa, struct dmar_info *out, char *err, size_t errlen);

#endif
