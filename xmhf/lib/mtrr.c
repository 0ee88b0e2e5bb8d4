/* MTRR memory types (SDM Vol. 3, 11.11.4.1 "MTRR precedences"). */
#include <lib/mtrr.h>

#define MTRR_VALID (1ULL << 11)

/* Fixed ranges: 8 x 64 KiB from 0, 16 x 16 KiB from 0x80000, 64 x 4 KiB from 0xC0000. */
static int fixed_index(u64 addr)
{
	if (addr < 0x80000)
		return (int)(addr >> 16);
	if (addr < 0xc0000)
		return 8 + (int)((addr - 0x80000) >> 14);
	return 24 + (int)((addr - 0xc0000) >> 12);
}

static u64 fixed_size(int idx)
{
	return idx < 8 ? 0x10000 : idx < 24 ? 0x4000 : 0x1000;
}

/* Several variable ranges of different types covering one address: UC wins, WT beats WB; any other
 * combination is undefined by the SDM, and UC is the safe answer. */
static int combine(int a, int b)
{
	if (a < 0)
		return b;
	if (a == b)
		return a;
	if (a == MT_UC || b == MT_UC)
		return MT_UC;
	if ((a == MT_WT && b == MT_WB) || (a == MT_WB && b == MT_WT))
		return MT_WT;
	return MT_UC;
}

int mtrr_range_type(const struct mtrr_state *m, u64 base, u64 size)
{
	int type = -1;

	if (!m->enabled)
		return MT_UC;
	if (m->fixed_enabled && base < 0x100000) {
		int t = -1;

		/* A range reaching past 1 MiB mixes fixed and variable ranges: split it. */
		if (base + size > 0x100000)
			return MT_MIXED;
		for (u64 a = base; a < base + size;) {
			int i = fixed_index(a);
			if (t >= 0 && m->fixed[i] != t)
				return MT_MIXED;
			t = m->fixed[i];
			a = (a & ~(fixed_size(i) - 1)) + fixed_size(i);
		}
		return t;
	}
	for (u32 i = 0; i < m->nvar; i++) {
		u64 mask = m->var[i].mask;
		if (!(mask & MTRR_VALID))
			continue;
		mask &= m->phys_mask & ~0xfffULL;
		u64 vbase = m->var[i].base & m->phys_mask & ~0xfffULL;
		/* Does the range reach addresses this MTRR matches, and does it match all of them? */
		if ((base ^ vbase) & mask & ~(size - 1))
			continue;
		if (mask & (size - 1))
			return MT_MIXED;
		type = combine(type, (int)(m->var[i].base & 0xff));
	}
	return type < 0 ? m->def_type : type;
}

bool mtrr_is_mtrr_msr(const struct mtrr_state *m, u32 msr)
{
	if (msr == MSR_MTRR_DEF_TYPE || msr == MSR_MTRR_FIX64K_00000 || msr == MSR_MTRR_FIX16K_80000 ||
	    msr == MSR_MTRR_FIX16K_A0000 || (msr >= MSR_MTRR_FIX4K_C0000 && msr <= MSR_MTRR_FIX4K_C0000 + 7))
		return true;
	return msr >= MSR_MTRR_PHYSBASE0 && msr < MSR_MTRR_PHYSBASE0 + 2 * m->nvar;
}

int mtrr_state_write(struct mtrr_state *m, u32 msr, u64 value)
{
	int f = -1;

	if (msr == MSR_MTRR_DEF_TYPE) {
		m->def_type = (u8)(value & 0xff);
		m->fixed_enabled = (value >> 10) & 1;
		m->enabled = (value >> 11) & 1;
		return 0;
	}
	if (msr >= MSR_MTRR_PHYSBASE0 && msr < MSR_MTRR_PHYSBASE0 + 2 * m->nvar) {
		u32 n = (msr - MSR_MTRR_PHYSBASE0) / 2;
		if ((msr - MSR_MTRR_PHYSBASE0) % 2)
			m->var[n].mask = value;
		else
			m->var[n].base = value;
		return 0;
	}
	if (msr == MSR_MTRR_FIX64K_00000)
		f = 0;
	else if (msr == MSR_MTRR_FIX16K_80000)
		f = 8;
	else if (msr == MSR_MTRR_FIX16K_A0000)
		f = 16;
	else if (msr >= MSR_MTRR_FIX4K_C0000 && msr <= MSR_MTRR_FIX4K_C0000 + 7)
		f = 24 + 8 * (int)(msr - MSR_MTRR_FIX4K_C0000);
	if (f < 0)
		return -1;
	for (int i = 0; i < 8; i++)
		m->fixed[f + i] = (u8)(value >> (8 * i));
	return 0;
}
