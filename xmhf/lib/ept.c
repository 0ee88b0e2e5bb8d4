/* Identity EPT construction (SDM Vol. 3, 29.3.2: EPT paging-structure entries). */
#include <lib/ept.h>

#define EPT_R (1ULL << 0)
#define EPT_W (1ULL << 1)
#define EPT_X (1ULL << 2)
#define EPT_PS (1ULL << 7)
#define EPT_ADDR_MASK 0x000ffffffffff000ULL
#define EPT_TYPE_MASK (7ULL << 3)

static u64 level_size(int level)
{
	return 1ULL << (12 + 9 * (level - 1));
}

static bool leaf_allowed(const struct ept_env *env, int level)
{
	return level == 1 || (level == 2 && env->page_2m) || (level == 3 && env->page_1g);
}

/* 1: range entirely inside a hole; -1: partly; 0: no overlap. */
static int hole_overlap(const struct ept_env *env, u64 base, u64 size)
{
	for (u32 i = 0; i < env->nholes; i++) {
		u64 hb = env->holes[i].base, he = hb + env->holes[i].length;
		if (he <= base || hb >= base + size)
			continue;
		return (hb <= base && he >= base + size) ? 1 : -1;
	}
	return 0;
}

static u64 leaf_entry(u64 addr, int level, int type)
{
	return addr | EPT_R | EPT_W | EPT_X | ((u64)type << 3) | (level > 1 ? EPT_PS : 0);
}

/* Maps [lo, hi) of the table at table_pa (level, covering from base) as an identity map. Entries
 * already present stay as they are (tables are descended into), so this both builds a map and
 * extends one. */
static int fill(const struct ept_env *env, u64 table_pa, int level, u64 base, u64 lo, u64 hi)
{
	u64 *t = env->table(env->ctx, table_pa);
	u64 size = level_size(level);

	for (u32 i = 0; i < 512; i++) {
		u64 addr = base + i * size;
		int hole, type;

		if (addr >= hi)
			break;
		if (addr + size <= lo)
			continue;
		if (t[i] & (EPT_R | EPT_W | EPT_X)) {
			if (level > 1 && !(t[i] & EPT_PS) &&
			    fill(env, t[i] & EPT_ADDR_MASK, level - 1, addr, lo, hi))
				return -1;
			continue;
		}
		hole = hole_overlap(env, addr, size);
		if (hole == 1)
			continue;
		type = mtrr_range_type(env->mtrr, addr, size);
		if (hole == 0 && type != MT_MIXED && addr >= lo && addr + size <= hi && leaf_allowed(env, level)) {
			t[i] = leaf_entry(addr, level, type);
			continue;
		}
		if (level == 1) /* 4 KiB: a hole or the bounds always align to pages; types never mix */
			continue;
		u64 child = env->alloc_table(env->ctx);
		if (!child)
			return -1;
		t[i] = child | EPT_R | EPT_W | EPT_X;
		if (fill(env, child, level - 1, addr, lo, hi))
			return -1;
	}
	return 0;
}

u64 ept_build_identity(const struct ept_env *env, u64 top)
{
	u64 pml4 = env->alloc_table(env->ctx);

	if (!pml4 || fill(env, pml4, 4, 0, 0, top))
		return 0;
	return pml4;
}

int ept_map_identity(const struct ept_env *env, u64 pml4_pa, u64 lo, u64 hi)
{
	return fill(env, pml4_pa, 4, 0, lo, hi);
}

u64 ept_lookup(const struct ept_env *env, u64 pml4_pa, u64 gpa, int *level)
{
	u64 table = pml4_pa;

	for (int l = 4; l >= 1; l--) {
		u64 e = env->table(env->ctx, table)[(gpa >> (12 + 9 * (l - 1))) & 511];
		if (!(e & (EPT_R | EPT_W | EPT_X)))
			return 0;
		if (l == 1 || (e & EPT_PS)) {
			*level = l;
			return e;
		}
		table = e & EPT_ADDR_MASK;
	}
	return 0;
}

/* Replaces the large leaf at *e (level l > 1) by a table of 512 smaller leaves with the same rights
 * and type. */
static int split(const struct ept_env *env, u64 *e, int l)
{
	u64 child = env->alloc_table(env->ctx);
	u64 *c;
	u64 sub = level_size(l - 1);
	u64 attrs = *e & (EPT_R | EPT_W | EPT_X | EPT_TYPE_MASK | (1ULL << 6));

	if (!child)
		return -1;
	c = env->table(env->ctx, child);
	for (u32 i = 0; i < 512; i++)
		c[i] = ((*e & EPT_ADDR_MASK & ~(level_size(l) - 1)) + i * sub) | attrs | (l - 1 > 1 ? EPT_PS : 0);
	*e = child | EPT_R | EPT_W | EPT_X;
	return 0;
}

u64 *ept_leaf(const struct ept_env *env, u64 pml4_pa, u64 gpa, bool want_split)
{
	u64 table = pml4_pa;

	for (int l = 4; l >= 1; l--) {
		u64 *e = &env->table(env->ctx, table)[(gpa >> (12 + 9 * (l - 1))) & 511];
		if (!(*e & (EPT_R | EPT_W | EPT_X)) && l > 1 && !(*e & EPT_PS))
			return NULL;
		if (l == 1)
			return e;
		if (*e & EPT_PS) {
			if (!want_split)
				return e;
			if (split(env, e, l))
				return NULL;
		}
		table = *e & EPT_ADDR_MASK;
	}
	return NULL;
}

static int retype(const struct ept_env *env, u64 table_pa, int level, u64 base)
{
	u64 *t = env->table(env->ctx, table_pa);
	u64 size = level_size(level);

	for (u32 i = 0; i < 512; i++) {
		u64 *e = &t[i];
		u64 addr = base + i * size;

		/* Fix: a leaf whose rights were removed (a trapped page: a non-zero 4 KiB entry, or a large
		 * one with PS, as ept_leaf treats them) was skipped and kept a stale type (and a large one
		 * was not split), wrong once its rights are restored. Only empty entries (holes) and
		 * not-present tables are skipped. */
		if (!(*e & (EPT_R | EPT_W | EPT_X)) && !(level == 1 ? *e != 0 : (*e & EPT_PS) != 0))
			continue;
		if (level > 1 && !(*e & EPT_PS)) {
			if (retype(env, *e & EPT_ADDR_MASK, level - 1, addr))
				return -1;
			continue;
		}
		int type = mtrr_range_type(env->mtrr, addr, size);
		if (type == MT_MIXED) {
			if (split(env, e, level) || retype(env, *e & EPT_ADDR_MASK, level - 1, addr))
				return -1;
			continue;
		}
		*e = (*e & ~EPT_TYPE_MASK) | ((u64)type << 3);
	}
	return 0;
}

int ept_update_memtypes(const struct ept_env *env, u64 pml4_pa)
{
	return retype(env, pml4_pa, 4, 0);
}
