/* Store-instruction decoding (SDM Vol. 2, 2.1-2.2: prefixes, ModR/M, SIB, displacement) and guest
 * page walks (SDM Vol. 3, chapter 4). */
#include <lib/insn.h>

/* Bytes of ModR/M + SIB + displacement for the addressing form, or -1 if truncated (the caller
 * checks the displacement against avail). */
int insn_modrm_length(const u8 *b, u32 avail, u32 addr_bits)
{
	u8 modrm, mod, rm;
	int len = 1;

	if (avail < 1)
		return -1;
	modrm = b[0];
	mod = modrm >> 6;
	rm = modrm & 7;
	if (mod == 3)
		return 1;
	if (addr_bits == 16) {
		if (mod == 0 && rm == 6)
			return 3;
		return 1 + (mod == 1 ? 1 : mod == 2 ? 2 : 0);
	}
	if (rm == 4) { /* SIB */
		if (avail < 2)
			return -1;
		len++;
		if (mod == 0 && (b[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		len += 4; /* disp32 (RIP-relative in 64-bit mode) */
	}
	if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return len;
}

/* A 4-byte 32-bit-paging entry at addr (4-aligned): read_phys reads 8 bytes, so read the aligned
 * quadword holding it. Reading 8 bytes at addr itself went 4 bytes past the entry, past the end of
 * the table for entry 1023 (a spurious failure if the next page is unreadable). */
static bool read_entry32(read_phys_fn read_phys, void *ctx, u64 addr, u64 *e)
{
	u64 q;

	if (!read_phys(ctx, addr & ~7ULL, &q))
		return false;
	*e = (q >> ((addr & 4) * 8)) & 0xffffffffULL;
	return true;
}

int guest_linear_walk(enum guest_paging mode, u64 cr3, const u64 pdpte[4], bool cr4_pse, u64 linear,
		      read_phys_fn read_phys, void *ctx, u64 *gpa, struct guest_walk *w)
{
	u64 e;
	/* R/W and U/S of every paging-structure entry on the way (SDM 4.6.1); PAE PDPTEs have none. */
	u32 r = GUEST_PAGE_WRITE | GUEST_PAGE_USER;
#define TAKE(entry) (r &= (((entry) & 2) ? GUEST_PAGE_WRITE : 0) | (((entry) & 4) ? GUEST_PAGE_USER : 0))
#define USED(addr) (w->entry[w->nentries++] = (addr))

	w->rights = r;
	w->nentries = 0;
	w->entry_bytes = mode == GUEST_PAGING_32 ? 4 : 8;

	switch (mode) {
	case GUEST_PAGING_NONE:
		*gpa = linear;
		return 0;
	case GUEST_PAGING_32: {
		u64 pde_addr = (cr3 & 0xfffff000ULL) + ((linear >> 22) & 0x3ff) * 4;
		if (!read_entry32(read_phys, ctx, pde_addr, &e) || !(e & 1))
			return -1;
		e &= 0xffffffffULL;
		TAKE(e);
		USED(pde_addr);
		if ((e & 0x80) && cr4_pse) {
			*gpa = ((e & 0xffc00000ULL) | ((e >> 13 & 0xff) << 32)) + (linear & 0x3fffff);
			w->rights = r;
			return 0;
		}
		u64 pte_addr = (e & 0xfffff000ULL) + ((linear >> 12) & 0x3ff) * 4;
		if (!read_entry32(read_phys, ctx, pte_addr, &e) || !(e & 1))
			return -1;
		TAKE(e);
		USED(pte_addr);
		*gpa = (e & 0xfffff000ULL) + (linear & 0xfff);
		w->rights = r;
		return 0;
	}
	case GUEST_PAGING_PAE:
	case GUEST_PAGING_4LEVEL: {
		const u64 addr_mask = 0x000ffffffffff000ULL;
		int level;
		u64 table;
		if (mode == GUEST_PAGING_PAE) {
			e = pdpte[(linear >> 30) & 3];
			if (!(e & 1))
				return -1;
			table = e & addr_mask;
			level = 2;
		} else {
			table = cr3 & addr_mask;
			level = 4;
		}
		for (; level >= 1; level--) {
			u32 shift = 12 + 9 * (u32)(level - 1);
			if (!read_phys(ctx, table + ((linear >> shift) & 511) * 8, &e) || !(e & 1))
				return -1;
			TAKE(e);
			USED(table + ((linear >> shift) & 511) * 8);
			if (level == 1 || ((level == 2 || level == 3) && (e & 0x80))) {
				u64 page = 1ULL << shift;
				*gpa = (e & addr_mask & ~(page - 1)) + (linear & (page - 1));
				w->rights = r;
				return 0;
			}
			table = e & addr_mask;
		}
		return -1;
	}
	}
	return -1;
}
#undef TAKE
#undef USED

int guest_linear_to_phys(enum guest_paging mode, u64 cr3, const u64 pdpte[4], bool cr4_pse, u64 linear,
			 read_phys_fn read_phys, void *ctx, u64 *gpa)
{
	struct guest_walk w;

	return guest_linear_walk(mode, cr3, pdpte, cr4_pse, linear, read_phys, ctx, gpa, &w);
}
