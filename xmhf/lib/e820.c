/* E820 memory maps (see e820.h). Everything works in place on struct e820_map: no large temporaries on
 * the stack, since init and the runtime run on small stacks. Entries ending past 2^64-1 are clamped to
 * end at 2^64-1 (the last byte is lost; it is never RAM). */
#include <lib/e820.h>
#include <lib/string.h>

#define U64_MAX (~(u64)0)

static u64 ent_end(const struct e820_entry *x)
{
	u64 end = x->base + x->length;

	return end < x->base ? U64_MAX : end;
}

static void set_end(struct e820_entry *x, u64 end)
{
	x->length = end - x->base;
}

/* Rank in overlap resolution: RAM loses to everything, otherwise the higher type wins. */
static u64 rank(u32 type)
{
	return type == E820_RAM ? 0 : (u64)type + 1;
}

static void del_at(struct e820_map *m, u32 i)
{
	memmove(&m->e[i], &m->e[i + 1], (m->count - i - 1) * sizeof(m->e[0]));
	m->count--;
}

/* Moves e[i] forward to its place in the base-sorted run e[i..count). */
static void sink(struct e820_map *m, u32 i)
{
	while (i + 1 < m->count && m->e[i + 1].base < m->e[i].base) {
		struct e820_entry t = m->e[i];

		m->e[i] = m->e[i + 1];
		m->e[i + 1] = t;
		i++;
	}
}

/* Inserts x at its sorted place among e[from..count). */
static int insert_sorted(struct e820_map *m, u32 from, const struct e820_entry *x)
{
	u32 i = from;

	if (m->count >= E820_MAX_ENTRIES)
		return -1;
	while (i < m->count && m->e[i].base <= x->base)
		i++;
	memmove(&m->e[i + 1], &m->e[i], (m->count - i) * sizeof(m->e[0]));
	m->e[i] = *x;
	m->e[i].pad = 0;
	m->count++;
	return 0;
}

int e820_normalize(struct e820_map *m)
{
	u32 i;

	if (m->count > E820_MAX_ENTRIES)
		return -1;

	/* Drop empty entries and clamp ends, then insertion sort by base (stable, n is small). */
	for (i = 0; i < m->count;) {
		if (m->e[i].length == 0) {
			del_at(m, i);
			continue;
		}
		set_end(&m->e[i], ent_end(&m->e[i]));
		m->e[i].pad = 0;
		i++;
	}
	for (i = 1; i < m->count; i++) {
		struct e820_entry t = m->e[i];
		u32 j = i;

		while (j > 0 && m->e[j - 1].base > t.base) {
			m->e[j] = m->e[j - 1];
			j--;
		}
		m->e[j] = t;
	}

	/* Resolve overlaps pairwise. Invariant: e[0..i] are disjoint and sorted, e[i..] sorted by base.
	 * Each step only removes from an entry the part that another, winning entry keeps covering, so
	 * every address ends up with the winning type of all entries that covered it. */
	i = 0;
	while (i + 1 < m->count) {
		struct e820_entry *a = &m->e[i], *b = &m->e[i + 1];
		u64 a_end = ent_end(a), b_end = ent_end(b);

		if (b->base >= a_end) {
			i++;
			continue;
		}
		if (a->type == b->type) {
			set_end(a, MAX(a_end, b_end));
			del_at(m, i + 1);
		} else if (rank(a->type) > rank(b->type)) {
			/* a wins: keep only b's part past a. */
			if (b_end <= a_end) {
				del_at(m, i + 1);
			} else {
				b->base = a_end;
				set_end(b, b_end);
				sink(m, i + 1);
			}
		} else {
			/* b wins: a keeps [a.base, b.base) and possibly [b_end, a_end). */
			struct e820_entry tail = *a;
			bool has_tail = a_end > b_end;

			tail.base = b_end;
			set_end(&tail, a_end);
			if (a->base == b->base) {
				if (has_tail) {
					*a = *b;
					m->e[i + 1] = tail;
					sink(m, i + 1);
				} else {
					del_at(m, i);
				}
				/* e[i] changed to a higher rank: check it again. */
				continue;
			}
			set_end(a, b->base);
			if (has_tail && insert_sorted(m, i + 2, &tail))
				return -1;
			i++;
		}
	}

	/* Merge touching entries of equal type. */
	for (i = 0; i + 1 < m->count;) {
		struct e820_entry *a = &m->e[i], *b = &m->e[i + 1];

		if (a->type == b->type && ent_end(a) == b->base) {
			set_end(a, ent_end(b));
			del_at(m, i + 1);
		} else {
			i++;
		}
	}
	return 0;
}

static u32 rd32(const u8 *p)
{
	return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static u64 rd64(const u8 *p)
{
	return (u64)rd32(p) | (u64)rd32(p + 4) << 32;
}

int e820_from_multiboot(const void *mmap, u32 mmap_length, struct e820_map *out)
{
	const u8 *p = mmap;
	u32 off = 0;

	out->count = 0;
	out->pad = 0;
	if (!mmap)
		return -1;
	while (off < mmap_length) {
		u32 size;
		u64 base, length;

		if (mmap_length - off < 4)
			return -1;
		size = rd32(p + off);
		if (size < 20 || size > mmap_length - off - 4)
			return -1;
		base = rd64(p + off + 4);
		length = rd64(p + off + 12);
		if (base + length < base)
			return -1;
		if (length) {
			if (out->count >= E820_MAX_ENTRIES)
				return -1;
			out->e[out->count].base = base;
			out->e[out->count].length = length;
			out->e[out->count].type = rd32(p + off + 20);
			out->e[out->count].pad = 0;
			out->count++;
		}
		off += 4 + size;
	}
	if (out->count == 0)
		return -1;
	return e820_normalize(out);
}

int e820_reserve(struct e820_map *m, u64 base, u64 length, u32 type)
{
	struct e820_entry piece[3];
	u32 lo, hi, np = 0, k;
	u64 end;

	if (length == 0)
		return 0;
	if (e820_normalize(m))
		return -1;
	end = base + length;
	if (end < base)
		end = U64_MAX;

	/* Entries overlapping or touching [base, end) form the run e[lo..hi); they are replaced by at
	 * most three pieces: the part of the first before base, the new range, the part of the last
	 * after end. Touching neighbours are included so that equal types merge. */
	for (lo = 0; lo < m->count && ent_end(&m->e[lo]) < base; lo++)
		;
	for (hi = lo; hi < m->count && m->e[hi].base <= end; hi++)
		;

	if (lo < hi && m->e[lo].base < base) {
		piece[np] = m->e[lo];
		set_end(&piece[np], base);
		np++;
	}
	piece[np].base = base;
	piece[np].length = end - base;
	piece[np].type = type;
	piece[np].pad = 0;
	if (np && piece[np - 1].type == type)
		piece[np - 1].length += piece[np].length;
	else
		np++;
	if (lo < hi && ent_end(&m->e[hi - 1]) > end) {
		u64 last_end = ent_end(&m->e[hi - 1]);

		if (piece[np - 1].type == m->e[hi - 1].type) {
			set_end(&piece[np - 1], last_end);
		} else {
			piece[np] = m->e[hi - 1];
			piece[np].base = end;
			set_end(&piece[np], last_end);
			np++;
		}
	}

	if (m->count - (hi - lo) + np > E820_MAX_ENTRIES)
		return -1;
	memmove(&m->e[lo + np], &m->e[hi], (m->count - hi) * sizeof(m->e[0]));
	for (k = 0; k < np; k++)
		m->e[lo + k] = piece[k];
	m->count = m->count - (hi - lo) + np;
	return 0;
}

u64 e820_ram_bytes(const struct e820_map *m)
{
	u64 sum = 0;

	for (u32 i = 0; i < m->count; i++)
		if (m->e[i].type == E820_RAM)
			sum += m->e[i].length;
	return sum;
}

u64 e820_ram_top(const struct e820_map *m)
{
	u64 top = 0;

	for (u32 i = 0; i < m->count; i++)
		if (m->e[i].type == E820_RAM && m->e[i].length)
			top = MAX(top, ent_end(&m->e[i]));
	return top;
}

int e820_find_highest(const struct e820_map *m, u64 size, u64 align, u64 floor, u64 limit,
		      const struct phys_range *avoid, u32 n, u64 *base_out)
{
	bool found = false;
	u64 best = 0;

	if (size == 0)
		return -1;
	if (align == 0)
		align = 1;
	if (align & (align - 1))
		return -1;

	for (u32 i = 0; i < m->count; i++) {
		const struct e820_entry *x = &m->e[i];
		u64 lo = MAX(x->base, floor);
		u64 hi = MIN(ent_end(x), limit);
		u64 c;
		bool moved, fits = true;

		if (x->type != E820_RAM || hi < size)
			continue;
		c = ALIGN_DOWN(hi - size, align);
		/* Slide down below each avoided range that the candidate hits. Once below one it never
		 * hits it again, so this ends after at most n moves. */
		do {
			moved = false;
			if (c < lo) {
				fits = false;
				break;
			}
			for (u32 k = 0; k < n; k++) {
				u64 a_lo = avoid[k].base;
				u64 a_hi = avoid[k].base + avoid[k].length;

				if (a_hi < a_lo)
					a_hi = U64_MAX;
				if (avoid[k].length == 0 || !(c < a_hi && a_lo < c + size))
					continue;
				if (a_lo < size) {
					fits = false;   /* no room below this range */
					break;
				}
				c = ALIGN_DOWN(a_lo - size, align);
				moved = true;
				break;
			}
		} while (moved && fits);
		if (!fits)
			continue;
		if (!found || c > best) {
			best = c;
			found = true;
		}
	}
	if (!found)
		return -1;
	*base_out = best;
	return 0;
}

const char *e820_type_name(u32 type)
{
	switch (type) {
	case E820_RAM: return "usable";
	case E820_RESERVED: return "reserved";
	case E820_ACPI: return "ACPI data";
	case E820_NVS: return "ACPI NVS";
	case E820_UNUSABLE: return "unusable";
	default: return "other";
	}
}
