/* VT-d second-level identity tables with the hypervisor's region left out (lib/vtd-pt.c). */
#include <stdlib.h>
#include <lib/vtd-pt.h>
#include "unit.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

struct pool {
	u64 *pages[64];
	u32 n, max;
};

/* "Physical" addresses are indexes + 1, times 4 KiB, so 0 stays "none". */
static u64 pool_alloc(void *ctx)
{
	struct pool *p = ctx;

	if (p->n == p->max)
		return 0;
	p->pages[p->n] = calloc(512, 8);
	return (u64)++p->n << 12;
}

static u64 *pool_table(void *ctx, u64 pa)
{
	struct pool *p = ctx;

	return p->pages[(pa >> 12) - 1];
}

static void pool_free(struct pool *p)
{
	for (u32 i = 0; i < p->n; i++)
		free(p->pages[i]);
}

static void check_map(const char *file, int line, const struct vtd_pt_env *env, u64 root, u32 levels, u64 addr,
		      u64 want_size, bool want_present)
{
	u64 size = 0, e = vtd_pt_lookup(env, root, levels, addr, &size);

	if (!want_present) {
		if (e)
			unit_fail(file, line, "0x%llx is mapped (entry 0x%llx), want not present",
				  (unsigned long long)addr, (unsigned long long)e);
		return;
	}
	if (!e || size != want_size || (e & VTD_SL_ADDR & ~(size - 1)) != (addr & ~(size - 1)) ||
	    (e & 3) != 3)
		unit_fail(file, line, "0x%llx: entry 0x%llx size 0x%llx, want an identity RW page of 0x%llx",
			  (unsigned long long)addr, (unsigned long long)e, (unsigned long long)size,
			  (unsigned long long)want_size);
}
#define CHECK_MAP(addr, size, present) check_map(__FILE__, __LINE__, &env, root, levels, addr, size, present)

TEST(vtd_pt_region_out)
{
	for (u32 levels = 3; levels <= 4; levels++) {
		struct pool p = { .max = 64 };
		struct vtd_pt_env env = { pool_alloc, pool_table, &p };
		/* A 2 MiB-aligned region of 14 MiB, as init places it. */
		u64 lo = 240 * MiB, hi = 254 * MiB;
		u64 root = vtd_pt_build(&env, levels, 4 * GiB, lo, hi);

		REQUIRE(root != 0);
		CHECK_EQ(p.n, (levels == 4 ? 2 : 1) + 4); /* top (+ PDPT) + one PD per GiB, no 4 KiB table */
		CHECK_MAP(0, 2 * MiB, true);
		CHECK_MAP(lo - 1, 2 * MiB, true);
		CHECK_MAP(lo, 0, false);
		CHECK_MAP(lo + 0x47000, 0, false);
		CHECK_MAP(hi - 1, 0, false);
		CHECK_MAP(hi, 2 * MiB, true);
		CHECK_MAP(0xfed90000, 2 * MiB, true);     /* MMIO below 4 GiB stays reachable (P2P) */
		CHECK_MAP(4 * GiB - 1, 2 * MiB, true);
		CHECK_MAP(4 * GiB, 0, false);
		pool_free(&p);
	}
}

TEST(vtd_pt_unaligned_edges)
{
	struct pool p = { .max = 64 };
	struct vtd_pt_env env = { pool_alloc, pool_table, &p };
	u32 levels = 3;
	u64 lo = 3 * MiB + 0x5000, hi = 7 * MiB + 0x3000;
	u64 root = vtd_pt_build(&env, levels, 1 * GiB, lo, hi);

	REQUIRE(root != 0);
	CHECK_EQ(p.n, 2 + 2); /* PDPT, PD, two 4 KiB tables for the cut 2 MiB pages */
	CHECK_MAP(2 * MiB, 4096, true);
	CHECK_MAP(lo - 4096, 4096, true);
	CHECK_MAP(lo, 0, false);
	CHECK_MAP(4 * MiB, 0, false);
	CHECK_MAP(hi - 4096, 0, false);
	CHECK_MAP(hi, 4096, true);
	CHECK_MAP(8 * MiB, 2 * MiB, true);
	pool_free(&p);
}

TEST(vtd_pt_bad_arguments_and_no_memory)
{
	struct pool p = { .max = 3 };
	struct vtd_pt_env env = { pool_alloc, pool_table, &p };

	CHECK_EQ(vtd_pt_build(&env, 5, GiB, 0, 0), 0);
	CHECK_EQ(vtd_pt_build(&env, 3, GiB + 4096, 0, 0), 0);
	CHECK_EQ(vtd_pt_build(&env, 3, 1024 * GiB, 0, 0), 0);
	CHECK_EQ(vtd_pt_build(&env, 3, GiB, 0x1800, 0x4000), 0);
	CHECK_EQ(vtd_pt_build(&env, 3, 4 * GiB, 0, 0), 0); /* needs 5 tables, 3 available */
	pool_free(&p);
}
