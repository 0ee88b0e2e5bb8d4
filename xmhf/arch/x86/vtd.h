/* Intel VT-d remapping unit registers (VT-d specification 10.4), reached at their physical address:
 * init runs with paging off and the runtime identity-maps MMIO. */
#ifndef X86_VTD_H
#define X86_VTD_H
#include <xmhf/types.h>

#define VTD_CAP 0x08
#define VTD_ECAP 0x10
#define VTD_GCMD 0x18
#define VTD_GSTS 0x1c
#define VTD_RTADDR 0x20
#define VTD_CCMD 0x28
#define VTD_FSTS 0x34
#define VTD_FECTL 0x38
#define VTD_PMEN 0x64

#define VTD_GCMD_TE (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_GCMD_WBF (1u << 27)
/* GSTS bits that are states, carried into every GCMD write (10.4.4: write the others as 0). */
#define VTD_GSTS_STATE_BITS (VTD_GCMD_TE | (1u << 26) | (1u << 25) | (1u << 23))

#define VTD_CAP_RWBF(c) (((c) >> 4) & 1)
#define VTD_CAP_SAGAW(c) ((u32)((c) >> 8) & 0x1f)
#define VTD_CAP_MGAW(c) ((u32)(((c) >> 16) & 0x3f) + 1)
#define VTD_CAP_FRO(c) ((u32)(((c) >> 24) & 0x3ff) * 16)
#define VTD_CAP_SLLPS_2M(c) (((c) >> 34) & 1)
#define VTD_CAP_NFR(c) ((u32)(((c) >> 40) & 0xff) + 1)
#define VTD_ECAP_IRO(e) ((u32)(((e) >> 8) & 0x3ff) * 16)

#define VTD_CCMD_ICC (1ULL << 63)
#define VTD_CCMD_GLOBAL (1ULL << 61)
#define VTD_IOTLB_IVT (1ULL << 63)
#define VTD_IOTLB_GLOBAL (1ULL << 60)
#define VTD_IOTLB_DRAIN (3ULL << 48)
#define VTD_PMEN_PRS (1u << 0)
#define VTD_FSTS_PFO (1u << 0)
#define VTD_FECTL_IM (1u << 31)
#define VTD_FRCD_F (1u << 31)   /* in a fault record's top dword */

static inline u32 vtd_rd32(u64 base, u32 off)
{
	return *(volatile u32 *)(uintptr_t)(base + off);
}

static inline void vtd_wr32(u64 base, u32 off, u32 v)
{
	*(volatile u32 *)(uintptr_t)(base + off) = v;
}

/* 64-bit registers as two 32-bit accesses, low half first (10.4: software may do so), so init's
 * 32-bit code reads them too. */
static inline u64 vtd_rd64(u64 base, u32 off)
{
	return vtd_rd32(base, off) | (u64)vtd_rd32(base, off + 4) << 32;
}

static inline void vtd_wr64(u64 base, u32 off, u64 v)
{
	vtd_wr32(base, off, (u32)v);
	vtd_wr32(base, off + 4, (u32)(v >> 32));
}

#endif
