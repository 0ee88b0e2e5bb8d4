/* VT-d second-level identity tables with a hole (VT-d spec 9.8 "Second-Level Paging Entries"). */
#include <lib/vtd-pt.h>

#define TABLE_RW (VTD_SL_R | VTD_SL_W)

static u64 *tab(const struct vtd_pt_env *env, u64 pa)
{
	return env->table(env->ctx, pa);
}

/* One 2 MiB slot at pa: a large page outside the hole, nothing inside it, a 4 KiB table at its edge. */
static int fill_2m(const struct vtd_pt_env *env, u64 *pde, u64 pa, u64 lo, u64 hi)
{
	const u64 end = pa + (2ULL << 20);

	if (end <= lo || pa >= hi) {
		*pde = pa | VTD_SL_PS | TABLE_RW;
		return 0;
	}
	if (pa >= lo && end <= hi)
		return 0;
	u64 pt_pa = env->alloc_table(env->ctx);
	if (!pt_pa)
		return -1;
	u64 *pt = tab(env, pt_pa);
	for (u64 k = 0; k < 512; k++) {
		u64 p = pa + (k << 12);
		pt[k] = (p >= lo && p < hi) ? 0 : p | TABLE_RW;
	}
	*pde = pt_pa | TABLE_RW;
	return 0;
}

u64 vtd_pt_build(const struct vtd_pt_env *env, u32 levels, u64 top, u64 hole_lo, u64 hole_hi)
{
	u64 root, pdpt_pa;

	if ((levels != 3 && levels != 4) || !top || (top & ((1ULL << 30) - 1)) || top > (512ULL << 30) ||
	    (hole_lo & 0xfff) || (hole_hi & 0xfff) || hole_hi < hole_lo)
		return 0;
	root = pdpt_pa = env->alloc_table(env->ctx);
	if (!root)
		return 0;
	if (levels == 4) {
		pdpt_pa = env->alloc_table(env->ctx);
		if (!pdpt_pa)
			return 0;
		tab(env, root)[0] = pdpt_pa | TABLE_RW;
	}
	for (u64 g = 0; g < top >> 30; g++) {
		u64 pd_pa = env->alloc_table(env->ctx);
		if (!pd_pa)
			return 0;
		tab(env, pdpt_pa)[g] = pd_pa | TABLE_RW;
		for (u64 m = 0; m < 512; m++)
			if (fill_2m(env, &tab(env, pd_pa)[m], (g << 30) | (m << 21), hole_lo, hole_hi))
				return 0;
	}
	return root;
}

u64 vtd_pt_lookup(const struct vtd_pt_env *env, u64 root, u32 levels, u64 addr, u64 *page_size)
{
	u64 e = root | TABLE_RW;

	for (int shift = levels == 4 ? 39 : 30; shift >= 12; shift -= 9) {
		e = tab(env, e & VTD_SL_ADDR)[(addr >> shift) & 511];
		if (!(e & TABLE_RW))
			return 0;
		if (shift == 12 || (e & VTD_SL_PS)) {
			*page_size = 1ULL << shift;
			return e;
		}
	}
	return 0;
}
