/* VT-d DMA remapping, legacy (non-scalable) mode: root table -> one context table shared by all 256
 * buses -> one domain whose second-level table (lib/vtd-pt.c) maps [0, top) 1:1 with 2 MiB pages,
 * except the hypervisor's region, which stays not present, so any DMA to it faults (VT-d spec 3.4 "Legacy Mode
 * Address Translation", 9.1-9.3 root/context entries, 9.8 second-level entries, 10.4 registers). */
#include <xmhf/iommu.h>
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/acpi.h>
#include <lib/dmar.h>
#include <lib/e820.h>
#include <lib/string.h>
#include <lib/vtd-pt.h>
#include <x86/cpu.h>

/* Register offsets (10.4). */
#define VTD_CAP 0x08
#define VTD_ECAP 0x10
#define VTD_GCMD 0x18
#define VTD_GSTS 0x1c
#define VTD_RTADDR 0x20
#define VTD_CCMD 0x28
#define VTD_FSTS 0x34
#define VTD_FECTL 0x38
#define VTD_PMEN 0x64

#define GCMD_TE (1u << 31)
#define GCMD_SRTP (1u << 30)
#define GCMD_WBF (1u << 27)
/* GSTS bits that are states, carried into every GCMD write (10.4.4: write the others as 0). */
#define GSTS_STATE_BITS (GCMD_TE | (1u << 26) | (1u << 25) | (1u << 23))

#define CAP_RWBF(c) (((c) >> 4) & 1)
#define CAP_SAGAW(c) (((c) >> 8) & 0x1f)
#define CAP_MGAW(c) ((u32)(((c) >> 16) & 0x3f) + 1)
#define CAP_FRO(c) ((u32)(((c) >> 24) & 0x3ff) * 16)
#define CAP_SLLPS_2M(c) (((c) >> 34) & 1)
#define CAP_NFR(c) ((u32)(((c) >> 40) & 0xff) + 1)
#define ECAP_C(e) ((e) & 1)
#define ECAP_IRO(e) ((u32)(((e) >> 8) & 0x3ff) * 16)

#define CCMD_ICC (1ULL << 63)
#define CCMD_GLOBAL (1ULL << 61)
#define IOTLB_IVT (1ULL << 63)
#define IOTLB_GLOBAL (1ULL << 60)
#define IOTLB_DRAIN (3ULL << 48)

#define PMEN_EPM (1u << 31)
#define PMEN_PRS (1u << 0)
#define FSTS_PFO (1u << 0)
#define FSTS_PPF (1u << 1)
#define FECTL_IM (1u << 31)
#define FRCD_F (1u << 31)   /* in the fault record's top dword */

#define DOMAIN_ID 1

#define WAIT_LOOPS 10000000u

static struct dmar_info dmar;
static bool active;
static u64 region_lo, region_hi; /* [lo, hi) */

static volatile u32 *reg32(u64 base, u32 off)
{
	return (volatile u32 *)(uintptr_t)(base + off);
}

static u32 rd32(u64 base, u32 off)
{
	return *reg32(base, off);
}

static void wr32(u64 base, u32 off, u32 v)
{
	*reg32(base, off) = v;
}

static u64 rd64(u64 base, u32 off)
{
	return *(volatile u64 *)(uintptr_t)(base + off);
}

static void wr64(u64 base, u32 off, u64 v)
{
	*(volatile u64 *)(uintptr_t)(base + off) = v;
}

static const void *map_phys(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	return guestmem_ptr(pa, len);
}

/* Sets a GCMD command bit and waits for its status (10.4.4); false on timeout. */
static bool gcmd(u64 base, u32 bit, bool want_set)
{
	wr32(base, VTD_GCMD, (rd32(base, VTD_GSTS) & GSTS_STATE_BITS) | bit);
	for (u32 i = 0; i < WAIT_LOOPS; i++)
		if (!!(rd32(base, VTD_GSTS) & bit) == want_set)
			return true;
	return false;
}

static bool wait64_clear(u64 base, u32 off, u64 bit)
{
	for (u32 i = 0; i < WAIT_LOOPS; i++)
		if (!(rd64(base, off) & bit))
			return true;
	return false;
}

static u64 alloc_table(void *ctx)
{
	(void)ctx;
	return (u64)(uintptr_t)page_alloc(1);
}

static u64 *table(void *ctx, u64 pa)
{
	(void)ctx;
	return (u64 *)(uintptr_t)pa;
}

/* Root and context tables (9.1, 9.3): every bus shares one context table, every device one domain. */
static u64 build_root_table(u64 sl_pa, u32 aw)
{
	u64 *roottab = page_alloc(1), *ctx = page_alloc(1);

	for (u32 devfn = 0; devfn < 256; devfn++) {
		ctx[2 * devfn] = sl_pa | 1;                                   /* present, TT=00: untranslated */
		ctx[2 * devfn + 1] = (u64)aw | ((u64)DOMAIN_ID << 8);
	}
	for (u32 bus = 0; bus < 256; bus++)
		roottab[2 * bus] = (u64)(uintptr_t)ctx | 1;
	return (u64)(uintptr_t)roottab;
}

static const char *enable_unit(u64 base, u64 root_pa)
{
	u64 ecap = rd64(base, VTD_ECAP), cap = rd64(base, VTD_CAP);

	if (rd32(base, VTD_GSTS) & GCMD_TE) {
		/* Left on by firmware: switch it off while the root table changes. */
		if (!gcmd(base, GCMD_TE, false))
			return "translation would not turn off";
	}
	wr64(base, VTD_RTADDR, root_pa);
	if (!gcmd(base, GCMD_SRTP, true))
		return "the root table pointer was not latched";
	if (CAP_RWBF(cap) && !gcmd(base, GCMD_WBF, false))
		return "the write buffer did not flush";
	wr64(base, VTD_CCMD, CCMD_ICC | CCMD_GLOBAL);
	if (!wait64_clear(base, VTD_CCMD, CCMD_ICC))
		return "the context cache did not invalidate";
	wr64(base, ECAP_IRO(ecap) + 8, IOTLB_IVT | IOTLB_GLOBAL | IOTLB_DRAIN);
	if (!wait64_clear(base, ECAP_IRO(ecap) + 8, IOTLB_IVT))
		return "the IOTLB did not invalidate";
	/* Faults are polled (iommu_report_faults), not signalled. */
	wr32(base, VTD_FECTL, FECTL_IM);
	if (!gcmd(base, GCMD_TE, true))
		return "translation did not turn on";
	/* Protected memory ranges (10.4.16) that tboot/SINIT set on a TXT launch would keep blocking DMA to
	 * the guest's memory; with translation on they are redundant (Linux drops them the same way). */
	if (rd32(base, VTD_PMEN) & PMEN_PRS) {
		wr32(base, VTD_PMEN, 0);
		for (u32 i = 0; i < WAIT_LOOPS && (rd32(base, VTD_PMEN) & PMEN_PRS); i++)
			;
		if (rd32(base, VTD_PMEN) & PMEN_PRS)
			return "the protected memory ranges would not turn off";
	}
	return NULL;
}

/* The DMAR is renamed and its checksum kept valid, so the guest finds no VT-d to program (XMHF: "zap"). */
static void hide_dmar(u64 dmar_pa)
{
	u8 *t = guestmem_ptr(dmar_pa, 36);
	u64 again;

	if (!t)
		return;
	/* "DMAR" -> "XMHF": the byte sum changes by the difference, which the checksum byte absorbs. */
	u8 delta = (u8)(('X' - 'D') + ('M' - 'M') + ('H' - 'A') + ('F' - 'R'));
	memcpy(t, "XMHF", 4);
	t[9] = (u8)(t[9] - delta);
	if (acpi_find_table(map_phys, NULL, boot_info->rsdp_pa, "DMAR", &again) == 0)
		panic("the DMAR at 0x%llx is still visible after hiding it", (unsigned long long)again);
}

static void give_up(const char *what, const char *why)
{
	if (boot_info->cmdline.vtd == TRUST_REQUIRED) {
		printf("XMHF: VT-d: %s%s; vtd=required\n", what, why);
		panic("DMA protection required but not in force");
	}
	printf("XMHF: VT-d: %s%s; DMA protection off, booting on (vtd=required would stop here)\n", what, why);
}

void iommu_init(void)
{
	u64 dmar_pa, top = 1ULL << 32, sl_pa, root_pa;
	u32 levels = 0, aw = 0;
	char err[96];

	if (boot_info->cmdline.vtd == TRUST_OFF) {
		printf("XMHF: VT-d: vtd=off, DMA protection off\n");
		return;
	}
	if (!boot_info->rsdp_pa || acpi_find_table(map_phys, NULL, boot_info->rsdp_pa, "DMAR", &dmar_pa)) {
		give_up("no ACPI DMAR table (no VT-d, or it is off in the firmware)", "");
		return;
	}
	if (dmar_parse(map_phys, NULL, dmar_pa, &dmar, err, sizeof(err))) {
		give_up("the DMAR table is malformed: ", err);
		return;
	}
	region_lo = boot_info->region_base;
	region_hi = region_lo + boot_info->region_size;
	/* RAM and the MMIO below 4 GiB: what devices reach (not reserved ranges far above RAM). */
	top = ALIGN_UP(MAX(top, e820_ram_top(&boot_info->e820_firmware)), PAGE_SIZE_1G);

	/* One table format for all units: what every unit supports (SAGAW bit 1: 3 levels, bit 2: 4). */
	u32 sagaw = 0x1f, mgaw = 64;
	for (u32 i = 0; i < dmar.n_drhd; i++) {
		u64 cap = rd64(dmar.drhd[i].reg_base, VTD_CAP);
		if (dmar.drhd[i].segment != 0) {
			give_up("a remapping unit serves PCI segment other than 0, which this build does not handle", "");
			return;
		}
		if (cap == ~0ULL || !CAP_SLLPS_2M(cap)) {
			give_up("a remapping unit has no 2 MiB second-level pages or does not answer", "");
			return;
		}
		sagaw &= CAP_SAGAW(cap);
		mgaw = MIN(mgaw, CAP_MGAW(cap));
	}
	if (sagaw & 4) {
		levels = 4;
		aw = 2;
	} else if (sagaw & 2) {
		levels = 3;
		aw = 1;
	} else {
		give_up("the remapping units share no 3- or 4-level table format", "");
		return;
	}
	if (mgaw < 64 && top > (1ULL << mgaw))
		top = 1ULL << mgaw;
	if (top > (512ULL << 30)) {
		give_up("more than 512 GiB of physical memory, beyond this build's DMA tables", "");
		return;
	}

	u64 before = heap_free_bytes();
	struct vtd_pt_env env = { .alloc_table = alloc_table, .table = table, .ctx = NULL };
	sl_pa = vtd_pt_build(&env, levels, top, region_lo, region_hi);
	if (!sl_pa)
		panic("building the VT-d tables failed (top 0x%llx, region 0x%llx-0x%llx)", (unsigned long long)top,
		      (unsigned long long)region_lo, (unsigned long long)region_hi);
	root_pa = build_root_table(sl_pa, aw);
	/* Units that do not snoop page walks (ECAP.C=0) read the tables from memory. */
	__asm__ volatile("wbinvd" ::: "memory");
	for (u32 i = 0; i < dmar.n_drhd; i++) {
		const char *why = enable_unit(dmar.drhd[i].reg_base, root_pa);
		if (why) {
			printf("XMHF: VT-d: unit %u at 0x%llx: %s\n", i, (unsigned long long)dmar.drhd[i].reg_base, why);
			give_up("a remapping unit failed", "");
			return;
		}
	}
	active = true;
	hide_dmar(dmar_pa);
	printf("XMHF: VT-d: DMA remapping on in %u unit%s (%u-level tables, %llu GiB mapped, %llu KiB of tables); "
	       "region 0x%llx-0x%llx not reachable by DMA; DMAR hidden from the guest\n",
	       dmar.n_drhd, dmar.n_drhd == 1 ? "" : "s", levels, (unsigned long long)(top >> 30),
	       (unsigned long long)((before - heap_free_bytes()) >> 10), (unsigned long long)region_lo,
	       (unsigned long long)(region_hi - 1));
}

bool iommu_active(void)
{
	return active;
}

static const char *fault_reason(u32 fr)
{
	switch (fr) {
	case 1: return "root entry not present";
	case 2: return "context entry not present";
	case 3: return "invalid context entry";
	case 4: return "address beyond the guest address width";
	case 5: return "write to a page without write permission";
	case 6: return "read from a page without read permission";
	case 7: return "invalid second-level table pointer";
	default: return "other";
	}
}

u32 iommu_report_faults(void)
{
	u32 n = 0;

	if (!active)
		return 0;
	for (u32 i = 0; i < dmar.n_drhd; i++) {
		u64 base = dmar.drhd[i].reg_base, cap = rd64(base, VTD_CAP);
		u32 fsts = rd32(base, VTD_FSTS);

		if (fsts & FSTS_PFO)
			printf("XMHF: VT-d: unit %u: fault records overflowed, some faults were lost\n", i);
		for (u32 r = 0; r < CAP_NFR(cap); r++) {
			u32 off = CAP_FRO(cap) + 16 * r;
			u64 hi = rd64(base, off + 8);
			if (!(hi >> 63))
				continue;
			u64 lo = rd64(base, off);
			u32 sid = (u32)(hi & 0xffff), fr = (u32)((hi >> 32) & 0xff);
			/* 10.4.14: T (bit 126) is 0 for a write request, 1 for a read. */
			printf("XMHF: VT-d: DMA fault: device %02x:%02x.%u %s at 0x%llx blocked, reason 0x%x (%s)\n",
			       sid >> 8, (sid >> 3) & 0x1f, sid & 7, (hi >> 62) & 1 ? "read" : "write",
			       (unsigned long long)(lo & ~0xfffULL), fr, fault_reason(fr));
			wr32(base, off + 12, FRCD_F);
			n++;
		}
		wr32(base, VTD_FSTS, FSTS_PFO);
	}
	return n;
}

void iommu_protect_registers(void)
{
	if (!active)
		return;
	for (u32 i = 0; i < dmar.n_drhd; i++)
		for (u32 p = 0; p < dmar.drhd[i].reg_pages; p++)
			ept01_set_page_rights(dmar.drhd[i].reg_base + (u64)p * PAGE_SIZE_4K, 0);
}
