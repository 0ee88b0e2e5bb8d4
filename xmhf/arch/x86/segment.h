/* Segment descriptors, gates and the 64-bit TSS (Intel SDM Vol. 3, 3.4.5, 6.14, 7.7). */
#ifndef X86_SEGMENT_H
#define X86_SEGMENT_H
#include <xmhf/types.h>

/* Flat code/data descriptors. */
#define GDT_CODE32 0x00cf9a000000ffffULL
#define GDT_DATA32 0x00cf92000000ffffULL
#define GDT_CODE64 0x00af9a000000ffffULL
#define GDT_DATA64 0x00cf92000000ffffULL

struct desc_ptr {
	u16 limit;
	unsigned long base;
} PACKED;

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7]; /* ist[0] is IST1 */
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} PACKED;

struct idt_gate64 {
	u16 offset_lo;
	u16 selector;
	u8 ist;
	u8 type_attr; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} PACKED;

#endif
