#include <lib/nested-logic.h>
#include <x86/vmx.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"

/* A fake L1 physical memory of 64 pages at 0x100000 for EPT12 tables. */
#define BASE 0x100000ULL
#define PAGES 64
static u64 mem[PAGES][512];

static const u64 *table(void *ctx, u64 pa)
{
	(void)ctx;
	if (pa < BASE || pa >= BASE + PAGES * 4096ULL || (pa & 0xfff))
		return NULL;
	return mem[(pa - BASE) / 4096];
}

static struct ept12_env env = { .table = table, .ctx = NULL, .maxphyaddr = 39 };

static u64 pg(int i) { return BASE + (u64)i * 4096; }

/* PML4 at page 0 -> PDPT page 1 -> PD page 2 -> PT page 3, mapping L2 0x200000 region. */
static void build(u64 pte, u64 pde_extra, u64 pml4_rights, u64 pdpt_rights)
{
	memset(mem, 0, sizeof(mem));
	mem[0][0] = pg(1) | pml4_rights;
	mem[1][0] = pg(2) | pdpt_rights;
	mem[2][1] = pde_extra ? pde_extra : (pg(3) | 7); /* 0x200000-0x3fffff */
	mem[3][5] = pte;                                  /* 0x205000 */
}

TEST(ept12_walk_4k_ok)
{
	struct ept12_walk w;
	build(0x777000 | 7 | (6 << 3), 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0) | 0x1e, 0x205abc, 1, &w), EPT12_OK);
	CHECK_EQ(w.gpa1, 0x777abcULL);
	CHECK_EQ(w.rights, 7);
	CHECK_EQ(w.level, 1);
	CHECK_EQ((w.leaf >> 3) & 7, 6);
}

TEST(ept12_walk_rights_and_across_levels)
{
	struct ept12_walk w;
	build(0x777000 | 7, 0, 3 /* RW at PML4: no execute */, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 4 /* fetch */, &w), EPT12_VIOLATION);
	CHECK_EQ(w.rights, 3);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 2 /* write */, &w), EPT12_OK);
	build(0x777000 | 1 /* read-only leaf */, 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 2, &w), EPT12_VIOLATION);
	CHECK_EQ(w.rights, 1);
}

TEST(ept12_walk_not_present_reports_no_rights)
{
	struct ept12_walk w;
	build(0, 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 1, &w), EPT12_VIOLATION);
	CHECK_EQ(w.rights, 0);
	CHECK_EQ(w.last, 1);                                                   /* the PTE (#VE's bit 63) */
	CHECK_EQ(ept12_walk(&env, pg(0), 0x40000000, 1, &w), EPT12_VIOLATION); /* PDPTE 1 absent */
	CHECK_EQ(w.rights, 0);
	CHECK_EQ(w.last, 3);
	CHECK_EQ(w.entry[3], 0ULL);
}

TEST(ept12_walk_large_pages)
{
	struct ept12_walk w;
	/* 2 MiB leaf in the PD */
	build(0, 0x40000000ULL | 7 | (1 << 7) | (6 << 3), 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x212345, 1, &w), EPT12_OK);
	CHECK_EQ(w.gpa1, 0x40012345ULL);
	CHECK_EQ(w.level, 2);
	/* 1 GiB leaf in the PDPT */
	memset(mem, 0, sizeof(mem));
	mem[0][0] = pg(1) | 7;
	mem[1][2] = 0x1c0000000ULL | 7 | (1 << 7) | (6 << 3);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x80123456, 1, &w), EPT12_OK);
	CHECK_EQ(w.gpa1, 0x1c0123456ULL);
	CHECK_EQ(w.level, 3);
}

TEST(ept12_misconfigurations)
{
	CHECK(ept12_misconfigured(0x1000 | 2, 1, 39, false));               /* W without R */
	CHECK(ept12_misconfigured(0x1000 | 4, 1, 39, false));               /* execute-only not offered */
	CHECK(ept12_misconfigured(0x1000 | 7 | (2 << 3), 1, 39, false));    /* memory type 2 */
	CHECK(ept12_misconfigured(0x1000 | 7 | (7 << 3), 1, 39, false));    /* memory type 7 */
	CHECK(!ept12_misconfigured(0x1000 | 7 | (6 << 3), 1, 39, false));
	CHECK(!ept12_misconfigured(0x1000 | 7 | (0 << 3), 1, 39, false));   /* UC */
	CHECK(ept12_misconfigured(0x1000 | 7 | (1 << 3), 2, 39, false));    /* non-leaf reserved bits */
	CHECK(ept12_misconfigured(0x1000 | 7 | (1 << 6), 4, 39, false));    /* bit 6 of a PML4E (vmxfuzz seed=7) */
	CHECK(ept12_misconfigured(0x1000 | 7 | (1 << 6), 3, 39, false));    /* ... of a PDPTE pointing to a PD */
	CHECK(!ept12_misconfigured(0x1000 | 7 | (1 << 6), 1, 39, false));   /* ignore-PAT in a leaf */
	CHECK(ept12_misconfigured((1ULL << 40) | 7, 1, 39, false));         /* beyond MAXPHYADDR */
	CHECK(ept12_misconfigured(0x1000 | 7 | (1 << 7), 4, 39, false));    /* PS in a PML4E */
	CHECK(ept12_misconfigured(0x201000 | 7 | (1 << 7) | (6 << 3), 2, 39, false)); /* unaligned 2 MiB */
	CHECK(!ept12_misconfigured(0x200000 | 7 | (1 << 7) | (6 << 3), 2, 39, false));
	struct ept12_walk w;
	build(0x777000 | 2, 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 1, &w), EPT12_MISCONFIG);
}

/* Execute-only entries: a misconfiguration unless offered (IA32_VMX_EPT_VPID_CAP bit 0); offered,
 * a fetch passes and a read is a violation with rights X. */
TEST(ept12_execute_only)
{
	struct ept12_env xo = env;
	struct ept12_walk w;

	xo.exec_only = true;
	CHECK(!ept12_misconfigured(0x1000 | 4, 1, 39, true));
	CHECK(ept12_misconfigured(0x1000 | 6, 1, 39, true));          /* W+X without R: still */
	build(0x777000 | 4 | (6 << 3), 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 4, &w), EPT12_MISCONFIG);
	CHECK_EQ(ept12_walk(&xo, pg(0), 0x205000, 4, &w), EPT12_OK);
	CHECK_EQ(ept12_walk(&xo, pg(0), 0x205000, 1, &w), EPT12_VIOLATION);
	CHECK_EQ(w.rights, 4);
}

/* Accessed and dirty flags (SDM 29.3.5): only with EPTP bit 6; A in every entry used that lacks it,
 * D in the leaf of a write; nothing for a violation's leaf D. */
TEST(ept12_walk_accessed_dirty)
{
	struct ept12_walk w;
	const u64 a = 1 << 8, d = 1 << 9;

	build(0x777000 | 7 | (6 << 3), 0, 7, 7);
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 2, &w), EPT12_OK);
	CHECK(!w.ad);
	for (int l = 1; l <= 4; l++)
		CHECK_EQ(w.ad_set[l], 0ULL);
	CHECK_EQ(ept12_walk(&env, pg(0) | 6 | (3 << 3) | (1 << 6), 0x205000, 1, &w), EPT12_OK);
	CHECK(w.ad);
	for (int l = 1; l <= 4; l++)
		CHECK_EQ(w.ad_set[l], a);
	CHECK_EQ(w.entry_pa[4], pg(0));
	CHECK_EQ(w.entry_pa[3], pg(1));
	CHECK_EQ(w.entry_pa[2], pg(2) + 8);
	CHECK_EQ(w.entry_pa[1], pg(3) + 5 * 8);
	CHECK_EQ(w.entry[1], 0x777000ULL | 7 | (6 << 3));
	CHECK_EQ(ept12_walk(&env, pg(0) | (1 << 6), 0x205000, 2, &w), EPT12_OK);
	CHECK_EQ(w.ad_set[1], a | d);
	/* A already set above, the leaf accessed but clean: a write sets D alone. */
	mem[0][0] |= a;
	mem[1][0] |= a;
	mem[2][1] |= a;
	mem[3][5] |= a;
	CHECK_EQ(ept12_walk(&env, pg(0) | (1 << 6), 0x205000, 2, &w), EPT12_OK);
	CHECK_EQ(w.ad_set[4] | w.ad_set[3] | w.ad_set[2], 0ULL);
	CHECK_EQ(w.ad_set[1], d);
	CHECK_EQ(ept12_walk(&env, pg(0) | (1 << 6), 0x205000, 1, &w), EPT12_OK);
	CHECK_EQ(w.ad_set[1], 0ULL);
	/* A 2 MiB leaf gets D as the leaf. */
	build(0, 0x40000000ULL | 7 | (1 << 7) | (6 << 3) | a, 7 | a, 7 | a);
	CHECK_EQ(ept12_walk(&env, pg(0) | (1 << 6), 0x212345, 2, &w), EPT12_OK);
	CHECK_EQ(w.level, 2);
	CHECK_EQ(w.ad_set[2], d);
}

/* The access of an EPT violation: as given, but a guest paging-structure access with A/D is R+W. */
TEST(ept12_access_types)
{
	CHECK_EQ(ept12_access(0x181, false), 1U);
	CHECK_EQ(ept12_access(0x181, true), 1U);         /* a translated linear address: as given */
	CHECK_EQ(ept12_access(0x084, true), 3U);         /* a paging-structure access */
	CHECK_EQ(ept12_access(0x082, true), 3U);
	CHECK_EQ(ept12_access(0x081, false), 1U);
	CHECK_EQ(ept12_access(0x001, true), 1U);         /* PDPTE load (no linear address): a read */
}

TEST(ept12_walk_table_outside_memory)
{
	struct ept12_walk w;
	build(0x777000 | 7, 0, 7, 7);
	mem[1][0] = 0xfff000 | 7; /* PD outside the fake memory */
	CHECK_EQ(ept12_walk(&env, pg(0), 0x205000, 1, &w), EPT12_BAD_TABLE);
	CHECK_EQ(ept12_walk(&env, 0xabc000, 0x205000, 1, &w), EPT12_BAD_TABLE);
}

TEST(nested_cr_composition)
{
	u64 m01 = 0x20;          /* L0 owns NE */
	u64 m12 = 0x8;           /* L1 owns TS */
	CHECK_EQ(nested_cr_mask02(m01, m12), 0x28ULL);
	/* L2 reads: TS from L1's shadow, NE from L1's guest value */
	CHECK_EQ(nested_cr_shadow02(m01, m12, 0x0 /* shadow TS=0 */, 0x80000031 | 0x8), 0x20ULL);
	CHECK_EQ(nested_cr_shadow02(m01, m12, 0x8, 0x80000011), 0x8ULL);
	/* Back in VMCS12: the real bits, except NE which L0 keeps 1 and the shadow holds L2's view */
	CHECK_EQ(nested_cr_guest12(m01 | m12, m12, 0x80000039, 0x08), 0x80000019ULL);
	CHECK_EQ(nested_cr_guest12(m01 | m12, m12, 0x80000031, 0x20), 0x80000031ULL);
	/* A write exits to L1 only if it changes a bit L1 owns */
	CHECK(!nested_cr_write_exits_to_l1(m12, 0x0, 0x80000031));
	CHECK(nested_cr_write_exits_to_l1(m12, 0x0, 0x80000039));
	CHECK(!nested_cr_write_exits_to_l1(m12, 0x8, 0x80000039));
	CHECK(!nested_cr_write_exits_to_l1(0, 0, ~0ULL));
}

/* EPT02 leaves: EPT12 (level, rights, type) composed with EPT01 (level, rights). */
TEST(ept02_compose_4k_and_2m)
{
	struct ept12_walk w = { .gpa1 = 0x40012345ULL, .leaf = 0x40000000ULL | 7 | (1 << 7) | (6 << 3) | (1 << 6),
				.rights = 7, .level = 2 };
	struct ept02_leaf l;

	/* EPT12 2 MiB, EPT01 1 GiB, 2 MiB pages available: one 2 MiB leaf, both ends aligned. */
	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 3, true, &l);
	CHECK_EQ(l.level, 2);
	CHECK_EQ(l.gpa2, 0x200000ULL);
	CHECK_EQ(l.entry, 0x40000000ULL | 7 | (1 << 7) | (6 << 3) | (1 << 6));
	/* EPT01 splits the L1 range into 4 KiB pages (a trapped page near): 4 KiB. */
	ept02_compose(0x212345, &w, 0x40012000ULL | 7, 1, true, &l);
	CHECK_EQ(l.level, 1);
	CHECK_EQ(l.gpa2, 0x212000ULL);
	CHECK_EQ(l.entry, 0x40012000ULL | 7 | (6 << 3) | (1 << 6));
	/* No 2 MiB EPT pages on this CPU: 4 KiB. */
	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 3, false, &l);
	CHECK_EQ(l.level, 1);
	/* EPT12 maps 4 KiB: 4 KiB, whatever EPT01 has. */
	w.level = 1;
	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 2, true, &l);
	CHECK_EQ(l.level, 1);
	CHECK_EQ(l.gpa2, 0x212000ULL);
}

/* With A/D, a clean EPT12 leaf gives an EPT02 leaf without write; a dirty one keeps it. */
TEST(ept02_compose_clean_leaf_read_only)
{
	struct ept12_walk w = { .gpa1 = 0x40012345ULL, .leaf = 0x40012000ULL | 7 | (6 << 3) | (1 << 8),
				.rights = 7, .level = 1, .ad = true };
	struct ept02_leaf l;

	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 3, true, &l);
	CHECK_EQ(l.entry & 7, 5ULL);
	w.leaf |= 1 << 9;
	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 3, true, &l);
	CHECK_EQ(l.entry & 7, 7ULL);
	w.leaf &= ~(1ULL << 9);
	w.ad = false;
	ept02_compose(0x212345, &w, 0x40000000ULL | 7 | (1 << 7), 3, true, &l);
	CHECK_EQ(l.entry & 7, 7ULL);
}

TEST(ept02_compose_rights_are_the_intersection)
{
	/* 1 GiB EPT12 leaf: the 2 MiB EPT02 leaf is the 2 MiB chunk of it that holds gpa1. */
	struct ept12_walk w = { .gpa1 = 0x1c0323456ULL, .leaf = 0x1c0000000ULL | 3 | (1 << 7) | (0 << 3),
				.rights = 3, .level = 3 };
	struct ept02_leaf l;

	ept02_compose(0x80323456ULL, &w, 0x1c0200000ULL | 5 | (1 << 7) | (6 << 3), 2, true, &l);
	CHECK_EQ(l.level, 2);
	CHECK_EQ(l.gpa2, 0x80200000ULL);
	/* R/W from EPT12 AND R/X from EPT01 = R; UC memory type from EPT12, not WB from EPT01. */
	CHECK_EQ(l.entry, 0x1c0200000ULL | 1 | (1 << 7));
}

TEST(ept02_cache_pick_hit_empty_lru)
{
	struct ept02_slot s[4] = {
		{ .eptp12 = 0x1000, .pml4 = 0xa000, .last_use = 5 },
		{ .eptp12 = 0x2000, .pml4 = 0xb000, .last_use = 2 },
		{ .eptp12 = 0x3000, .pml4 = 0, .last_use = 0 },
		{ .eptp12 = 0x4000, .pml4 = 0xc000, .last_use = 9 },
	};
	bool hit;

	CHECK_EQ(ept02_cache_pick(s, 4, 0x2000, &hit), 1U);
	CHECK(hit);
	/* An empty slot keyed like the EPTP is not a hit: it holds no EPT02. */
	CHECK_EQ(ept02_cache_pick(s, 4, 0x3000, &hit), 2U);
	CHECK(!hit);
	CHECK_EQ(ept02_cache_pick(s, 4, 0x5000, &hit), 2U);
	CHECK(!hit);
	/* Full: the least recently used one. */
	s[2].pml4 = 0xd000;
	s[2].last_use = 7;
	CHECK_EQ(ept02_cache_pick(s, 4, 0x5000, &hit), 1U);
	CHECK(!hit);
	CHECK_EQ(ept02_cache_pick(s, 1, 0x5000, &hit), 0U);
}

TEST(nested_host_msr_checks)
{
	CHECK(x86_pat_valid(0x0007040600070406ULL));
	CHECK(!x86_pat_valid(0x0007040600070402ULL)); /* type 2 */
	CHECK(!x86_pat_valid(0x0807040600070406ULL)); /* type 8 in the top entry */
	CHECK(nested_host_efer_valid(0xd01, true));
	CHECK(!nested_host_efer_valid(0xd01, false));   /* LMA/LME set for a 32-bit host */
	CHECK(!nested_host_efer_valid(0x901, true));    /* LME without LMA */
	CHECK(!nested_host_efer_valid(0xd03, true));    /* reserved bit 1 */
	CHECK(nested_host_efer_valid(0x801, false));
}

TEST(nested_bitmap_merge)
{
	static u64 l0[1024], l1[1024], out[1024];
	static struct sparse_bitmap s;

	memset(l0, 0, sizeof(l0));
	for (u32 i = 0; i < 1024; i++)
		l1[i] = 0x0101010101010101ULL * (i & 0xff);
	l0[0] = 1;
	l0[0x8900 / 64] = 1ULL << (0x8900 % 64);
	l0[1023] = 1ULL << 63;
	s.bits = l0;
	s.nwords = 1024;
	sparse_bitmap_index(&s);
	CHECK_EQ(s.n, 3U);
	CHECK_EQ(s.idx[1], 0x8900 / 64);
	memset(out, 0xaa, sizeof(out));
	bitmap_merge(out, l1, &s);
	for (u32 i = 0; i < 1024; i++)
		if (!CHECK_EQ(out[i], l1[i] | l0[i]))
			break;
	/* A change of L0's bitmap counts once reindexed; a 512-word bitmap (MSRs) stops there. */
	l0[1023] = 0;
	l0[5] = 2;
	s.nwords = 512;
	u32 gen = s.generation;
	sparse_bitmap_index(&s);
	CHECK_EQ(s.generation, gen + 1); /* VMCS02's merges kept across entries (bitmap-watch.c) are stale */
	CHECK_EQ(s.n, 2U);
	CHECK_EQ(s.idx[1], 5);
	out[600] = 0x1234;
	bitmap_merge(out, l1, &s);
	CHECK_EQ(out[5], l1[5] | 2);
	CHECK_EQ(out[600], 0x1234ULL); /* past nwords: untouched */
}

TEST(nested_io_exits)
{
	static u8 bm[8192];

	memset(bm, 0, sizeof(bm));
	bm[0x80 / 8] |= 1 << (0x80 % 8);
	bm[0xffff / 8] |= 0x80;
	/* Neither control: never; unconditional: always. */
	CHECK(!nested_io_exits_to_l1(0, bm, bm + 4096, 0x80, 1));
	CHECK(nested_io_exits_to_l1(PROC_UNCOND_IO_EXITING, bm, bm + 4096, 0x70, 1));
	/* Bitmaps win over unconditional exiting (SDM 26.1.3). */
	CHECK(!nested_io_exits_to_l1(PROC_USE_IO_BITMAPS | PROC_UNCOND_IO_EXITING, bm, bm + 4096, 0x70, 4));
	CHECK(nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0x80, 1));
	/* Any byte of a wider access: 0x7e..0x81 covers 0x80; 0x7c..0x7f does not. */
	CHECK(nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0x7e, 4));
	CHECK(!nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0x7c, 4));
	CHECK(!nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0x81, 2));
	/* Bitmap B: port 0xffff; and wrap-around past it exits whatever the bits say. */
	CHECK(nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0xffff, 1));
	bm[0xffff / 8] = 0;
	CHECK(!nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0xfffe, 2));
	CHECK(nested_io_exits_to_l1(PROC_USE_IO_BITMAPS, bm, bm + 4096, 0xfffe, 4));
}

TEST(apicv_vectoring_info_bochs_stale)
{
	const u32 ext = INTR_INFO_VALID | INTR_TYPE_EXTERNAL, idt = 0x264050;

	/* What Bochs 2.7 reported delivering virtual interrupt 0x40: INT 15H (a BIOS call recorded long
	 * before), at the paging-structure read for IDT entry 0x40. */
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15, 0, 0x4000, true, idt + 0x400,
				      idt + 16 * 0x40, 16), ext | 0x40);
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15, 0, 0x4000, true, idt + 0x40f,
				      idt + 16 * 0x40, 16), ext | 0x40);
	/* The same INT 15H faulting on its own IDT entry, or on the stack: kept. */
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15, 0, 0x4000, true, idt + 0x150,
				      idt + 16 * 0x40, 16), INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15);
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15, 0, 0x4000, true, idt + 0x410,
				      idt + 16 * 0x40, 16), INTR_INFO_VALID | INTR_TYPE_SW_INTERRUPT | 0x15);
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 14, 0, 0x4000, false, idt + 0x400,
				      idt + 16 * 0x40, 16), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 14);
	/* An external interrupt nobody injected (a stale one of L1's): the virtual interrupt. */
	CHECK_EQ(apicv_vectoring_info(ext | 0xef, 0, 0x4100, false, 0, idt + 16 * 0x41, 16), ext | 0x41);
	CHECK_EQ(apicv_vectoring_info(ext | 0xef, INTR_INFO_VALID | INTR_TYPE_NMI | 2, 0x4100, false, 0,
				      idt + 16 * 0x41, 16), ext | 0x41);
	/* The external interrupt injected at the entry: kept, unless the fault was on IDT entry SVI. */
	CHECK_EQ(apicv_vectoring_info(ext | 0x30, ext | 0x30, 0x4100, false, 0, idt + 16 * 0x41, 16), ext | 0x30);
	CHECK_EQ(apicv_vectoring_info(ext | 0x30, ext | 0x30, 0x4100, true, idt + 0x410, idt + 16 * 0x41, 16),
		 ext | 0x41);
	/* No vector in service: nothing virtual was delivered. */
	CHECK_EQ(apicv_vectoring_info(ext | 0xef, 0, 0x0040, true, idt, idt, 16), ext | 0xef);
	/* Protected mode (8-byte gates) and real mode (4-byte vectors). */
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 13, 0, 0x5000, true, 0x1000 + 8 * 0x50 + 4,
				      0x1000 + 8 * 0x50, 8), ext | 0x50);
	CHECK_EQ(apicv_vectoring_info(INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 13, 0, 0x5000, true, 4 * 0x50 + 4,
				      4 * 0x50, 4), INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 13);
}

TEST(apicv_write_virtualized_offsets)
{
	/* TPR shadow alone: offset 080H itself, up to a dword. */
	CHECK(apicv_write_virtualized(0, 0x80, 4));
	CHECK(apicv_write_virtualized(0, 0x80, 1));
	CHECK(!apicv_write_virtualized(0, 0x81, 1));
	CHECK(!apicv_write_virtualized(0, 0x80, 8));
	CHECK(!apicv_write_virtualized(0, 0xb0, 4));
	/* Virtual-interrupt delivery: TPR, EOI, ICR low. */
	CHECK(apicv_write_virtualized(PROC2_VIRTUAL_INTR_DELIVERY, 0xb0, 4));
	CHECK(apicv_write_virtualized(PROC2_VIRTUAL_INTR_DELIVERY, 0x300, 4));
	CHECK(!apicv_write_virtualized(PROC2_VIRTUAL_INTR_DELIVERY, 0x310, 4));
	CHECK(!apicv_write_virtualized(PROC2_VIRTUAL_INTR_DELIVERY, 0x380, 4));
	/* APIC-register virtualization: the list of SDM 29.4.3.1, within the first dword. */
	u32 arv = PROC2_APIC_REGISTER_VIRT;
	static const u32 yes[] = { 0x20, 0x80, 0xb0, 0xd0, 0xe0, 0xf0, 0x280, 0x300, 0x310, 0x320, 0x330,
				   0x340, 0x350, 0x360, 0x370, 0x380, 0x3e0 };
	static const u32 no[] = { 0x0, 0x30, 0x90, 0xa0, 0xc0, 0x100, 0x200, 0x2f0, 0x390, 0x3f0, 0x400, 0xff0 };
	for (u32 i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(apicv_write_virtualized(arv, yes[i], 4));
	for (u32 i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!apicv_write_virtualized(arv, no[i], 4));
	CHECK(apicv_write_virtualized(arv, 0x382, 2));
	CHECK(!apicv_write_virtualized(arv, 0x382, 4)); /* crosses the dword */
	CHECK(!apicv_write_virtualized(arv, 0x384, 4)); /* past the register's first dword */
	CHECK(!apicv_write_virtualized(arv, 0x380, 0));
}

TEST(apicv_self_ipi_and_vectors)
{
	static u8 page[4096];

	CHECK_EQ(apicv_self_ipi_vector(0x40042), 0x42);
	CHECK_EQ(apicv_self_ipi_vector(0x40842), 0x42);  /* destination mode is not checked */
	CHECK_EQ(apicv_self_ipi_vector(0x4000f), 0);     /* vector below 16 */
	CHECK_EQ(apicv_self_ipi_vector(0x00042), 0);     /* no shorthand */
	CHECK_EQ(apicv_self_ipi_vector(0xc0042), 0);     /* all excluding self */
	CHECK_EQ(apicv_self_ipi_vector(0x40442), 0);     /* delivery mode 100 (NMI) */
	CHECK_EQ(apicv_self_ipi_vector(0x48042), 0);     /* level-triggered */
	CHECK_EQ(apicv_self_ipi_vector(0x140042), 0);    /* reserved bit 20 */
	memset(page, 0, sizeof(page));
	CHECK_EQ(apicv_highest_vector(page, 0x100), 0);
	page[0x100 + 0x10 * 1] = 0x02;                   /* vector 33 */
	page[0x100 + 0x10 * 7 + 3] = 0x80;               /* vector 255 */
	CHECK_EQ(apicv_highest_vector(page, 0x100), 255);
	page[0x100 + 0x10 * 7 + 3] = 0;
	CHECK_EQ(apicv_highest_vector(page, 0x100), 33);
	CHECK_EQ(apicv_vppr(0x30, 0x41), 0x40);
	CHECK_EQ(apicv_vppr(0x52, 0x41), 0x52);
	CHECK_EQ(apicv_vppr(0x45, 0x41), 0x45);
}

TEST(nested_exception_exits_bitmap_and_pfec)
{
	CHECK(nested_exception_exits(1u << 13, 0, 0, 13, 0));
	CHECK(!nested_exception_exits(1u << 6, 0, 0, 13, 0));
	CHECK(!nested_exception_exits(~0u, 0, 0, 32, 0));
	/* #PF: PFEC & mask == match -> bit 14 decides; otherwise its inverse. */
	CHECK(nested_exception_exits(1u << 14, 0, 0, 14, 3));
	CHECK(!nested_exception_exits(0, 0, 0, 14, 3));
	CHECK(!nested_exception_exits(1u << 14, 1, 0, 14, 3));
	CHECK(nested_exception_exits(0, 1, 0, 14, 3));
	CHECK(nested_exception_exits(1u << 14, 2, 2, 14, 3));
}

TEST(nested_l2_nmi_blocked_until_exit_only_nmi_exiting_without_virtual_nmis)
{
	const u32 nmi = INTR_INFO_VALID | INTR_TYPE_NMI | 2;

	CHECK(nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING, INTERRUPTIBILITY_NMI, 0));
	CHECK(nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING | 0x16, 0, nmi));
	CHECK(!nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING, 0, 0));
	/* an NMI not injected (valid bit clear), or another type of event */
	CHECK(!nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING, 0, nmi & ~INTR_INFO_VALID));
	CHECK(!nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING, 0, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | 2));
	/* virtual NMIs: the CPU's virtual-NMI blocking is L2's; no NMI exiting: IRET lifts it */
	CHECK(!nested_l2_nmi_blocked_until_exit(PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, INTERRUPTIBILITY_NMI, nmi));
	CHECK(!nested_l2_nmi_blocked_until_exit(0, INTERRUPTIBILITY_NMI, nmi));
}
