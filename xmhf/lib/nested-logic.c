/* EPT12 walks, EPT02 leaves and the EPT02 cache choice for nested VMX (SDM Vol. 3, 29.3); the
 * pure parts of APIC-write virtualization (SDM 29.1, 29.4.3). */
#include <lib/nested-logic.h>
#include <x86/vmx.h>

#define R (1ULL << 0)
#define W (1ULL << 1)
#define X (1ULL << 2)
#define PS (1ULL << 7)
#define ADDR_MASK 0x000ffffffffff000ULL

bool ept12_misconfigured(u64 e, int level, u32 maxphyaddr, bool exec_only)
{
	u32 mt = (e >> 3) & 7;
	bool leaf = level == 1 || (e & PS);

	if ((e & W) && !(e & R))
		return true;
	if ((e & (R | W | X)) == X && !exec_only)
		return true;
	if ((e & ADDR_MASK) >> maxphyaddr)
		return true;
	if (level == 4 && (e & PS))
		return true;
	if (leaf && (mt == 2 || mt == 3 || mt == 7))
		return true;
	if (!leaf && (e & (0xfULL << 3)))
		return true; /* bits 6:3 are reserved in non-leaf entries (7:3 in a PML4E, PS above) */
	if (level > 1 && leaf && ((e & ADDR_MASK) & ((1ULL << (12 + 9 * (level - 1))) - 1)))
		return true; /* reserved low address bits of a large page */
	return false;
}

enum ept12_result ept12_walk(const struct ept12_env *env, u64 eptp12, u64 gpa2, u32 access, struct ept12_walk *out)
{
	u64 table = eptp12 & ADDR_MASK;

	out->rights = 7;
	out->gpa1 = 0;
	out->leaf = 0;
	out->level = 0;
	out->last = 4;
	out->ad = (eptp12 & EPTP_AD) != 0;
	for (int level = 4; level >= 1; level--) {
		const u64 *t = env->table(env->ctx, table);
		u32 idx = (gpa2 >> (12 + 9 * (level - 1))) & 511;
		u64 e;

		out->ad_set[level] = 0;
		if (!t)
			return EPT12_BAD_TABLE;
		e = t[idx];
		out->last = level;
		out->entry[level] = e;
		out->entry_pa[level] = table + 8 * idx;
		if (!(e & (R | W | X))) {
			out->rights = 0;
			return EPT12_VIOLATION;
		}
		if (ept12_misconfigured(e, level, env->maxphyaddr, env->exec_only))
			return EPT12_MISCONFIG;
		out->rights &= (u32)(e & (R | W | X));
		if (out->ad && !(e & EPT_ACCESSED))
			out->ad_set[level] = EPT_ACCESSED;
		if (level == 1 || (e & PS)) {
			u64 size = 1ULL << (12 + 9 * (level - 1));
			out->gpa1 = (e & ADDR_MASK & ~(size - 1)) + (gpa2 & (size - 1));
			out->leaf = e;
			out->level = level;
			if (access & ~out->rights)
				return EPT12_VIOLATION;
			if (out->ad && (access & W) && !(e & EPT_DIRTY))
				out->ad_set[level] |= EPT_DIRTY;
			return EPT12_OK;
		}
		table = e & ADDR_MASK;
	}
	return EPT12_VIOLATION;
}

u32 ept12_access(u64 qual, bool ad)
{
	if (ad && (qual & (1ULL << 7)) && !(qual & (1ULL << 8)))
		return (u32)(R | W);
	return (u32)(qual & 7);
}

void ept02_compose(u64 gpa2, const struct ept12_walk *w12, u64 leaf01, int level01, bool page_2m,
		   struct ept02_leaf *out)
{
	u64 rights = w12->rights & leaf01 & (R | W | X);
	u64 attrs = w12->leaf & (0xfULL << 3); /* memory type (bits 5:3) and ignore-PAT (bit 6) */

	if (w12->ad && !(w12->leaf & EPT_DIRTY))
		rights &= ~W; /* the first write faults, so L0 sets the dirty flag (ept-ad.c) */

	if (page_2m && w12->level >= 2 && level01 >= 2) {
		out->level = 2;
		out->gpa2 = gpa2 & ~(PAGE_SIZE_2M - 1);
		out->entry = (w12->gpa1 & ~(PAGE_SIZE_2M - 1) & ADDR_MASK) | rights | attrs | PS;
	} else {
		out->level = 1;
		out->gpa2 = gpa2 & ~(PAGE_SIZE_4K - 1);
		out->entry = (w12->gpa1 & ADDR_MASK) | rights | attrs;
	}
}

u32 ept02_cache_pick(const struct ept02_slot *slots, u32 n, u64 eptp12, bool *hit)
{
	u32 empty = n, lru = 0;

	for (u32 i = 0; i < n; i++) {
		if (slots[i].pml4 && slots[i].eptp12 == eptp12) {
			*hit = true;
			return i;
		}
		if (!slots[i].pml4 && empty == n)
			empty = i;
		if (slots[i].last_use < slots[lru].last_use)
			lru = i;
	}
	*hit = false;
	return empty < n ? empty : lru;
}

void sparse_bitmap_index(struct sparse_bitmap *s)
{
	u32 n = 0;

	for (u32 i = 0; i < s->nwords && i < ARRAY_SIZE(s->idx); i++)
		if (s->bits[i])
			s->idx[n++] = (u16)i;
	s->n = n;
	__atomic_add_fetch(&s->generation, 1, __ATOMIC_RELEASE);
}

/* The copy is a string move: on hardware the fastest way, and in Bochs one tick per word instead of
 * a loop's four or five. */
static void copy_words(u64 *dst, const u64 *src, u32 n)
{
#if defined(__x86_64__)
	__asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
#else
	while (n--)
		*dst++ = *src++;
#endif
}

void bitmap_merge(u64 *out, const u64 *l1, const struct sparse_bitmap *s)
{
	copy_words(out, l1, s->nwords);
	for (u32 i = 0; i < s->n; i++)
		out[s->idx[i]] |= s->bits[s->idx[i]];
}

bool apicv_write_virtualized(u32 proc2, u32 off, u32 size)
{
	u32 reg = off & ~3U;

	if (size == 0 || size > 4 || off + size > reg + 4 || reg >= 0x400 || (reg & 0xf))
		return false;
	if (proc2 & PROC2_APIC_REGISTER_VIRT)
		return reg == 0x20 || reg == 0x80 || reg == 0xb0 || reg == 0xd0 || reg == 0xe0 || reg == 0xf0 ||
		       reg == 0x280 || (reg >= 0x300 && reg <= 0x370) || reg == 0x380 || reg == 0x3e0;
	if (proc2 & PROC2_VIRTUAL_INTR_DELIVERY)
		return reg == 0x80 || reg == 0xb0 || reg == 0x300;
	return off == 0x80; /* the TPR shadow alone: offset 080H itself */
}

u32 apicv_vectoring_info(u32 idt_info, u32 injected, u16 gis, bool gla_valid, u64 gla, u64 idt_entry,
			 u32 entry_size)
{
	u32 svi = gis >> 8, event = idt_info & (INTR_TYPE_MASK | 0xff);
	u32 virt = INTR_INFO_VALID | INTR_TYPE_EXTERNAL | svi;

	if (svi < 16) /* no virtual interrupt in service: none was being delivered (vectors 0-15 never are) */
		return idt_info;
	if ((idt_info & INTR_TYPE_MASK) == INTR_TYPE_EXTERNAL &&
	    (!(injected & INTR_INFO_VALID) || event != (injected & (INTR_TYPE_MASK | 0xff))))
		return virt;
	if (gla_valid && gla - idt_entry < entry_size)
		return virt;
	return idt_info;
}

u8 apicv_self_ipi_vector(u32 icr_lo)
{
	/* Reserved bits 31:20, 17:16 and 13, delivery status (12), trigger mode (15) and delivery mode
	 * (10:8) must be 0; the shorthand 01 (self). */
	if ((icr_lo & 0xfff3b700) || ((icr_lo >> 18) & 3) != 1 || (icr_lo & 0xff) < 16)
		return 0;
	return (u8)icr_lo;
}

u8 apicv_highest_vector(const u8 *vapic, u32 base)
{
	for (int i = 7; i >= 0; i--) {
		const u8 *p = vapic + base + 16 * (u32)i;
		u32 bits = p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
		if (bits)
			return (u8)(32 * i + 31 - __builtin_clz(bits));
	}
	return 0;
}
