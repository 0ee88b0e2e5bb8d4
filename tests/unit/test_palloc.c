/* Bitmap page allocator. */
#include <lib/palloc.h>
#include "unit.h"

#define PG 0x1000ULL

TEST(palloc_bitmap_bytes)
{
	CHECK_EQ(palloc_bitmap_bytes(0), 0);
	CHECK_EQ(palloc_bitmap_bytes(1), 8);
	CHECK_EQ(palloc_bitmap_bytes(64), 8);
	CHECK_EQ(palloc_bitmap_bytes(65), 16);
	CHECK_EQ(palloc_bitmap_bytes(1ULL << 20), (1ULL << 20) / 8);
}

TEST(palloc_basic_and_exhaustion)
{
	u64 bm[2];
	struct palloc pa;
	u64 seen[100];

	palloc_init(&pa, 0x1000000, 100, bm);
	CHECK_EQ(pa.free_pages, 100);
	for (int i = 0; i < 100; i++) {
		seen[i] = palloc_alloc(&pa, 1, 0);
		if (!CHECK(seen[i] >= 0x1000000 && seen[i] < 0x1000000 + 100 * PG && seen[i] % PG == 0))
			return;
		for (int j = 0; j < i; j++)
			CHECK(seen[j] != seen[i]);
	}
	CHECK_EQ(pa.free_pages, 0);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), 0);
	CHECK_EQ(palloc_free(&pa, seen[42], 1), 0);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), seen[42]);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), 0);
}

TEST(palloc_contiguous_and_alignment)
{
	u64 bm[8];
	struct palloc pa;
	u64 a, b, c;

	/* Base deliberately not 2 MiB aligned. */
	palloc_init(&pa, 0x1003000, 512, bm);
	a = palloc_alloc(&pa, 1, PG);
	CHECK_EQ(a, 0x1003000);
	b = palloc_alloc(&pa, 4, 0x10000);
	CHECK_EQ(b % 0x10000, 0);
	CHECK_EQ(b, 0x1010000);
	c = palloc_alloc(&pa, 1, 0x200000);
	CHECK_EQ(c, 0x1200000);
	/* 512 pages from 0x1003000 end at 0x1203000: no second 2 MiB-aligned page. */
	CHECK_EQ(palloc_alloc(&pa, 1, 0x200000), 0);
	/* Run larger than any free stretch (c splits the range). */
	CHECK_EQ(palloc_alloc(&pa, 510, PG), 0);
	CHECK_EQ(pa.free_pages, 512 - 6);
	/* Non-power-of-two alignment and zero pages are refused. */
	CHECK_EQ(palloc_alloc(&pa, 1, 0x3000), 0);
	CHECK_EQ(palloc_alloc(&pa, 0, PG), 0);
	CHECK_EQ(pa.free_pages, 512 - 6);
}

TEST(palloc_free_reuse_and_double_free)
{
	u64 bm[4];
	struct palloc pa;
	u64 a, b;

	palloc_init(&pa, 0x200000, 200, bm);
	a = palloc_alloc(&pa, 10, PG);
	b = palloc_alloc(&pa, 10, PG);
	CHECK_EQ(a, 0x200000);
	CHECK_EQ(b, 0x200000 + 10 * PG);
	CHECK_EQ(palloc_free(&pa, a, 10), 0);
	CHECK_EQ(pa.free_pages, 190);
	/* Freed pages come back. */
	CHECK_EQ(palloc_alloc(&pa, 10, PG), a);
	CHECK_EQ(palloc_free(&pa, a, 10), 0);
	/* Double free, partially double free, unaligned, out of range: refused, nothing changes. */
	CHECK_EQ(palloc_free(&pa, a, 10), -1);
	CHECK_EQ(palloc_free(&pa, b - PG, 2), -1);
	CHECK_EQ(palloc_free(&pa, b + 1, 1), -1);
	CHECK_EQ(palloc_free(&pa, 0x100000, 1), -1);
	CHECK_EQ(palloc_free(&pa, 0x200000 + 199 * PG, 2), -1);
	CHECK_EQ(palloc_free(&pa, 0x200000 + 200 * PG, 1), -1);
	CHECK_EQ(pa.free_pages, 190);
	CHECK_EQ(palloc_free(&pa, b, 10), 0);
	CHECK_EQ(pa.free_pages, 200);
	/* Everything is free again: the whole range in one piece. */
	CHECK_EQ(palloc_alloc(&pa, 200, PG), 0x200000);
}

TEST(palloc_mark_used)
{
	u64 bm[2];
	struct palloc pa;

	palloc_init(&pa, 0x100000, 64, bm);
	palloc_mark_used(&pa, 0x100000, 4);
	CHECK_EQ(pa.free_pages, 60);
	/* Overlapping marks count once; parts outside the range are ignored. */
	palloc_mark_used(&pa, 0x102000, 4);
	CHECK_EQ(pa.free_pages, 58);
	palloc_mark_used(&pa, 0x0, 0x101);    /* [0, 0x101000): one page of the range */
	CHECK_EQ(pa.free_pages, 58);
	palloc_mark_used(&pa, 0x100000 + 62 * PG, 10);
	CHECK_EQ(pa.free_pages, 56);
	palloc_mark_used(&pa, 0x200000, 10);
	CHECK_EQ(pa.free_pages, 56);
	/* An unaligned address marks every page it touches. */
	palloc_mark_used(&pa, 0x100000 + 10 * PG + 0x800, 1);
	CHECK_EQ(pa.free_pages, 54);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), 0x100000 + 6 * PG);
	CHECK_EQ(palloc_alloc(&pa, 4, PG), 0x100000 + 12 * PG);
	/* A huge count saturates instead of wrapping. */
	palloc_mark_used(&pa, 0x100000 + 20 * PG, ~0ULL);
	CHECK_EQ(pa.free_pages, 54 - 5 - (62 - 20));
	/* Marked pages are "allocated": they can be freed. */
	CHECK_EQ(palloc_free(&pa, 0x100000, 1), 0);
}

TEST(palloc_base_zero)
{
	u64 bm[1];
	struct palloc pa;

	/* Address 0 means failure, so page 0 is never handed out. */
	palloc_init(&pa, 0, 4, bm);
	CHECK_EQ(pa.free_pages, 3);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), PG);
	CHECK_EQ(palloc_alloc(&pa, 2, PG), 2 * PG);
	CHECK_EQ(palloc_alloc(&pa, 1, PG), 0);
	CHECK_EQ(palloc_free(&pa, 0, 1), -1);
}

TEST(palloc_random_against_model)
{
	enum { N = 300 };
	u64 bm[(N + 63) / 64];
	bool used[N] = { false };
	struct { u64 addr, n; } live[N];
	u32 nlive = 0;
	u64 rs = 99;
	struct palloc pa;

	palloc_init(&pa, 0x40000000, N, bm);
	for (int it = 0; it < 20000; it++) {
		rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((rs >> 40) % 3 != 0 || nlive == 0) {
			u64 n = 1 + (rs >> 20) % 8, al = PG << ((rs >> 30) % 4);
			u64 a = palloc_alloc(&pa, n, al);
			bool possible = false;

			/* Is there any aligned free run at all? */
			for (u64 i = 0; i + n <= N && !possible; i++) {
				bool ok = (0x40000000 + i * PG) % al == 0;

				for (u64 j = i; ok && j < i + n; j++)
					ok = !used[j];
				possible = ok;
			}
			if (!a) {
				if (!CHECK(!possible))
					return;
				continue;
			}
			if (!CHECK(a % al == 0 && a >= 0x40000000 && a + n * PG <= 0x40000000 + N * PG))
				return;
			for (u64 j = (a - 0x40000000) / PG; j < (a - 0x40000000) / PG + n; j++) {
				if (!CHECK(!used[j]))
					return;
				used[j] = true;
			}
			live[nlive].addr = a;
			live[nlive].n = n;
			nlive++;
		} else {
			u32 k = (u32)((rs >> 20) % nlive);

			REQUIRE_EQ(palloc_free(&pa, live[k].addr, live[k].n), 0);
			for (u64 j = (live[k].addr - 0x40000000) / PG; j < (live[k].addr - 0x40000000) / PG + live[k].n; j++)
				used[j] = false;
			live[k] = live[--nlive];
		}
		{
			u64 nfree = 0;

			for (int j = 0; j < N; j++)
				nfree += !used[j];
			REQUIRE_EQ(pa.free_pages, nfree);
		}
	}
}
