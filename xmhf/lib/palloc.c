/* Bitmap page allocator (see palloc.h). */
#include <lib/palloc.h>
#include <lib/string.h>

#define PSHIFT 12

static bool is_used(const struct palloc *pa, u64 i)
{
	return (pa->bitmap[i >> 6] >> (i & 63)) & 1;
}

static void set_used(struct palloc *pa, u64 i)
{
	pa->bitmap[i >> 6] |= 1ULL << (i & 63);
}

static void set_free(struct palloc *pa, u64 i)
{
	pa->bitmap[i >> 6] &= ~(1ULL << (i & 63));
}

u64 palloc_bitmap_bytes(u64 npages)
{
	return ((npages + 63) >> 6) * 8;
}

void palloc_init(struct palloc *pa, u64 base, u64 npages, u64 *bitmap_storage)
{
	pa->base = base;
	pa->npages = npages;
	pa->free_pages = npages;
	pa->hint = 0;
	pa->bitmap = bitmap_storage;
	memset(bitmap_storage, 0, (size_t)palloc_bitmap_bytes(npages));
	/* Address 0 is the failure value of palloc_alloc, so page 0 can never be handed out. */
	if (base == 0 && npages)
		palloc_mark_used(pa, 0, 1);
}

void palloc_mark_used(struct palloc *pa, u64 addr, u64 npages)
{
	u64 end, first, last;

	if (npages == 0)
		return;
	/* End of the byte range, saturating at 2^64-1. */
	end = addr + (npages << PSHIFT);
	if (npages > (~0ULL >> PSHIFT) || end < addr)
		end = ~0ULL;
	if (end <= pa->base)
		return;
	/* Every page touched by [addr, end), clipped to the managed range. */
	first = addr <= pa->base ? 0 : (addr - pa->base) >> PSHIFT;
	last = (end - pa->base) >> PSHIFT;
	if ((end - pa->base) & ((1ULL << PSHIFT) - 1))
		last++;
	last = MIN(last, pa->npages);
	for (u64 i = first; i < last; i++) {
		if (!is_used(pa, i)) {
			set_used(pa, i);
			pa->free_pages--;
		}
	}
}

/* First page index >= i whose address is a multiple of align. */
static u64 next_aligned(const struct palloc *pa, u64 i, u64 align)
{
	u64 addr = pa->base + (i << PSHIFT);

	return (ALIGN_UP(addr, align) - pa->base) >> PSHIFT;
}

/* First-fit search for an aligned run of n free pages starting in [from, to). */
static bool search(const struct palloc *pa, u64 from, u64 to, u64 n, u64 align, u64 *out)
{
	u64 i = next_aligned(pa, from, align);

	while (i < to && i + n <= pa->npages) {
		u64 j;

		for (j = i; j < i + n; j++) {
			/* Skip whole used words quickly. */
			if ((j & 63) == 0 && pa->bitmap[j >> 6] == ~0ULL) {
				j += 63;
				break;
			}
			if (is_used(pa, j))
				break;
		}
		if (j == i + n) {
			*out = i;
			return true;
		}
		i = next_aligned(pa, j + 1, align);
	}
	return false;
}

u64 palloc_alloc(struct palloc *pa, u64 npages, u64 align_bytes)
{
	u64 i;

	if (npages == 0 || npages > pa->free_pages)
		return 0;
	if (align_bytes < (1ULL << PSHIFT))
		align_bytes = 1ULL << PSHIFT;
	if (align_bytes & (align_bytes - 1))
		return 0;
	if (!search(pa, pa->hint, pa->npages, npages, align_bytes, &i) &&
	    !search(pa, 0, pa->npages, npages, align_bytes, &i))
		return 0;
	for (u64 j = i; j < i + npages; j++)
		set_used(pa, j);
	pa->free_pages -= npages;
	pa->hint = (i + npages < pa->npages) ? i + npages : 0;
	return pa->base + (i << PSHIFT);
}

int palloc_free(struct palloc *pa, u64 addr, u64 npages)
{
	u64 first;

	if (addr == 0 || npages == 0 || addr < pa->base || (addr & ((1ULL << PSHIFT) - 1)))
		return -1;
	first = (addr - pa->base) >> PSHIFT;
	if (first >= pa->npages || npages > pa->npages - first)
		return -1;
	for (u64 j = first; j < first + npages; j++)
		if (!is_used(pa, j))
			return -1;
	for (u64 j = first; j < first + npages; j++)
		set_free(pa, j);
	pa->free_pages += npages;
	if (first < pa->hint)
		pa->hint = first;
	return 0;
}
