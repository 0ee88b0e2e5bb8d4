/* E820 maps: multiboot parsing, normalisation, reservation, placement; plus randomised comparisons
 * against a per-address model on a small address space. */
#include <stdlib.h>
#include <lib/e820.h>
#include "unit.h"

#define E(b, e, t) { (b), (e) - (b), (t), 0 }

static void dump(const struct e820_map *m)
{
	for (u32 i = 0; i < m->count; i++)
		printf("    [%u] %#llx-%#llx %s(%u)\n", i, (unsigned long long)m->e[i].base,
		       (unsigned long long)(m->e[i].base + m->e[i].length), e820_type_name(m->e[i].type),
		       m->e[i].type);
}

static void check_map(const char *file, int line, const struct e820_map *m, const struct e820_entry *x,
		      u32 n)
{
	bool ok = m->count == n;

	for (u32 i = 0; ok && i < n; i++)
		ok = m->e[i].base == x[i].base && m->e[i].length == x[i].length && m->e[i].type == x[i].type;
	if (!ok) {
		struct e820_map want = { .count = n };

		memcpy(want.e, x, n * sizeof(*x));
		unit_fail(file, line, "map mismatch; got:");
		dump(m);
		printf("  want:\n");
		dump(&want);
	}
}

#define CHECK_MAP(m, ...)                                                               \
	do {                                                                            \
		const struct e820_entry exp_[] = { __VA_ARGS__ };                       \
		check_map(__FILE__, __LINE__, (m), exp_, ARRAY_SIZE(exp_));             \
	} while (0)

/* Builds a multiboot v1 memory map. */
struct mbbuf {
	u8 b[4096];
	u32 len;
};

static void mb_add_sized(struct mbbuf *mb, u32 size, u64 base, u64 len, u32 type)
{
	memset(mb->b + mb->len, 0, 4 + size);
	memcpy(mb->b + mb->len, &size, 4);
	if (size >= 8)
		memcpy(mb->b + mb->len + 4, &base, 8);
	if (size >= 16)
		memcpy(mb->b + mb->len + 12, &len, 8);
	if (size >= 20)
		memcpy(mb->b + mb->len + 20, &type, 4);
	mb->len += 4 + size;
}

static void mb_add(struct mbbuf *mb, u64 base, u64 end, u32 type)
{
	mb_add_sized(mb, 20, base, end - base, type);
}

static void make_map(struct e820_map *m, const struct e820_entry *x, u32 n)
{
	m->count = n;
	memcpy(m->e, x, n * sizeof(*x));
}

#define MAKE_MAP(m, ...)                                                                \
	do {                                                                            \
		const struct e820_entry in_[] = { __VA_ARGS__ };                        \
		make_map((m), in_, ARRAY_SIZE(in_));                                    \
	} while (0)

TEST(e820_bochs_map)
{
	struct mbbuf mb = { .len = 0 };
	struct e820_map m;

	mb_add(&mb, 0, 0x9f000, E820_RAM);
	mb_add(&mb, 0x9f000, 0xa0000, E820_RESERVED);
	mb_add(&mb, 0xe8000, 0x100000, E820_RESERVED);
	mb_add(&mb, 0x100000, 0xfff0000, E820_RAM);
	mb_add(&mb, 0xfff0000, 0x10000000, E820_ACPI);
	mb_add(&mb, 0xfffc0000, 0x100000000ULL, E820_RESERVED);
	REQUIRE_EQ(e820_from_multiboot(mb.b, mb.len, &m), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0xe8000, 0x100000, E820_RESERVED), E(0x100000, 0xfff0000, E820_RAM),
		  E(0xfff0000, 0x10000000, E820_ACPI), E(0xfffc0000, 0x100000000ULL, E820_RESERVED));
	CHECK_EQ(e820_ram_bytes(&m), 0x9f000 + 0xfef0000);
	CHECK_EQ(e820_ram_top(&m), 0xfff0000);
}

TEST(e820_multiboot_size_field_larger)
{
	/* Entries may carry extra bytes after the 20 we know; "size" says how far to skip. */
	struct mbbuf mb = { .len = 0 };
	struct e820_map m;

	mb_add_sized(&mb, 24, 0, 0x9fc00, E820_RAM);
	mb_add_sized(&mb, 20, 0x100000, 0x1000000 - 0x100000, E820_RAM);
	mb_add_sized(&mb, 28, 0x1000000, 0x100000, E820_NVS);
	REQUIRE_EQ(e820_from_multiboot(mb.b, mb.len, &m), 0);
	CHECK_MAP(&m, E(0, 0x9fc00, E820_RAM), E(0x100000, 0x1000000, E820_RAM),
		  E(0x1000000, 0x1100000, E820_NVS));
}

TEST(e820_multiboot_malformed)
{
	struct mbbuf mb = { .len = 0 };
	struct e820_map m;

	mb_add(&mb, 0, 0x9f000, E820_RAM);
	mb_add(&mb, 0x100000, 0x200000, E820_RAM);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), 0);
	/* Truncated last entry, or a length that cuts into the size field. */
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len - 1, &m), -1);
	CHECK_EQ(e820_from_multiboot(mb.b, 24 + 2, &m), -1);
	CHECK_EQ(e820_from_multiboot(mb.b, 0, &m), -1);
	CHECK_EQ(e820_from_multiboot(NULL, 48, &m), -1);

	mb.len = 0;
	mb_add_sized(&mb, 8, 0x1000, 0, 0);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), -1);

	mb.len = 0;
	mb_add(&mb, 0, 0x9f000, E820_RAM);
	mb_add_sized(&mb, 19, 0x100000, 0x1000, E820_RAM);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), -1);

	/* base + length past 2^64 */
	mb.len = 0;
	mb_add_sized(&mb, 20, 0xfffffffffffff000ULL, 0x2000, E820_RESERVED);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), -1);

	/* Only zero-length entries: nothing left. */
	mb.len = 0;
	mb_add(&mb, 0x1000, 0x1000, E820_RAM);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), -1);
}

TEST(e820_multiboot_too_many)
{
	static struct mbbuf mb;
	struct e820_map m;

	mb.len = 0;
	/* Separated entries: nothing merges. */
	for (u64 i = 0; i < E820_MAX_ENTRIES; i++)
		mb_add(&mb, i * 0x2000, i * 0x2000 + 0x1000, E820_RAM);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), 0);
	CHECK_EQ(m.count, E820_MAX_ENTRIES);
	mb_add(&mb, 0x10000000, 0x10001000, E820_RAM);
	CHECK_EQ(e820_from_multiboot(mb.b, mb.len, &m), -1);
}

TEST(e820_unsorted_overlapping)
{
	struct mbbuf mb = { .len = 0 };
	struct e820_map m;

	mb_add(&mb, 0x100000, 0x8000000, E820_RAM);
	mb_add(&mb, 0x0, 0x9fc00, E820_RAM);
	mb_add(&mb, 0x2000, 0x2000, E820_RESERVED);          /* empty: dropped */
	mb_add(&mb, 0xf0000, 0x100000, E820_RESERVED);
	mb_add(&mb, 0x4000000, 0x9000000, E820_RAM);          /* overlaps and extends RAM */
	mb_add(&mb, 0x9fc00, 0xa0000, E820_RESERVED);
	mb_add(&mb, 0x7000000, 0x7100000, E820_ACPI);         /* ACPI inside RAM */
	mb_add(&mb, 0x7080000, 0x7200000, E820_NVS);          /* NVS over the end of ACPI */
	mb_add(&mb, 0x8fff000, 0x9000000, E820_RESERVED);
	mb_add(&mb, 0xe0000, 0xf8000, E820_RESERVED);         /* merges with the 0xf0000 entry */
	REQUIRE_EQ(e820_from_multiboot(mb.b, mb.len, &m), 0);
	CHECK_MAP(&m, E(0, 0x9fc00, E820_RAM), E(0x9fc00, 0xa0000, E820_RESERVED),
		  E(0xe0000, 0x100000, E820_RESERVED), E(0x100000, 0x7000000, E820_RAM),
		  E(0x7000000, 0x7080000, E820_ACPI), E(0x7080000, 0x7200000, E820_NVS),
		  E(0x7200000, 0x8fff000, E820_RAM), E(0x8fff000, 0x9000000, E820_RESERVED));
}

TEST(e820_ram_overlapped_by_reserved)
{
	struct e820_map m;

	/* Reserved listed first, RAM covering it: RAM loses even though its type number is lower. */
	MAKE_MAP(&m, E(0x50000, 0x60000, E820_RESERVED), E(0, 0x100000, E820_RAM));
	REQUIRE_EQ(e820_normalize(&m), 0);
	CHECK_MAP(&m, E(0, 0x50000, E820_RAM), E(0x50000, 0x60000, E820_RESERVED),
		  E(0x60000, 0x100000, E820_RAM));

	/* Same base: the reserved one wins over the start. */
	MAKE_MAP(&m, E(0, 0x100000, E820_RAM), E(0, 0x1000, E820_RESERVED));
	REQUIRE_EQ(e820_normalize(&m), 0);
	CHECK_MAP(&m, E(0, 0x1000, E820_RESERVED), E(0x1000, 0x100000, E820_RAM));

	/* Unknown type 12 beats RAM and reserved; type 5 beats 3. */
	MAKE_MAP(&m, E(0, 0x3000, E820_RAM), E(0x1000, 0x2000, 12), E(0x800, 0x2800, E820_RESERVED),
		 E(0x2400, 0x2c00, E820_UNUSABLE), E(0x2a00, 0x3000, E820_ACPI));
	REQUIRE_EQ(e820_normalize(&m), 0);
	CHECK_MAP(&m, E(0, 0x800, E820_RAM), E(0x800, 0x1000, E820_RESERVED), E(0x1000, 0x2000, 12),
		  E(0x2000, 0x2400, E820_RESERVED), E(0x2400, 0x2c00, E820_UNUSABLE),
		  E(0x2c00, 0x3000, E820_ACPI));
	CHECK_STR_EQ(e820_type_name(12), "other");
}

TEST(e820_normalize_merges_and_clamps)
{
	struct e820_map m;

	MAKE_MAP(&m, E(0x3000, 0x4000, E820_RAM), E(0x1000, 0x2000, E820_RAM), E(0x2000, 0x3000, E820_RAM),
		 E(0x1800, 0x1800, E820_RESERVED));
	REQUIRE_EQ(e820_normalize(&m), 0);
	CHECK_MAP(&m, E(0x1000, 0x4000, E820_RAM));

	/* An entry running past 2^64 is clamped. */
	m.count = 1;
	m.e[0].base = 0xffffffff00000000ULL;
	m.e[0].length = 0x200000000ULL;
	m.e[0].type = E820_RESERVED;
	REQUIRE_EQ(e820_normalize(&m), 0);
	CHECK_EQ(m.e[0].base + m.e[0].length, ~0ULL);

	m.count = 0;
	CHECK_EQ(e820_normalize(&m), 0);
	CHECK_EQ(m.count, 0);
	CHECK_EQ(e820_ram_top(&m), 0);
	CHECK_EQ(e820_ram_bytes(&m), 0);
}

TEST(e820_reserve_cases)
{
	struct e820_map m;

#define BASE_MAP()                                                                             \
	MAKE_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),            \
		 E(0x100000, 0x1000000, E820_RAM), E(0x1000000, 0x1100000, E820_ACPI),       \
		 E(0x2000000, 0x3000000, E820_RAM))

	/* In the middle of a RAM entry. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x200000, 0x100000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0x100000, 0x200000, E820_RAM), E(0x200000, 0x300000, E820_RESERVED),
		  E(0x300000, 0x1000000, E820_RAM), E(0x1000000, 0x1100000, E820_ACPI),
		  E(0x2000000, 0x3000000, E820_RAM));

	/* At the start of an entry. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x100000, 0x1000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0x100000, 0x101000, E820_RESERVED), E(0x101000, 0x1000000, E820_RAM),
		  E(0x1000000, 0x1100000, E820_ACPI), E(0x2000000, 0x3000000, E820_RAM));

	/* At the end of an entry, merging with the reserved neighbour. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x9e000, 0x1000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9e000, E820_RAM), E(0x9e000, 0xa0000, E820_RESERVED),
		  E(0x100000, 0x1000000, E820_RAM), E(0x1000000, 0x1100000, E820_ACPI),
		  E(0x2000000, 0x3000000, E820_RAM));

	/* Spanning two entries (RAM into ACPI). */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0xf00000, 0x180000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0x100000, 0xf00000, E820_RAM), E(0xf00000, 0x1080000, E820_RESERVED),
		  E(0x1080000, 0x1100000, E820_ACPI), E(0x2000000, 0x3000000, E820_RAM));

	/* Spanning two entries and the hole between them. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x1080000, 0x1000000, E820_UNUSABLE), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0x100000, 0x1000000, E820_RAM), E(0x1000000, 0x1080000, E820_ACPI),
		  E(0x1080000, 0x2080000, E820_UNUSABLE), E(0x2080000, 0x3000000, E820_RAM));

	/* In a hole, not touching anything. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0xc0000, 0x10000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		  E(0xc0000, 0xd0000, E820_RESERVED), E(0x100000, 0x1000000, E820_RAM),
		  E(0x1000000, 0x1100000, E820_ACPI), E(0x2000000, 0x3000000, E820_RAM));

	/* A hole exactly filled, merging on both sides. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0xa0000, 0x60000, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0x100000, E820_RESERVED),
		  E(0x100000, 0x1000000, E820_RAM), E(0x1000000, 0x1100000, E820_ACPI),
		  E(0x2000000, 0x3000000, E820_RAM));

	/* Past the end of the map, and covering everything. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x100000000ULL, 0x1000, E820_RESERVED), 0);
	CHECK_EQ(m.count, 6);
	CHECK_EQ(m.e[5].base, 0x100000000ULL);
	REQUIRE_EQ(e820_reserve(&m, 0, 0x200000000ULL, E820_NVS), 0);
	CHECK_MAP(&m, E(0, 0x200000000ULL, E820_NVS));

	/* Marking as RAM (e.g. handing a range back) also works, and zero length is a no-op. */
	BASE_MAP();
	REQUIRE_EQ(e820_reserve(&m, 0x9f000, 0x1000, E820_RAM), 0);
	REQUIRE_EQ(e820_reserve(&m, 0x5000, 0, E820_RESERVED), 0);
	CHECK_MAP(&m, E(0, 0xa0000, E820_RAM), E(0x100000, 0x1000000, E820_RAM),
		  E(0x1000000, 0x1100000, E820_ACPI), E(0x2000000, 0x3000000, E820_RAM));
#undef BASE_MAP
}

TEST(e820_reserve_full_map)
{
	struct e820_map m;

	m.count = 0;
	for (u64 i = 0; i < E820_MAX_ENTRIES; i++) {
		m.e[i].base = i * 0x2000;
		m.e[i].length = 0x1000;
		m.e[i].type = E820_RAM;
		m.count++;
	}
	/* A split needs two more entries: refused, map unchanged. */
	CHECK_EQ(e820_reserve(&m, 0x400, 0x100, E820_RESERVED), -1);
	CHECK_EQ(m.count, E820_MAX_ENTRIES);
	CHECK_EQ(m.e[0].length, 0x1000);
	/* Filling a hole between two RAM entries with RAM shrinks the map. */
	CHECK_EQ(e820_reserve(&m, 0x1000, 0x1000, E820_RAM), 0);
	CHECK_EQ(m.count, E820_MAX_ENTRIES - 1);
	CHECK_EQ(m.e[0].length, 0x3000);
}

TEST(e820_find_highest_basic)
{
	struct e820_map m;
	u64 b = 0;

	MAKE_MAP(&m, E(0, 0x9f000, E820_RAM), E(0x9f000, 0xa0000, E820_RESERVED),
		 E(0x100000, 0xfff0000, E820_RAM), E(0xfff0000, 0x10000000, E820_ACPI),
		 E(0x100000000ULL, 0x140000000ULL, E820_RAM));

	CHECK_EQ(e820_find_highest(&m, 0x800000, 0x200000, 0, ~0ULL, NULL, 0, &b), 0);
	CHECK_EQ(b, 0x140000000ULL - 0x800000);
	/* Below 4 GiB: the top of the second RAM entry, aligned down. */
	CHECK_EQ(e820_find_highest(&m, 0x800000, 0x200000, 0, 0x100000000ULL, NULL, 0, &b), 0);
	CHECK_EQ(b, 0xf600000);
	CHECK_EQ(e820_find_highest(&m, 0x1000, 0x1000, 0, 0x100000000ULL, NULL, 0, &b), 0);
	CHECK_EQ(b, 0xffef000);
	/* A limit inside an entry. */
	CHECK_EQ(e820_find_highest(&m, 0x1000, 0x1000, 0, 0x123456, NULL, 0, &b), 0);
	CHECK_EQ(b, 0x122000);
	/* A floor that excludes the whole entry. */
	CHECK_EQ(e820_find_highest(&m, 0x100000, 0x1000, 0xff00000, 0x100000000ULL, NULL, 0, &b), -1);
	CHECK_EQ(e820_find_highest(&m, 0x100000, 0x1000, 0xfe00000, 0x100000000ULL, NULL, 0, &b), 0);
	CHECK_EQ(b, 0xfef0000);
	/* Too large for any entry; entries are not combined across a hole. */
	CHECK_EQ(e820_find_highest(&m, 0x40000001ULL, 0x1000, 0, ~0ULL, NULL, 0, &b), -1);
	/* Fits only in low memory. */
	CHECK_EQ(e820_find_highest(&m, 0x9f000, 0x1000, 0, 0x100000, NULL, 0, &b), 0);
	CHECK_EQ(b, 0);
	/* Bad arguments. */
	CHECK_EQ(e820_find_highest(&m, 0, 0x1000, 0, ~0ULL, NULL, 0, &b), -1);
	CHECK_EQ(e820_find_highest(&m, 0x1000, 0x3000, 0, ~0ULL, NULL, 0, &b), -1);
}

TEST(e820_find_highest_avoid)
{
	struct e820_map m;
	u64 b = 0;
	struct phys_range avoid[] = {
		{ 0xf000000, 0x1000000 },      /* top 16 MiB of the RAM entry */
		{ 0xed00000, 0x100000 },       /* a module */
		{ 0x0, 0x0 },                  /* empty: ignored */
	};

	MAKE_MAP(&m, E(0x100000, 0x10000000, E820_RAM));
	CHECK_EQ(e820_find_highest(&m, 0x400000, 0x200000, 0, ~0ULL, avoid, 1, &b), 0);
	CHECK_EQ(b, 0xec00000);
	/* The module in [0xed00000, 0xee00000) pushes the 4 MiB block below it. */
	CHECK_EQ(e820_find_highest(&m, 0x400000, 0x200000, 0, ~0ULL, avoid, 3, &b), 0);
	CHECK_EQ(b, 0xe800000);
	/* 2 MiB fits between the module and the top range. */
	CHECK_EQ(e820_find_highest(&m, 0x200000, 0x200000, 0, ~0ULL, avoid, 3, &b), 0);
	CHECK_EQ(b, 0xee00000);
	/* Avoid ranges given in the opposite order give the same answer. */
	{
		struct phys_range rev[] = { avoid[1], avoid[0] };

		CHECK_EQ(e820_find_highest(&m, 0x400000, 0x200000, 0, ~0ULL, rev, 2, &b), 0);
		CHECK_EQ(b, 0xe800000);
	}
	/* Avoiding everything. */
	{
		struct phys_range all = { 0, ~0ULL };

		CHECK_EQ(e820_find_highest(&m, 0x1000, 0x1000, 0, ~0ULL, &all, 1, &b), -1);
	}
	/* An avoided range starting below `size`: no room under it. */
	{
		struct phys_range low = { 0x100000, 0x10 };

		MAKE_MAP(&m, E(0x0, 0x200000, E820_RAM));
		CHECK_EQ(e820_find_highest(&m, 0x100000, 0x100000, 0, ~0ULL, &low, 1, &b), 0);
		CHECK_EQ(b, 0);
		CHECK_EQ(e820_find_highest(&m, 0x100001, 0x1000, 0, ~0ULL, &low, 1, &b), -1);
	}
}

/* --- Randomised comparison against a model: one type per unit address in [0, SPACE). --- */

#define SPACE 64

static u64 rng_state;

static u32 rnd(u32 n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (u32)(rng_state >> 33) % n;
}

static u64 model_rank(u32 t)
{
	return t == E820_RAM ? 0 : (u64)t + 1;
}

/* The map must be sorted, disjoint, merged, non-empty entries, and match the model (0 = hole). */
static bool map_matches(const struct e820_map *m, const u32 *model)
{
	u32 seen[SPACE] = { 0 };

	for (u32 i = 0; i < m->count; i++) {
		const struct e820_entry *x = &m->e[i];

		if (x->length == 0 || x->base + x->length > SPACE)
			return false;
		if (i && (m->e[i - 1].base + m->e[i - 1].length > x->base))
			return false;
		if (i && m->e[i - 1].base + m->e[i - 1].length == x->base && m->e[i - 1].type == x->type)
			return false;
		for (u64 a = x->base; a < x->base + x->length; a++)
			seen[a] = x->type;
	}
	return memcmp(seen, model, sizeof(seen)) == 0;
}

TEST(e820_random_normalize_and_reserve)
{
	struct e820_map m;
	u32 model[SPACE];

	rng_state = 12345;
	for (int iter = 0; iter < 3000; iter++) {
		u32 n = 1 + rnd(12);

		memset(model, 0, sizeof(model));
		m.count = n;
		for (u32 i = 0; i < n; i++) {
			u64 b = rnd(SPACE), len = rnd(SPACE / 3);
			u32 t = 1 + rnd(5);

			if (b + len > SPACE)
				len = SPACE - b;
			m.e[i].base = b;
			m.e[i].length = len;
			m.e[i].type = t;
			for (u64 a = b; a < b + len; a++)
				if (!model[a] || model_rank(t) > model_rank(model[a]))
					model[a] = t;
		}
		REQUIRE_EQ(e820_normalize(&m), 0);
		if (!map_matches(&m, model)) {
			unit_fail(__FILE__, __LINE__, "normalize mismatch in iteration %d", iter);
			dump(&m);
			return;
		}
		for (int r = 0; r < 3; r++) {
			u64 b = rnd(SPACE), len = 1 + rnd(SPACE / 2);
			u32 t = 1 + rnd(5);

			if (b + len > SPACE)
				len = SPACE - b;
			REQUIRE_EQ(e820_reserve(&m, b, len, t), 0);
			for (u64 a = b; a < b + len; a++)
				model[a] = t;
			if (!map_matches(&m, model)) {
				unit_fail(__FILE__, __LINE__, "reserve mismatch in iteration %d", iter);
				dump(&m);
				return;
			}
		}
	}
}

TEST(e820_random_find_highest)
{
	struct e820_map m;
	u32 model[SPACE];

	rng_state = 777;
	for (int iter = 0; iter < 3000; iter++) {
		struct phys_range avoid[3];
		u32 navoid = rnd(4);
		u64 size = 1 + rnd(12), align = 1ULL << rnd(4), floor = rnd(16), limit = SPACE - rnd(16);
		u64 got = 0, want = 0;
		bool want_ok = false;
		int r;

		memset(model, 0, sizeof(model));
		m.count = 1 + rnd(6);
		for (u32 i = 0; i < m.count; i++) {
			m.e[i].base = rnd(SPACE);
			m.e[i].length = 1 + rnd(SPACE - (u32)m.e[i].base);
			m.e[i].type = rnd(3) ? E820_RAM : E820_RESERVED;
		}
		REQUIRE_EQ(e820_normalize(&m), 0);
		for (u32 i = 0; i < navoid; i++) {
			avoid[i].base = rnd(SPACE);
			avoid[i].length = rnd(8);
		}
		/* Brute force: every aligned base, from the top. */
		for (u64 c = 0; c + size <= SPACE; c += align) {
			bool ok = c >= floor && c + size <= limit;

			bool in_ram = false;

			/* Must lie within one RAM entry. */
			for (u32 i = 0; i < m.count; i++)
				if (m.e[i].type == E820_RAM && c >= m.e[i].base &&
				    c + size <= m.e[i].base + m.e[i].length)
					in_ram = true;
			ok = ok && in_ram;
			for (u32 i = 0; ok && i < navoid; i++)
				if (avoid[i].length && c < avoid[i].base + avoid[i].length &&
				    avoid[i].base < c + size)
					ok = false;
			if (ok) {
				want = c;
				want_ok = true;
			}
		}
		r = e820_find_highest(&m, size, align, floor, limit, avoid, navoid, &got);
		if (r != (want_ok ? 0 : -1) || (want_ok && got != want)) {
			unit_fail(__FILE__, __LINE__,
				  "iteration %d: size %llu align %llu floor %llu limit %llu: got %d/%llu want %d/%llu",
				  iter, (unsigned long long)size, (unsigned long long)align,
				  (unsigned long long)floor, (unsigned long long)limit, r,
				  (unsigned long long)got, want_ok ? 0 : -1, (unsigned long long)want);
			dump(&m);
			return;
		}
	}
}

TEST(e820_type_names)
{
	CHECK_STR_EQ(e820_type_name(E820_RAM), "usable");
	CHECK_STR_EQ(e820_type_name(E820_RESERVED), "reserved");
	CHECK_STR_EQ(e820_type_name(E820_ACPI), "ACPI data");
	CHECK_STR_EQ(e820_type_name(E820_NVS), "ACPI NVS");
	CHECK_STR_EQ(e820_type_name(E820_UNUSABLE), "unusable");
	CHECK_STR_EQ(e820_type_name(0), "other");
}
