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
#include <lib/vtd-unit.h>
#include <x86/cpu.h>
#include <x86/vtd.h>

#define DOMAIN_ID 1

static struct dmar_info dmar;
static bool active;
static u64 region_lo, region_hi; /* [lo, hi) */

static const void *map_phys(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	return guestmem_ptr(pa, len);
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

/* Every DMAR is renamed with its checksum kept valid, so the guest finds no VT-d to program (XMHF's
 * "zap"). A firmware with a second DMAR would otherwise show the guest that one. */
static u32 hide_dmars(void)
{
	/* "DMAR" -> "XMHF": the byte sum changes by the difference, which the checksum byte absorbs. */
	const u8 delta = (u8)(('X' - 'D') + ('M' - 'M') + ('H' - 'A') + ('F' - 'R'));
	u64 pa;
	u32 n = 0;

	while (acpi_find_table(map_phys, NULL, boot_info->rsdp_pa, "DMAR", &pa) == 0) {
		u8 *t = guestmem_ptr(pa, 36);
		if (!t || n == 16)
			panic("the DMAR at 0x%llx cannot be hidden from the guest", (unsigned long long)pa);
		memcpy(t, "XMHF", 4);
		t[9] = (u8)(t[9] - delta);
		n++;
	}
	return n;
}

static void give_up(const char *what, const char *why)
{
	if (boot_info->cmdline.vtd == TRUST_REQUIRED) {
		printf("XMHF: VT-d: %s%s; vtd=required\n", what, why);
		panic("DMA protection required but not in force");
	}
	printf("XMHF: VT-d: %s%s; DMA protection off, booting on (vtd=required would stop here)\n", what, why);
	/* Units init put under its deny-all table would starve the guest's devices: turn them off. */
	for (u32 i = 0; i < dmar.n_drhd; i++)
		if (dmar.drhd[i].segment == 0 && !vtd_unit_disable(dmar.drhd[i].reg_base))
			printf("XMHF: VT-d: unit %u at 0x%llx: translation would not turn off\n", i,
			       (unsigned long long)dmar.drhd[i].reg_base);
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
	if (boot_info->cmdline.selftest == SELFTEST_DMA_EARLY)
		iommu_selftest_dma(true);
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
		u64 cap = vtd_rd64(dmar.drhd[i].reg_base, VTD_CAP);
		if (dmar.drhd[i].segment != 0) {
			give_up("a remapping unit serves PCI segment other than 0, which this build does not handle", "");
			return;
		}
		if (cap == ~0ULL || !VTD_CAP_SLLPS_2M(cap)) {
			give_up("a remapping unit has no 2 MiB second-level pages or does not answer", "");
			return;
		}
		sagaw &= VTD_CAP_SAGAW(cap);
		mgaw = MIN(mgaw, VTD_CAP_MGAW(cap));
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
	struct vtd_pt_env env = { .alloc_table = heap_table_alloc, .table = heap_table_at, .ctx = NULL };
	sl_pa = vtd_pt_build(&env, levels, top, region_lo, region_hi);
	if (!sl_pa)
		panic("building the VT-d tables failed (top 0x%llx, region 0x%llx-0x%llx)", (unsigned long long)top,
		      (unsigned long long)region_lo, (unsigned long long)region_hi);
	root_pa = build_root_table(sl_pa, aw);
	/* Units that do not snoop page walks (ECAP.C=0) read the tables from memory. */
	__asm__ volatile("wbinvd" ::: "memory");
	for (u32 i = 0; i < dmar.n_drhd; i++) {
		const char *why = vtd_unit_set_root(dmar.drhd[i].reg_base, root_pa);
		if (why) {
			printf("XMHF: VT-d: unit %u at 0x%llx: %s\n", i, (unsigned long long)dmar.drhd[i].reg_base, why);
			give_up("a remapping unit failed", "");
			return;
		}
	}
	active = true;
	u32 hidden = hide_dmars();
	printf("XMHF: VT-d: DMA remapping on in %u unit%s (%u-level tables, %llu GiB mapped, %llu KiB of tables); "
	       "region 0x%llx-0x%llx not reachable by DMA; DMAR hidden from the guest%s\n",
	       dmar.n_drhd, dmar.n_drhd == 1 ? "" : "s", levels, (unsigned long long)(top >> 30),
	       (unsigned long long)((before - heap_free_bytes()) >> 10), (unsigned long long)region_lo,
	       (unsigned long long)(region_hi - 1), hidden > 1 ? " (all of them)" : "");
	if (boot_info->cmdline.selftest == SELFTEST_DMA_EARLY)
		printf("XMHF: selftest: %u DMA fault records from init's deny-all table\n", iommu_report_faults());
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
		u64 base = dmar.drhd[i].reg_base, cap = vtd_rd64(base, VTD_CAP);
		u32 fsts = vtd_rd32(base, VTD_FSTS);

		if (fsts & VTD_FSTS_PFO)
			printf("XMHF: VT-d: unit %u: fault records overflowed, some faults were lost\n", i);
		for (u32 r = 0; r < VTD_CAP_NFR(cap); r++) {
			u32 off = VTD_CAP_FRO(cap) + 16 * r;
			u64 hi = vtd_rd64(base, off + 8);
			if (!(hi >> 63))
				continue;
			u64 lo = vtd_rd64(base, off);
			u32 sid = (u32)(hi & 0xffff), fr = (u32)((hi >> 32) & 0xff);
			/* 10.4.14: T (bit 126) is 0 for a write request, 1 for a read. */
			printf("XMHF: VT-d: DMA fault: device %02x:%02x.%u %s at 0x%llx blocked, reason 0x%x (%s)\n",
			       sid >> 8, (sid >> 3) & 0x1f, sid & 7, (hi >> 62) & 1 ? "read" : "write",
			       (unsigned long long)(lo & ~0xfffULL), fr, fault_reason(fr));
			vtd_wr32(base, off + 12, VTD_FRCD_F);
			n++;
		}
		vtd_wr32(base, VTD_FSTS, VTD_FSTS_PFO);
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
