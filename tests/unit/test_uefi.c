/* UEFI boot logic: EFI memory maps in E820 form, segment registers from the firmware's GDT, the runtime
 * image's header and relocations. */
#include <lib/efi-memmap.h>
#include <lib/runtime-image.h>
#include <lib/segdesc.h>
#include "unit.h"

/* Descriptors 48 bytes apart, as OVMF reports them (descriptor_size > sizeof). */
struct desc48 {
	struct efi_memdesc d;
	u64 extra;
};

static u32 add(struct desc48 *m, u32 n, u32 type, u64 base, u64 pages)
{
	memset(&m[n], 0xa5, sizeof(m[n]));
	m[n].d.type = type;
	m[n].d.physical_start = base;
	m[n].d.number_of_pages = pages;
	return n + 1;
}

TEST(efi_memmap_types)
{
	struct desc48 m[8];
	struct e820_map e;
	u32 n = 0;

	n = add(m, n, 3, 0, 0xa0);          /* BS code: RAM */
	n = add(m, n, 0, 0xa0000, 0x60);    /* reserved */
	n = add(m, n, 7, 0x100000, 0x100);  /* free */
	n = add(m, n, 6, 0x200000, 0x10);   /* runtime data: reserved */
	n = add(m, n, 9, 0x210000, 0x10);   /* ACPI reclaim */
	n = add(m, n, 10, 0x220000, 0x10);  /* ACPI NVS */
	n = add(m, n, 2, 0x230000, 0x10);   /* loader data: RAM */
	n = add(m, n, 11, 0xfec00000, 1);   /* MMIO */
	CHECK_EQ(e820_from_efi_map(m, n * sizeof(m[0]), sizeof(m[0]), false, &e), 0);
	CHECK_EQ(e.count, 8);
	CHECK_EQ(e.e[0].type, E820_RAM);
	CHECK_EQ(e.e[1].type, E820_RESERVED);
	CHECK_EQ(e.e[2].base, 0x100000);
	CHECK_EQ(e.e[2].length, 0x100000);
	CHECK_EQ(e.e[3].type, E820_RESERVED);
	CHECK_EQ(e.e[4].type, E820_ACPI);
	CHECK_EQ(e.e[5].type, E820_NVS);
	CHECK_EQ(e.e[6].type, E820_RAM);
	CHECK_EQ(e.e[7].type, E820_RESERVED);
	/* Free-only: boot-services and loader memory are taken now. */
	CHECK_EQ(e820_from_efi_map(m, n * sizeof(m[0]), sizeof(m[0]), true, &e), 0);
	CHECK_EQ(e.e[0].type, E820_RESERVED);
	CHECK_EQ(e.e[1].base, 0x100000);
	CHECK_EQ(e.e[1].type, E820_RAM);
	CHECK_EQ(e.e[2].type, E820_RESERVED);
	CHECK_EQ(e.e[2].base, 0x200000);
	CHECK_EQ(e.e[2].length, 0x40000); /* runtime data .. loader data merged */
}

TEST(efi_memmap_malformed)
{
	struct desc48 m[2];
	struct e820_map e;

	add(m, 0, 7, 0x100000, 1);
	add(m, 1, 7, ~0ULL - 0xfff, 2); /* wraps */
	CHECK_EQ(e820_from_efi_map(m, sizeof(m[0]), 20, false, &e), -1);           /* short descriptor */
	CHECK_EQ(e820_from_efi_map(m, sizeof(m[0]) + 8, sizeof(m[0]), false, &e), -1); /* ragged size */
	CHECK_EQ(e820_from_efi_map(m, 0, sizeof(m[0]), false, &e), -1);
	CHECK_EQ(e820_from_efi_map(m, sizeof(m), sizeof(m[0]), false, &e), -1);
	CHECK_EQ(e820_from_efi_map(m, sizeof(m[0]), sizeof(m[0]), false, &e), 0);
}

TEST(efi_memmap_many)
{
	/* 1000 descriptors alternating free and boot-services pages merge into one RAM range. */
	static struct desc48 m[1000];
	struct e820_map e;

	for (u32 i = 0; i < 1000; i++)
		add(m, i, i % 2 ? 4 : 7, 0x100000 + i * 0x1000ULL, 1);
	CHECK_EQ(e820_from_efi_map(m, sizeof(m), sizeof(m[0]), false, &e), 0);
	CHECK_EQ(e.count, 1);
	CHECK_EQ(e.e[0].length, 1000 * 0x1000ULL);
	/* Free-only alternates: more ranges than the array holds. */
	CHECK_EQ(e820_from_efi_map(m, sizeof(m), sizeof(m[0]), true, &e), -1);
}

/* A GDT like OVMF's: null, 32-bit code/data, 64-bit code at 0x38, a TSS at 0x48. */
static void gdt_image(u64 *g)
{
	memset(g, 0, 12 * 8);
	g[1] = 0x00cf92000000ffffULL;   /* 0x08 data, 4 GiB, G, D/B */
	g[2] = 0x00cf9a000000ffffULL;   /* 0x10 32-bit code */
	g[7] = 0x00af9b000000ffffULL;   /* 0x38 64-bit code (accessed) */
	g[8] = 0x00cf93000000ffffULL;   /* 0x40 data (accessed) */
	g[9] = 0x12008b3456780067ULL;   /* 0x48 busy TSS, base 0x12345678 (low) */
	g[10] = 0x00000000000000abULL;  /* base 63:32 = 0xab */
	g[11] = 0x00cf98000000ffffULL;  /* 0x58 execute-only code */
}

TEST(segdesc_from_gdt)
{
	u64 g[12];
	struct vmx_segment s;
	const char *err;

	gdt_image(g);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x38, SEG_CODE, &s, &err), 0);
	CHECK_EQ(s.ar, 0xa09b);
	CHECK_EQ(s.limit, 0xffffffff);
	CHECK_EQ(s.base, 0);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x08, SEG_DATA, &s, &err), 0);
	CHECK_EQ(s.ar, 0xc093); /* accessed added */
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x48, SEG_TR, &s, &err), 0);
	CHECK_EQ(s.ar, 0x8b);
	CHECK_EQ(s.base, 0xab12345678ULL);
	CHECK_EQ(s.limit, 0x67);
	/* Null selectors: unusable data, a stand-in TSS, an error for CS. */
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0, SEG_DATA, &s, &err), 0);
	CHECK_EQ(s.ar, SEG_AR_UNUSABLE);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0, SEG_TR, &s, &err), 0);
	CHECK_EQ(s.ar, 0x8b);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0, SEG_LDTR, &s, &err), 0);
	CHECK_EQ(s.ar, SEG_AR_UNUSABLE);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0, SEG_CODE, &s, &err), -1);
	/* Wrong kinds and bad selectors. */
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x10, SEG_CODE, &s, &err), -1);
	CHECK(strstr(err, "64-bit") != NULL);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x58, SEG_DATA, &s, &err), -1);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x48, SEG_DATA, &s, &err), -1);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x08, SEG_TR, &s, &err), -1);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x3c, SEG_CODE, &s, &err), -1); /* LDT */
	CHECK_EQ(seg_from_gdt((u8 *)g, 0x3f, 0x40, SEG_DATA, &s, &err), -1);        /* beyond the limit */
	CHECK_EQ(seg_from_gdt((u8 *)g, 0x4f, 0x48, SEG_TR, &s, &err), -1);          /* 16-byte TSS cut */
	g[8] &= ~(1ULL << 47);
	CHECK_EQ(seg_from_gdt((u8 *)g, sizeof(g) - 1, 0x40, SEG_DATA, &s, &err), -1); /* not present */
}

TEST(runtime_image_relocate)
{
	/* A 4 KiB image: header, two relocations at 0x100, a slot at 0x200. */
	static u64 img[512] __attribute__((aligned(4096)));
	struct runtime_header *h = (struct runtime_header *)img;
	u64 base = (u64)(uintptr_t)img;
	u32 bad = 99;

	memset(img, 0, sizeof(img));
	h->magic = RUNTIME_HEADER_MAGIC;
	h->header_version = 1;
	h->entry_offset = 0x40;
	h->file_size = 0x1000;
	h->mem_size = 0x2000;
	h->rela_offset = 0x100;
	h->rela_size = 48;
	CHECK_EQ(runtime_header_check(h, 0x1000), 0);
	CHECK_EQ(runtime_header_check(h, 0xfff), -1);
	img[0x100 / 8] = 0x200;
	img[0x108 / 8] = 8;
	img[0x110 / 8] = 0x40;
	img[0x118 / 8] = 0x208;
	img[0x120 / 8] = 8;
	img[0x128 / 8] = 0x80;
	CHECK_EQ(runtime_relocate(base, &bad), 0);
	CHECK_EQ(img[0x200 / 8], base + 0x40);
	CHECK_EQ(img[0x208 / 8], base + 0x80);
	img[0x120 / 8] = 1; /* R_X86_64_64 */
	CHECK_EQ(runtime_relocate(base, &bad), -1);
	CHECK_EQ(bad, 1);
	h->mem_size = 0x800; /* less than the file */
	CHECK_EQ(runtime_header_check(h, 0x1000), -1);
	h->mem_size = 0x2000;
	h->rela_size = 0xf08; /* relocations past the file's end */
	CHECK_EQ(runtime_header_check(h, 0x1000), -1);
}

/* seg_access_ok: the data-access checks of VMX memory operands and task-switch pushes (SDM 5.3-5.5). */
TEST(segdesc_access_ok)
{
	struct vmx_segment rw = { 0x10, 0x1000, 0xfff, 0x4093 };        /* read/write data, limit 0xfff */
	struct vmx_segment ro = { 0x18, 0, 0xffff, 0x91 };               /* read-only data */
	struct vmx_segment xo = { 0x20, 0, 0xffffffff, 0xc099 };         /* execute-only code */
	struct vmx_segment xr = { 0x28, 0, 0xffffffff, 0xc09b };         /* execute/read code */
	struct vmx_segment ed16 = { 0x30, 0, 0x0fff, 0x97 };             /* expand-down, B=0: 0x1000-0xffff */
	struct vmx_segment ed32 = { 0x38, 0, 0x0fff, 0x4097 };           /* expand-down, B=1 */
	struct vmx_segment flat = { 0x40, 0, 0xffffffff, 0xc093 };
	struct vmx_segment flat_based = { 0x48, 0x10, 0xffffffff, 0xc093 };
	struct vmx_segment unusable = { 0, 0, 0, SEG_AR_UNUSABLE };

	CHECK(seg_access_ok(&rw, 0xff8, 8, true));
	CHECK(!seg_access_ok(&rw, 0xff9, 8, false));   /* last byte beyond the limit */
	CHECK(!seg_access_ok(&rw, 0x1000, 1, false));
	CHECK(seg_access_ok(&ro, 0, 8, false));
	CHECK(!seg_access_ok(&ro, 0, 8, true));          /* read-only: no write */
	CHECK(!seg_access_ok(&xo, 0, 8, false));         /* execute-only: no read */
	CHECK(seg_access_ok(&xr, 0, 8, false));
	CHECK(!seg_access_ok(&xr, 0, 8, true));          /* code: never written */
	CHECK(!seg_access_ok(&ed16, 0xfff, 1, false));   /* at or below the limit */
	CHECK(seg_access_ok(&ed16, 0x1000, 8, true));
	CHECK(seg_access_ok(&ed16, 0xfff8, 8, true));
	CHECK(!seg_access_ok(&ed16, 0xfff9, 8, true));   /* beyond 0xffff */
	CHECK(seg_access_ok(&ed32, 0xfff9, 8, true));
	CHECK(!seg_access_ok(&ed32, 0xfffffffc, 8, true));
	CHECK(seg_access_ok(&flat, 0xfffffffc, 8, true)); /* a flat segment wraps (Bochs) */
	CHECK(!seg_access_ok(&flat_based, 0xfffffffc, 8, true));
	CHECK(!seg_access_ok(&unusable, 0, 1, false));
}
