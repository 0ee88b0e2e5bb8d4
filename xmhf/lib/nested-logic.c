/* EPT12 walks for EPT02 (SDM Vol. 3, 29.3). */
#include <lib/nested-logic.h>

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
	if (!leaf && (e & (7ULL << 3)))
		return true; /* reserved in non-leaf entries */
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
