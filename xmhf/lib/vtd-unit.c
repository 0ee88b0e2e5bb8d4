/* One remapping unit's root-table switch (VT-d spec 10.4.4 GCMD, 10.4.6 RTADDR, 10.4.7 CCMD, 10.4.8
 * IOTLB, 10.4.16 PMEN; the order of 6.5 "Invalidation"). */
#include <lib/vtd-unit.h>
#include <x86/vtd.h>

#define WAIT_LOOPS 10000000u

/* Issues a GCMD command bit and waits until GSTS shows it (set or clear); false on timeout. */
static bool gcmd(u64 base, u32 bit, bool want_set)
{
	vtd_wr32(base, VTD_GCMD, (vtd_rd32(base, VTD_GSTS) & VTD_GSTS_STATE_BITS) | bit);
	for (u32 i = 0; i < WAIT_LOOPS; i++)
		if (!!(vtd_rd32(base, VTD_GSTS) & bit) == want_set)
			return true;
	return false;
}

/* Waits for a self-clearing bit in the top dword of a 64-bit register. */
static bool wait_hi_clear(u64 base, u32 off, u64 bit)
{
	for (u32 i = 0; i < WAIT_LOOPS; i++)
		if (!(vtd_rd32(base, off + 4) & (u32)(bit >> 32)))
			return true;
	return false;
}

const char *vtd_unit_set_root(u64 base, u64 root_pa)
{
	u64 cap = vtd_rd64(base, VTD_CAP), ecap = vtd_rd64(base, VTD_ECAP);
	u32 iotlb = VTD_ECAP_IRO(ecap) + 8;

	if (cap == ~0ULL || cap == 0)
		return "no remapping unit answers at its register base";
	vtd_wr64(base, VTD_RTADDR, root_pa);
	if (!gcmd(base, VTD_GCMD_SRTP, true))
		return "the root table pointer was not latched";
	if (VTD_CAP_RWBF(cap) && !gcmd(base, VTD_GCMD_WBF, false))
		return "the write buffer did not flush";
	/* The command is in the top dword: write the low half first. */
	vtd_wr64(base, VTD_CCMD, VTD_CCMD_ICC | VTD_CCMD_GLOBAL);
	if (!wait_hi_clear(base, VTD_CCMD, VTD_CCMD_ICC))
		return "the context cache did not invalidate";
	vtd_wr64(base, iotlb, VTD_IOTLB_IVT | VTD_IOTLB_GLOBAL | VTD_IOTLB_DRAIN);
	if (!wait_hi_clear(base, iotlb, VTD_IOTLB_IVT))
		return "the IOTLB did not invalidate";
	vtd_wr32(base, VTD_FECTL, VTD_FECTL_IM);
	if (!(vtd_rd32(base, VTD_GSTS) & VTD_GCMD_TE) && !gcmd(base, VTD_GCMD_TE, true))
		return "translation did not turn on";
	/* Protected memory ranges tboot/SINIT set on a TXT launch would keep blocking DMA to the guest's
	 * memory; with translation on they are redundant (Linux drops them the same way). */
	if (vtd_rd32(base, VTD_PMEN) & VTD_PMEN_PRS) {
		vtd_wr32(base, VTD_PMEN, 0);
		for (u32 i = 0; i < WAIT_LOOPS && (vtd_rd32(base, VTD_PMEN) & VTD_PMEN_PRS); i++)
			;
		if (vtd_rd32(base, VTD_PMEN) & VTD_PMEN_PRS)
			return "the protected memory ranges would not turn off";
	}
	return NULL;
}

bool vtd_unit_disable(u64 base)
{
	if (!(vtd_rd32(base, VTD_GSTS) & VTD_GCMD_TE))
		return true;
	vtd_wr32(base, VTD_GCMD, vtd_rd32(base, VTD_GSTS) & VTD_GSTS_STATE_BITS & ~VTD_GCMD_TE);
	for (u32 i = 0; i < WAIT_LOOPS; i++)
		if (!(vtd_rd32(base, VTD_GSTS) & VTD_GCMD_TE))
			return true;
	return false;
}
