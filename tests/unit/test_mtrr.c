/* MTRR memory types (SDM Vol. 3, 11.11): mtrr_range_type against hand-worked cases and a per-address
 * model of the SDM rules (11.11.4.1 precedences, 11.11.2.2 fixed ranges, 11.11.2.3 variable ranges),
 * plus the MSR interface (mtrr_state_write, mtrr_is_mtrr_msr). */
#include <stdlib.h>
#include <lib/mtrr.h>
#include "unit.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define VALID (1ULL << 11)

static void init(struct mtrr_state *m, int def, bool e, bool fe, int fixtype, u32 maxphy)
{
	memset(m, 0, sizeof(*m));
	m->enabled = e;
	m->fixed_enabled = fe;
	m->def_type = (u8)def;
	memset(m->fixed, fixtype, sizeof(m->fixed));
	m->nvar = 8;
	m->phys_mask = (1ULL << maxphy) - 1;
}

/* Variable range n: [base, base + size), size a power of two, as a BIOS programs it. */
static void set_var(struct mtrr_state *m, u32 n, u64 base, u64 size, int type)
{
	m->var[n].base = base | (u64)type;
	m->var[n].mask = (~(size - 1) & m->phys_mask & ~0xfffULL) | VALID;
}

/* ------------------------------------------------------------------------------------------------ */
/* A per-address model, written from the SDM independently of the library. */

static int model_fixed_index(u64 a)
{
	static const struct {
		u64 start, end, gran;
		int first;
	} fx[] = {
		{ 0x00000, 0x80000, 0x10000, 0 },  /* IA32_MTRR_FIX64K_00000 */
		{ 0x80000, 0xa0000, 0x4000, 8 },   /* IA32_MTRR_FIX16K_80000 */
		{ 0xa0000, 0xc0000, 0x4000, 16 },  /* IA32_MTRR_FIX16K_A0000 */
		{ 0xc0000, 0x100000, 0x1000, 24 }, /* IA32_MTRR_FIX4K_C0000 .. F8000 */
	};
	for (u32 i = 0; i < ARRAY_SIZE(fx); i++)
		if (a >= fx[i].start && a < fx[i].end)
			return fx[i].first + (int)((a - fx[i].start) / fx[i].gran);
	return -1;
}

static int model_type(const struct mtrr_state *m, u64 a)
{
	bool seen[8] = { false };
	int nseen = 0, last = -1;

	if (!m->enabled)
		return MT_UC;
	if (m->fixed_enabled && a < 0x100000)
		return m->fixed[model_fixed_index(a)];
	for (u32 i = 0; i < m->nvar; i++) {
		u64 mask = m->var[i].mask & m->phys_mask & ~0xfffULL;
		int t = (int)(m->var[i].base & 0xff);

		if (!(m->var[i].mask & VALID))
			continue;
		if ((a & mask) != (m->var[i].base & mask))
			continue;
		if (t < 8 && !seen[t]) {
			seen[t] = true;
			nseen++;
		}
		last = t;
	}
	if (nseen == 0)
		return m->def_type;
	if (seen[MT_UC])
		return MT_UC;
	if (nseen == 1)
		return last;
	if (nseen == 2 && seen[MT_WT] && seen[MT_WB])
		return MT_WT;
	return MT_UC; /* undefined by the SDM; the library documents UC */
}

/* ------------------------------------------------------------------------------------------------ */

TEST(mtrr_disabled_is_uc)
{
	struct mtrr_state m;

	/* IA32_MTRR_DEF_TYPE.E clear: all of memory is UC, whatever the other MTRRs say (11.11.2.1);
	 * FE has no effect then. */
	for (int fe = 0; fe < 2; fe++) {
		init(&m, MT_WB, false, fe, MT_WB, 36);
		set_var(&m, 0, 0, 64 * GiB, MT_WB);
		CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 0xc0000, 4 * KiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&m, 0, 512 * GiB), MT_UC);
	}
}

TEST(mtrr_default_type_when_nothing_matches)
{
	static const int types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };
	struct mtrr_state m;

	for (u32 i = 0; i < ARRAY_SIZE(types); i++) {
		init(&m, types[i], true, false, MT_UC, 36);
		CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 0xa0000, 4 * KiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 0, 64 * GiB), types[i]);
		/* A variable range elsewhere does not affect these ranges. */
		set_var(&m, 5, 8 * GiB, 1 * GiB, types[(i + 1) % ARRAY_SIZE(types)]);
		CHECK_EQ(mtrr_range_type(&m, 7 * GiB, 1 * GiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 9 * GiB, 1 * GiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 8 * GiB - 4 * KiB, 4 * KiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 9 * GiB, 4 * KiB), types[i]);
		CHECK_EQ(mtrr_range_type(&m, 8 * GiB, 1 * GiB), types[(i + 1) % ARRAY_SIZE(types)]);
	}
}

TEST(mtrr_fixed_uniform)
{
	struct mtrr_state m;

	/* Fixed ranges all WB; default and a variable range over the first 4 GiB say UC: the fixed
	 * ranges win below 1 MiB (11.11.2.2), the variable range above. */
	init(&m, MT_UC, true, true, MT_WB, 36);
	set_var(&m, 0, 0, 4 * GiB, MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 512 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 512 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 128 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 256 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xff000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * MiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * MiB, 1 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 2 * MiB, 2 * MiB), MT_UC);
}

/* Every one of the 88 fixed ranges, written through its MSR: one range UC among WB ranges. */
TEST(mtrr_fixed_msr_layout_and_granularity)
{
	static const struct {
		u32 msr;
		u64 start, gran;
	} msrs[] = {
		{ MSR_MTRR_FIX64K_00000, 0x00000, 0x10000 }, { MSR_MTRR_FIX16K_80000, 0x80000, 0x4000 },
		{ MSR_MTRR_FIX16K_A0000, 0xa0000, 0x4000 },  { 0x268, 0xc0000, 0x1000 },
		{ 0x269, 0xc8000, 0x1000 },                  { 0x26a, 0xd0000, 0x1000 },
		{ 0x26b, 0xd8000, 0x1000 },                  { 0x26c, 0xe0000, 0x1000 },
		{ 0x26d, 0xe8000, 0x1000 },                  { 0x26e, 0xf0000, 0x1000 },
		{ 0x26f, 0xf8000, 0x1000 },
	};
	const u64 all_wb = 0x0606060606060606ULL;
	struct mtrr_state m;
	int ranges = 0;

	init(&m, MT_UC, true, true, MT_UC, 36);
	for (u32 k = 0; k < ARRAY_SIZE(msrs); k++)
		REQUIRE_EQ(mtrr_state_write(&m, msrs[k].msr, all_wb), 0);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_WB);

	for (u32 k = 0; k < ARRAY_SIZE(msrs); k++) {
		for (int b = 0; b < 8; b++) {
			u64 start = msrs[k].start + (u64)b * msrs[k].gran, g = msrs[k].gran;

			REQUIRE_EQ(mtrr_state_write(&m, msrs[k].msr, all_wb & ~(0xffULL << (8 * b))), 0);
			ranges++;
			/* The range itself, and each 4 KiB page of it. */
			CHECK_EQ(mtrr_range_type(&m, start, g), MT_UC);
			for (u64 a = start; a < start + g; a += 4 * KiB)
				CHECK_EQ(mtrr_range_type(&m, a, 4 * KiB), MT_UC);
			/* Its neighbours. */
			if (start > 0)
				CHECK_EQ(mtrr_range_type(&m, start - 4 * KiB, 4 * KiB), MT_WB);
			if (start + g < 1 * MiB)
				CHECK_EQ(mtrr_range_type(&m, start + g, 4 * KiB), MT_WB);
			/* Any larger aligned range around it is mixed. */
			for (u64 s = 2 * g; s <= 1 * MiB; s *= 2)
				CHECK_EQ(mtrr_range_type(&m, start & ~(s - 1), s), MT_MIXED);
			/* Check against the model for the whole first MiB. */
			for (u64 a = 0; a < 1 * MiB; a += 4 * KiB)
				if (!CHECK_EQ(mtrr_range_type(&m, a, 4 * KiB), model_type(&m, a)))
					return;
			REQUIRE_EQ(mtrr_state_write(&m, msrs[k].msr, all_wb), 0);
		}
	}
	CHECK_EQ(ranges, MTRR_FIXED_COUNT);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_WB);
}

TEST(mtrr_fixed_mixed_inside_first_mib)
{
	struct mtrr_state m;

	/* A PC layout: RAM WB below 640 KiB, VGA UC, option/BIOS ROMs WP, one WT 4 KiB page. */
	init(&m, MT_WB, true, true, MT_WB, 36);
	memset(m.fixed + 16, MT_UC, 8);  /* 0xA0000-0xBFFFF */
	memset(m.fixed + 24, MT_WP, 64); /* 0xC0000-0xFFFFF */
	m.fixed[24 + 0x10] = MT_WT;      /* 0xD0000 */
	CHECK_EQ(mtrr_range_type(&m, 0, 512 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 128 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x9c000, 16 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x9f000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xa0000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xa0000, 128 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 256 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 64 * KiB), MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 128 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0xd0000, 4 * KiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 0xd0000, 8 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0xd1000, 4 * KiB), MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 0xe0000, 128 * KiB), MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_MIXED);
}

TEST(mtrr_range_straddling_1mib)
{
	struct mtrr_state m;

	/* With fixed ranges enabled, a range reaching past 1 MiB is mixed (the caller must split it),
	 * even if every type involved is WB. */
	init(&m, MT_WB, true, true, MT_WB, 36);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * MiB, 1 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 512 * GiB), MT_MIXED);
	/* Fixed disabled: one type. */
	m.fixed_enabled = false;
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 512 * GiB), MT_WB);
}

TEST(mtrr_fixed_disabled_variable_applies_below_1mib)
{
	struct mtrr_state m;

	/* Fixed MTRRs hold garbage (UC/WT), FE clear: they must be ignored. */
	init(&m, MT_UC, true, false, MT_UC, 36);
	m.fixed[0] = MT_WT;
	m.fixed[20] = MT_WT;
	set_var(&m, 0, 0, 2 * GiB, MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xa0000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xff000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_MIXED);
	/* A UC variable range below 1 MiB applies too. */
	set_var(&m, 1, 0xa0000, 128 * KiB, MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xa0000, 128 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xbf000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x9f000, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 256 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_MIXED);
	/* With FE set again, the fixed ranges (now UC/WT) take over and ignore the variable ones. */
	m.fixed_enabled = true;
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * KiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 0x10000, 64 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 4 * KiB), MT_UC);
}

TEST(mtrr_variable_full_partial_none)
{
	struct mtrr_state m;

	init(&m, MT_UC, true, false, MT_UC, 36);
	set_var(&m, 0, 2 * GiB, 1 * GiB, MT_WB); /* [2G, 3G) */
	/* Fully covered: its type. */
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 512 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB + 500 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB - 2 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB - 4 * KiB, 4 * KiB), MT_WB);
	/* Not at all: default. */
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB - 2 * MiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB - 4 * KiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 6 * GiB, 1 * GiB), MT_UC);
	/* Partly: mixed. */
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 2 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * GiB), MT_MIXED);

	/* A 1 MiB WT range at 1 GiB + 1 MiB: mixed at 1 GiB and 2 MiB granularity, exact at 4 KiB. */
	set_var(&m, 3, 1 * GiB + 1 * MiB, 1 * MiB, MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 1 * MiB, 1 * MiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 2 * MiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 1 * MiB, 4 * KiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 2 * MiB - 4 * KiB, 4 * KiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 2 * MiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 1 * MiB - 4 * KiB, 4 * KiB), MT_UC);

	/* A single 4 KiB variable range. */
	set_var(&m, 7, 5 * GiB + 0x123000, 4 * KiB, MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB + 0x123000, 4 * KiB), MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB + 0x122000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB + 0x124000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB + 0x122000, 8 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB, 1 * GiB), MT_MIXED);
}

TEST(mtrr_invalid_ranges_ignored)
{
	struct mtrr_state m;

	init(&m, MT_WB, true, false, MT_WB, 36);
	set_var(&m, 0, 0, 4 * GiB, MT_UC);
	m.var[0].mask &= ~VALID;
	/* A stale range with V clear in every slot, some with garbage types. */
	for (u32 i = 1; i < m.nvar; i++) {
		m.var[i].base = (i * GiB) | MT_UC;
		m.var[i].mask = ~(GiB - 1) & m.phys_mask;
	}
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * GiB), MT_WB);
	/* Setting V through the MSR interface makes it count ... */
	REQUIRE_EQ(mtrr_state_write(&m, MSR_MTRR_PHYSBASE0 + 1, m.var[0].mask | VALID), 0);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 4 * GiB, 1 * GiB), MT_WB);
	/* ... and clearing it makes it vanish again. */
	REQUIRE_EQ(mtrr_state_write(&m, MSR_MTRR_PHYSBASE0 + 1, m.var[0].mask & ~VALID), 0);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	/* Ranges beyond nvar are not implemented and ignored even if they look valid. */
	m.nvar = 2;
	set_var(&m, 5, 0, 4 * GiB, MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
}

TEST(mtrr_overlap_precedence)
{
	struct mtrr_state m;

	/* 11.11.4.1: UC wins over anything; WT + WB -> WT; identical types -> that type. */
	init(&m, MT_WB, true, false, MT_WB, 36);
	set_var(&m, 0, 0, 4 * GiB, MT_WB);
	set_var(&m, 1, 3 * GiB, 1 * GiB, MT_UC);
	set_var(&m, 2, 1 * GiB, 1 * GiB, MT_WT);
	set_var(&m, 3, 2 * GiB, 512 * MiB, MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 512 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB + 2 * MiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_MIXED);

	/* WT and UC -> UC; WT, WB and UC together -> UC; the order of the ranges does not matter. */
	set_var(&m, 4, 1 * GiB + 256 * MiB, 256 * MiB, MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 256 * MiB, 256 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 256 * MiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 256 * MiB), MT_WT);
	{
		struct mtrr_state r = m;

		for (u32 i = 0; i < 5; i++)
			r.var[i] = m.var[4 - i];
		CHECK_EQ(mtrr_range_type(&r, 1 * GiB + 256 * MiB, 256 * MiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&r, 1 * GiB, 256 * MiB), MT_WT);
		CHECK_EQ(mtrr_range_type(&r, 3 * GiB, 1 * GiB), MT_UC);
		CHECK_EQ(mtrr_range_type(&r, 0, 1 * GiB), MT_WB);
	}

	/* UC below WB wins even when the default is WB and UC is declared first. */
	init(&m, MT_WB, true, false, MT_WB, 36);
	set_var(&m, 0, 0xe0000000, 512 * MiB, MT_UC);
	set_var(&m, 1, 0, 4 * GiB, MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xe0000000, 512 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xfee00000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000000, 512 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_MIXED);

	/* Undefined combinations (WC + WB, WP + WT): the library answers UC, the safe choice. */
	init(&m, MT_UC, true, false, MT_UC, 36);
	set_var(&m, 0, 0, 1 * GiB, MT_WB);
	set_var(&m, 1, 0, 1 * GiB, MT_WC);
	set_var(&m, 2, 1 * GiB, 1 * GiB, MT_WP);
	set_var(&m, 3, 1 * GiB, 1 * GiB, MT_WT);
	set_var(&m, 4, 2 * GiB, 1 * GiB, MT_WC);
	set_var(&m, 5, 2 * GiB, 1 * GiB, MT_WC);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_WC);
}

TEST(mtrr_phys_mask)
{
	struct mtrr_state m;

	/* MAXPHYADDR 36. A mask with all bits 63:12 set (bits above MAXPHYADDR are reserved and must
	 * not be taken as address bits) still describes a 1 GiB range. */
	init(&m, MT_UC, true, false, MT_UC, 36);
	m.var[0].base = 1 * GiB | MT_WB;
	m.var[0].mask = 0xffffffffc0000000ULL | VALID;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_MIXED);
	/* Reserved base bits above MAXPHYADDR (and in 11:8) are ignored as well. */
	m.var[0].base = (1ULL << 40) | (1ULL << 63) | 1 * GiB | 0xf00 | MT_WB;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 12 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_UC);
	/* Reserved mask bits 10:0 do not shrink the range to less than a page. */
	m.var[0].base = 1 * GiB | MT_WB;
	m.var[0].mask = (0xfc0000000ULL) | VALID | 0x7ff;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 4 * KiB, 4 * KiB), MT_WB);

	/* The same mask value under MAXPHYADDR 39 leaves bits 38:36 out of the comparison: the range
	 * repeats every 64 GiB (the SDM's match rule, (addr & mask) == (base & mask)). */
	init(&m, MT_UC, true, false, MT_UC, 39);
	m.var[0].base = 1 * GiB | MT_WB;
	m.var[0].mask = 0xfc0000000ULL | VALID;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 65 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 129 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 64 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 64 * GiB), MT_MIXED);
	/* Properly programmed for 39 bits, it does not. */
	m.var[0].mask = 0x7fc0000000ULL | VALID;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 65 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 64 * GiB, 64 * GiB), MT_UC);
}

TEST(mtrr_non_contiguous_mask)
{
	struct mtrr_state m;

	/* Bits 35:30 except 31: matches [1G, 2G) and [3G, 4G). */
	init(&m, MT_UC, true, false, MT_UC, 36);
	m.var[0].base = 1 * GiB | MT_WB;
	m.var[0].mask = (0xfc0000000ULL & ~(1ULL << 31)) | VALID;
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB + 2 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 2 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 5 * GiB, 1 * GiB), MT_UC);

	/* Bits 35:12 except 21: one page at 1 GiB and one at 1 GiB + 2 MiB. */
	m.var[0].mask = (0xffffff000ULL & ~(1ULL << 21)) | VALID;
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 2 * MiB, 4 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 4 * KiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 4 * MiB, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 2 * MiB, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB + 4 * MiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_MIXED);
}

TEST(mtrr_bios_layout_uc_default)
{
	struct mtrr_state m;

	/* 8.25 GiB of RAM; default UC; WB 0-2G, 2G-3G, 4G-8G, 8G-8.25G; the PCI hole 3G-4G takes the
	 * default. Fixed: WB below 640 KiB, UC VGA, WP ROMs. */
	init(&m, MT_UC, true, true, MT_WB, 36);
	memset(m.fixed + 16, MT_UC, 8);
	memset(m.fixed + 24, MT_WP, 64);
	set_var(&m, 0, 0, 2 * GiB, MT_WB);
	set_var(&m, 1, 2 * GiB, 1 * GiB, MT_WB);
	set_var(&m, 2, 4 * GiB, 4 * GiB, MT_WB);
	set_var(&m, 3, 8 * GiB, 256 * MiB, MT_WB);

	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 0x90000, 64 * KiB), MT_WB); /* four 16 KiB ranges, all WB */
	CHECK_EQ(mtrr_range_type(&m, 0x90000, 16 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 128 * KiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xa0000, 128 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xc0000, 256 * KiB), MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 0x80000, 512 * KiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 1 * MiB, 1 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xfec00000, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xfee00000, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 2 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 4 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 4 * GiB, 4 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 8 * GiB, 1 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 8 * GiB + 254 * MiB, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 8 * GiB + 256 * MiB, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 9 * GiB, 1 * GiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 16 * GiB), MT_MIXED);
}

TEST(mtrr_bios_layout_wb_default)
{
	struct mtrr_state m;

	/* Default WB, one UC range for the 32-bit PCI window at 3.5G-4G, fixed disabled. */
	init(&m, MT_WB, true, false, MT_UC, 39);
	set_var(&m, 0, 0xe0000000, 512 * MiB, MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 2 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 1 * GiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&m, 3 * GiB, 512 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xdfe00000, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0xe0000000, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 0xffe00000, 2 * MiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 4 * GiB, 1 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 4 * GiB, 4 * GiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * GiB), MT_MIXED);
}

/* ------------------------------------------------------------------------------------------------ */

TEST(mtrr_state_write_def_type)
{
	struct mtrr_state m;

	init(&m, MT_UC, false, false, MT_UC, 36);
	CHECK_EQ(mtrr_state_write(&m, MSR_MTRR_DEF_TYPE, 0xc06), 0);
	CHECK(m.enabled);
	CHECK(m.fixed_enabled);
	CHECK_EQ(m.def_type, MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_WB);

	CHECK_EQ(mtrr_state_write(&m, MSR_MTRR_DEF_TYPE, 0x804), 0);
	CHECK(m.enabled);
	CHECK(!m.fixed_enabled);
	CHECK_EQ(m.def_type, MT_WT);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_WT);

	/* FE without E: MTRRs disabled, everything UC. */
	CHECK_EQ(mtrr_state_write(&m, MSR_MTRR_DEF_TYPE, 0x406), 0);
	CHECK(!m.enabled);
	CHECK_EQ(m.def_type, MT_WB);
	CHECK_EQ(mtrr_range_type(&m, 0, 4 * KiB), MT_UC);
	CHECK_EQ(mtrr_range_type(&m, 1 * GiB, 1 * GiB), MT_UC);

	CHECK_EQ(mtrr_state_write(&m, MSR_MTRR_DEF_TYPE, 0), 0);
	CHECK(!m.enabled);
	CHECK(!m.fixed_enabled);
	CHECK_EQ(m.def_type, MT_UC);

	/* Type in bits 7:0; bits 9:8 are reserved and not taken as part of the type. */
	CHECK_EQ(mtrr_state_write(&m, MSR_MTRR_DEF_TYPE, 0x800 | 0x300 | MT_WP), 0);
	CHECK(m.enabled);
	CHECK(!m.fixed_enabled);
	CHECK_EQ(m.def_type, MT_WP);
	CHECK_EQ(mtrr_range_type(&m, 2 * GiB, 1 * GiB), MT_WP);
}

TEST(mtrr_state_write_variable_pairs)
{
	struct mtrr_state m, before;

	init(&m, MT_UC, true, false, MT_UC, 36);
	for (u32 n = 0; n < 8; n++) {
		CHECK_EQ(mtrr_state_write(&m, 0x200 + 2 * n, (n * GiB) | MT_WB), 0);
		CHECK_EQ(mtrr_state_write(&m, 0x201 + 2 * n, 0xfc0000000ULL | VALID), 0);
	}
	for (u32 n = 0; n < 8; n++) {
		CHECK_EQ(m.var[n].base, (n * GiB) | MT_WB);
		CHECK_EQ(m.var[n].mask, 0xfc0000000ULL | VALID);
		CHECK_EQ(mtrr_range_type(&m, n * GiB, 1 * GiB), MT_WB);
	}
	CHECK_EQ(mtrr_range_type(&m, 8 * GiB, 1 * GiB), MT_UC);
	/* 8 GiB made of eight WB ranges is uniformly WB; the library may answer MT_MIXED for a range
	 * that a variable range covers only in part (conservative: only smaller pages result). */
	{
		int t = mtrr_range_type(&m, 0, 8 * GiB);

		CHECK(t == MT_WB || t == MT_MIXED);
	}

	/* PHYSBASE8/PHYSMASK8 do not exist with nvar = 8: rejected, state untouched. */
	before = m;
	CHECK_EQ(mtrr_state_write(&m, 0x210, 8 * GiB | MT_WB), -1);
	CHECK_EQ(mtrr_state_write(&m, 0x211, 0xfc0000000ULL | VALID), -1);
	CHECK_EQ(mtrr_state_write(&m, 0x23f, 0xfc0000000ULL | VALID), -1);
	CHECK_MEM_EQ(&m, &before, sizeof(m));
	CHECK(!mtrr_is_mtrr_msr(&m, 0x210));
	CHECK(!mtrr_is_mtrr_msr(&m, 0x211));
	CHECK(mtrr_is_mtrr_msr(&m, 0x20f));

	/* With 10 variable ranges (some CPUs), 0x212/0x213 are MTRRs. */
	m.nvar = 10;
	CHECK(mtrr_is_mtrr_msr(&m, 0x213));
	CHECK(!mtrr_is_mtrr_msr(&m, 0x214));
	CHECK_EQ(mtrr_state_write(&m, 0x212, 9 * GiB | MT_WT), 0);
	CHECK_EQ(mtrr_state_write(&m, 0x213, 0xfc0000000ULL | VALID), 0);
	CHECK_EQ(mtrr_range_type(&m, 9 * GiB, 1 * GiB), MT_WT);
	CHECK_EQ(mtrr_state_write(&m, 0x214, 0), -1);

	/* No variable ranges at all. */
	m.nvar = 0;
	CHECK(!mtrr_is_mtrr_msr(&m, 0x200));
	CHECK(!mtrr_is_mtrr_msr(&m, 0x201));
	CHECK_EQ(mtrr_state_write(&m, 0x200, 0), -1);
	CHECK(mtrr_is_mtrr_msr(&m, MSR_MTRR_DEF_TYPE));

	/* The maximum. */
	m.nvar = MTRR_MAX_VAR;
	CHECK(mtrr_is_mtrr_msr(&m, 0x200 + 2 * MTRR_MAX_VAR - 1));
	CHECK(!mtrr_is_mtrr_msr(&m, 0x200 + 2 * MTRR_MAX_VAR));
	CHECK_EQ(mtrr_state_write(&m, 0x200 + 2 * MTRR_MAX_VAR - 1, 0x123800), 0);
	CHECK_EQ(m.var[MTRR_MAX_VAR - 1].mask, 0x123800);
}

TEST(mtrr_state_write_fixed)
{
	struct mtrr_state m;
	static const u32 fixed_msrs[] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
					  0x26b, 0x26c, 0x26d, 0x26e, 0x26f };

	init(&m, MT_UC, true, true, MT_UC, 36);
	/* Byte i of each MSR goes to range i of the MSR, in address order. */
	for (u32 k = 0; k < ARRAY_SIZE(fixed_msrs); k++)
		CHECK_EQ(mtrr_state_write(&m, fixed_msrs[k], 0x0706050403020100ULL + k * 0x1010101010101010ULL),
			 0);
	for (u32 k = 0; k < ARRAY_SIZE(fixed_msrs); k++)
		for (u32 i = 0; i < 8; i++)
			CHECK_EQ(m.fixed[8 * k + i], (u8)(i + 0x10 * k));
	CHECK_EQ(m.fixed[0], 0x00);
	CHECK_EQ(m.fixed[8], 0x10);
	CHECK_EQ(m.fixed[16], 0x20);
	CHECK_EQ(m.fixed[87], 0xa7);
}

TEST(mtrr_is_mtrr_msr_matches_state_write)
{
	struct mtrr_state m, before;
	static const u32 others[] = { 0x0, 0x10, 0x1b, MSR_MTRRCAP, 0x174, 0x1ff, 0x240, 0x24f,
				      0x251, 0x257, 0x25a, 0x267, 0x270, 0x277 /* PAT */,
				      0x2fe, 0x300, 0x480, 0xc0000080, 0xc0000100, 0x40000000 };

	for (u32 nvar = 0; nvar <= MTRR_MAX_VAR; nvar += 2) {
		init(&m, MT_UC, true, true, MT_UC, 36);
		m.nvar = nvar;
		for (u32 msr = 0; msr < 0x1000; msr++) {
			bool is = mtrr_is_mtrr_msr(&m, msr);
			bool want = msr == 0x2ff || msr == 0x250 || msr == 0x258 || msr == 0x259 ||
				    (msr >= 0x268 && msr <= 0x26f) || (msr >= 0x200 && msr < 0x200 + 2 * nvar);

			before = m;
			if (!CHECK_EQ(is, want) || !CHECK_EQ(mtrr_state_write(&m, msr, 0), want ? 0 : -1)) {
				printf("    msr %#x nvar %u\n", msr, nvar);
				return;
			}
			if (!want)
				CHECK_MEM_EQ(&m, &before, sizeof(m));
			m = before;
		}
		for (u32 i = 0; i < ARRAY_SIZE(others); i++) {
			if (others[i] >= 0x200 && others[i] < 0x200 + 2 * nvar)
				continue;
			CHECK(!mtrr_is_mtrr_msr(&m, others[i]));
			CHECK_EQ(mtrr_state_write(&m, others[i], 0x806), -1);
		}
		/* The capability MSR is read-only. */
		CHECK(!mtrr_is_mtrr_msr(&m, MSR_MTRRCAP));
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* Randomised: mtrr_range_type against the per-address model. */

static u64 rng_state;

static u64 rnd64(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static u64 rnd(u64 n)
{
	return rnd64() % n;
}

static const int rand_types[] = { MT_UC, MT_WC, MT_WT, MT_WP, MT_WB };

/* Addresses worth sampling in [base, base + size): its ends, every fixed range below 1 MiB, the ends
 * of every variable range (masks here are contiguous), and a few random pages. */
static u32 samples(const struct mtrr_state *m, u64 base, u64 size, u64 *out, u32 max)
{
	u32 n = 0;
	u64 end = base + size;

#define ADD(a)                                                                          \
	do {                                                                            \
		u64 a_ = (a);                                                           \
		if (a_ >= base && a_ < end && n < max)                                  \
			out[n++] = a_;                                                  \
	} while (0)
	ADD(base);
	ADD(end - 4 * KiB);
	if (base < 1 * MiB)
		for (u64 a = base; a < end && a < 1 * MiB; a += 4 * KiB)
			ADD(a);
	for (u32 i = 0; i < m->nvar; i++) {
		u64 mask = m->var[i].mask & m->phys_mask & ~0xfffULL;
		u64 vb = m->var[i].base & mask, ve = vb + (mask & -mask);

		ADD(vb);
		ADD(vb - 4 * KiB);
		ADD(ve);
		ADD(ve - 4 * KiB);
	}
	for (int i = 0; i < 16; i++)
		ADD(base + (rnd(size) & ~0xfffULL));
#undef ADD
	return n;
}

TEST(mtrr_random_against_model)
{
	struct mtrr_state m;
	u64 s[512];
	long uniform = 0, mixed = 0;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int iter = 0; iter < 3000; iter++) {
		init(&m, rand_types[rnd(5)], rnd(8) != 0, rnd(2), MT_WB, 36);
		if (rnd(2))
			memset(m.fixed, rand_types[rnd(5)], sizeof(m.fixed));
		else
			for (u32 i = 0; i < MTRR_FIXED_COUNT; i++)
				m.fixed[i] = rnd(4) ? MT_WB : rand_types[rnd(5)];
		for (u32 i = 0; i < m.nvar; i++) {
			u64 size = 1ULL << (12 + rnd(22)); /* 4 KiB .. 8 GiB */
			u64 base = rnd(16 * GiB / size) * size;

			if (rnd(3) == 0)
				continue;
			set_var(&m, i, base, size, rand_types[rnd(5)]);
			if (rnd(10) == 0)
				m.var[i].mask &= ~VALID;
		}
		for (int q = 0; q < 40; q++) {
			u64 size = 1ULL << (12 + rnd(22));
			u64 base = rnd(16 * GiB / size) * size;
			int got = mtrr_range_type(&m, base, size);
			u32 n = samples(&m, base, size, s, ARRAY_SIZE(s));
			int first = model_type(&m, s[0]);
			bool same = true;

			for (u32 i = 0; i < n; i++) {
				int t = model_type(&m, s[i]);

				if (got != MT_MIXED && t != got) {
					unit_fail(__FILE__, __LINE__,
						  "iter %d: [%#llx, +%#llx) said %d, page %#llx is %d", iter,
						  (unsigned long long)base, (unsigned long long)size, got,
						  (unsigned long long)s[i], t);
					return;
				}
				same &= t == first;
			}
			/* Pages of different types must make the range mixed. */
			if (!same && got != MT_MIXED) {
				unit_fail(__FILE__, __LINE__, "iter %d: [%#llx, +%#llx) not mixed", iter,
					  (unsigned long long)base, (unsigned long long)size);
				return;
			}
			/* Every 4 KiB page gets exactly the model's type. */
			for (u32 i = 0; i < n && i < 8; i++)
				if (!CHECK_EQ(mtrr_range_type(&m, s[i], 4 * KiB), model_type(&m, s[i])))
					return;
			if (got == MT_MIXED)
				mixed++;
			else
				uniform++;
		}
	}
	/* Both outcomes were exercised. */
	CHECK(uniform > 10000);
	CHECK(mixed > 10000);
}
