/* EPT12 walks, EPT02 leaves and the EPT02 cache choice for nested VMX (SDM Vol. 3, 29.3). */
#include <lib/nested-logic.h>
#include <x86/vmx.h>

#define R (1ULL << 0)
#define W (1ULL << 1)
#define X (1ULL << 2)
#define PS (1ULL << 7)
#define ADDR_MASK 0x000ffffffffff000ULL

bool ept12_misconfigured(u64 e, int level, u32 maxphyaddr)
{
	u32 mt = (e >> 3) & 7;
	bool leaf = level == 1 || (e & PS);

	if ((e & W) && !(e & R))
		return true;
	if ((e & (R | W | X)) == X)
		return true; /* execute-only is not offered */
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
	for (int level = 4; level >= 1; level--) {
		const u64 *t = env->table(env->ctx, table);
		u64 e;

		if (!t)
			return EPT12_BAD_TABLE;
		e = t[(gpa2 >> (12 + 9 * (level - 1))) & 511];
		if (!(e & (R | W | X))) {
			out->rights = 0;
			return EPT12_VIOLATION;
		}
		if (ept12_misconfigured(e, level, env->maxphyaddr))
			return EPT12_MISCONFIG;
		out->rights &= (u32)(e & (R | W | X));
		if (level == 1 || (e & PS)) {
			u64 size = 1ULL << (12 + 9 * (level - 1));
			out->gpa1 = (e & ADDR_MASK & ~(size - 1)) + (gpa2 & (size - 1));
			out->leaf = e;
			out->level = level;
			return (access & ~out->rights) ? EPT12_VIOLATION : EPT12_OK;
		}
		table = e & ADDR_MASK;
	}
	return EPT12_VIOLATION;
}

void ept02_compose(u64 gpa2, const struct ept12_walk *w12, u64 leaf01, int level01, bool page_2m,
		   struct ept02_leaf *out)
{
	u64 rights = w12->rights & leaf01 & (R | W | X);
	u64 attrs = w12->leaf & (0xfULL << 3); /* memory type (bits 5:3) and ignore-PAT (bit 6) */

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

bool nested_io_exits_to_l1(u32 proc12, const u8 *a, const u8 *b, u32 port, u32 size)
{
	if (proc12 & PROC_USE_IO_BITMAPS) {
		if (port + size - 1 > 0xffff)
			return true; /* wraps around to port 0 */
		for (u32 p = port; p < port + size; p++)
			if (((p < 0x8000 ? a[p / 8] : b[(p - 0x8000) / 8]) >> (p % 8)) & 1)
				return true;
		return false;
	}
	return (proc12 & PROC_UNCOND_IO_EXITING) != 0;
}
