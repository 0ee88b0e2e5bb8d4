/* Deny-all VT-d for the hand-off: every unit gets a root table with no present entry, so any DMA
 * request faults (VT-d spec 9.1, fault reason 1 "root entry not present") until the runtime points the
 * units at its real table without turning translation off (lib/vtd-unit.c). */
#include "dmaprot.h"
#include <xmhf/console.h>
#include <lib/acpi.h>
#include <lib/cmdline.h>
#include <lib/dmar.h>
#include <lib/vtd-unit.h>

#define FOUR_GIB (1ULL << 32)

static u64 empty_root[512] __attribute__((aligned(4096)));

static const void *map_low(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	if (pa == 0 || pa >= FOUR_GIB || len > FOUR_GIB - pa)
		return NULL;
	return (const void *)(uintptr_t)pa;
}

void dmaprot_block_all(u64 rsdp_pa, u8 policy)
{
	struct dmar_info dmar;
	char err[96];
	u64 dmar_pa;
	u32 done = 0;

	if (policy == TRUST_OFF || !rsdp_pa || acpi_find_table(map_low, NULL, rsdp_pa, "DMAR", &dmar_pa) ||
	    dmar_parse(map_low, NULL, dmar_pa, &dmar, err, sizeof(err)))
		return;
	for (u32 i = 0; i < dmar.n_drhd; i++) {
		const char *why;
		if (dmar.drhd[i].segment != 0 || dmar.drhd[i].reg_base >= FOUR_GIB)
			continue;
		why = vtd_unit_set_root(dmar.drhd[i].reg_base, (u64)(uintptr_t)empty_root);
		if (why) {
			printf("XMHF: VT-d: unit %u at 0x%llx: %s\n", i, (unsigned long long)dmar.drhd[i].reg_base, why);
			continue;
		}
		done++;
	}
	printf("XMHF: VT-d: all DMA blocked until the runtime's tables are in (%u of %u unit%s)\n", done, dmar.n_drhd,
	       dmar.n_drhd == 1 ? "" : "s");
}
