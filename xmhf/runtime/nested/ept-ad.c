/* Accessed and dirty flags for EPT12 (SDM Vol. 3, 29.3.5), emulated as KVM's shadow EPT does. L2 runs
 * on EPT02, so the CPU sets flags only there; L0 sets them in L1's EPT12 when it fills EPT02 after an
 * EPT violation: A in every EPT12 entry of the walk, D in the leaf for a write. An EPT02 leaf is
 * writable only once its EPT12 leaf is dirty (ept02_compose), so L2's first write to a clean page
 * faults into L0, which sets D (and logs the page for PML, pml.c). EPTP02 enables A/D when EPTP12
 * does, so the CPU treats L2's guest paging-structure accesses as writes, as it would on EPT12.
 * L1 may change its EPT12 entries concurrently from another CPU: each flag is set with a compare and
 * exchange against the entry as walked, and a changed entry makes L2 retry its access. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/nested-logic.h>
#include <x86/cpu.h>
#include "nested.h"

/* The accessed and dirty flags L2's access sets in EPT12 (walk: EPT12_OK, the access allowed by
 * EPT01 too). Updates walk->entry and walk->leaf to what EPT12 now holds. */
enum ept12_ad_result nested_ept12_ad_update(struct vcpu *v, struct ept12_walk *walk, u64 gpa2, u64 qual02)
{
	bool any = false;

	for (int l = 4; l >= walk->level; l--)
		any |= walk->ad_set[l] != 0;
	if (!any)
		return EPT12_AD_DONE;
	if (nested_pml_full(v, qual02))
		return EPT12_AD_EXITED;
	for (int l = 4; l >= walk->level; l--) {
		u64 *e, old = walk->entry[l];

		if (!walk->ad_set[l])
			continue;
		/* The table was L1 memory when walked; L0's map of it does not change meanwhile. */
		e = guestmem_ptr(walk->entry_pa[l], sizeof(u64));
		if (!e || !__atomic_compare_exchange_n(e, &old, old | walk->ad_set[l], false, __ATOMIC_SEQ_CST,
						       __ATOMIC_SEQ_CST))
			return EPT12_AD_RETRY;
		walk->entry[l] = old | walk->ad_set[l];
	}
	walk->leaf = walk->entry[walk->level];
	if (walk->ad_set[walk->level] & EPT_DIRTY)
		nested_pml_log(v, gpa2);
	return EPT12_AD_DONE;
}

/* EPT A/D for L1 (IA32_VMX_EPT_VPID_CAP bit 21) where the CPU has them for EPT02. */
bool nested_offers_ept_ad(void)
{
	return nested_offers_ept() && (vmx_caps.ept_vpid & EPT_CAP_AD);
}
