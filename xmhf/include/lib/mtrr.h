/* Memory types from the MTRRs (SDM Vol. 3, 11.11): the type of an address and whether a whole aligned
 * range has one type, so EPT01 can use large pages where the type is uniform. Pure logic. */
#ifndef LIB_MTRR_H
#define LIB_MTRR_H
#include <xmhf/types.h>

#define MT_UC 0
#define MT_WC 1
#define MT_WT 4
#define MT_WP 5
#define MT_WB 6
#define MT_MIXED (-1)

#define MTRR_MAX_VAR 32
#define MTRR_FIXED_COUNT 88 /* 11 fixed-range MSRs x 8 ranges */

#define MSR_MTRRCAP 0xfe
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_MTRR_PHYSBASE0 0x200 /* PHYSBASEn = 0x200 + 2n, PHYSMASKn = 0x201 + 2n */
#define MSR_MTRR_FIX64K_00000 0x250
#define MSR_MTRR_FIX16K_80000 0x258
#define MSR_MTRR_FIX16K_A0000 0x259
#define MSR_MTRR_FIX4K_C0000 0x268 /* .. 0x26f */

struct mtrr_state {
	bool enabled;        /* IA32_MTRR_DEF_TYPE.E */
	bool fixed_enabled;  /* IA32_MTRR_DEF_TYPE.FE (and fixed ranges supported) */
	u8 def_type;
	u8 fixed[MTRR_FIXED_COUNT];
	u32 nvar;
	struct {
		u64 base; /* IA32_MTRR_PHYSBASEn */
		u64 mask; /* IA32_MTRR_PHYSMASKn, bit 11 = valid */
	} var[MTRR_MAX_VAR];
	u64 phys_mask;       /* (1 << MAXPHYADDR) - 1 */
};

/* The memory type of [base, base + size), where size is a power of two >= 4 KiB and base is aligned to
 * it, or MT_MIXED if parts of the range have different types. */
int mtrr_range_type(const struct mtrr_state *m, u64 base, u64 size);

/* Applies a write of value to MTRR msr (one of the MSRs above) to the state. Returns 0, or -1 if msr is
 * not an MTRR this state describes. */
int mtrr_state_write(struct mtrr_state *m, u32 msr, u64 value);

/* True if msr is one of the MTRR MSRs a guest may write (for nvar variable pairs). */
bool mtrr_is_mtrr_msr(const struct mtrr_state *m, u32 msr);

#endif
