/* Segment registers from descriptor-table entries, in the VMCS's form (SDM Vol. 3, 3.4.5 segment
 * descriptors, 10.2.3 64-bit system descriptors, 25.4.1 guest register state: access rights with bit 16
 * "unusable"). Used to start a guest in the state the UEFI firmware was in. Pure logic, unit-tested. */
#ifndef LIB_SEGDESC_H
#define LIB_SEGDESC_H
#include <xmhf/types.h>

#define SEG_AR_UNUSABLE (1U << 16)
#define SEG_AR_L (1U << 13)
#define SEG_AR_DB (1U << 14)
#define SEG_AR_G (1U << 15)
#define SEG_AR_P (1U << 7)
#define SEG_AR_S (1U << 4)

struct vmx_segment {
	u16 sel;
	u64 base;
	u32 limit;
	u32 ar;
};

enum seg_kind { SEG_CODE, SEG_DATA, SEG_TR, SEG_LDTR };

/* The access rights, scaled limit and base (bits 31:0) of the 8-byte descriptor d; sel is left alone. */
void seg_decode(u64 d, struct vmx_segment *out);

/* Fills *out for selector sel of the given kind from the GDT image gdt of gdt_limit + 1 bytes.
 * A null selector gives an unusable segment, except CS (an error) and TR, for which a busy 64-bit TSS of
 * base 0 and limit 0x67 stands in (VM entry needs a usable TR, SDM 27.3.1.2; firmware often never loads
 * one, and nothing at CPL 0 without IST entries reads it). Returns 0, or -1 with a reason in err if the
 * selector is outside the GDT, uses the LDT, or names a descriptor unfit for the register (not present,
 * a code segment without L in CS, a system descriptor in a data register, not a TSS in TR). */
int seg_from_gdt(const u8 *gdt, u32 gdt_limit, u16 sel, enum seg_kind kind, struct vmx_segment *out,
		 const char **err);

/* Whether a data access of size bytes at offset (the effective address, before the base is added) through
 * segment s is allowed outside 64-bit mode (SDM Vol. 3, 5.3 limit checking, 5.4/5.5 type checking): the
 * segment is usable, readable (not execute-only code) or, for a write, writable data; the bytes lie within
 * the limit, or for an expand-down segment above it and up to 0xffff or 0xffffffff (the B flag). A flat
 * segment (base 0, 4-GiB limit) lets an access wrap past 4 GiB, as Bochs does. False means #GP(0), or #SS(0) for SS. */
bool seg_access_ok(const struct vmx_segment *s, u32 offset, u32 size, bool write);

#endif
