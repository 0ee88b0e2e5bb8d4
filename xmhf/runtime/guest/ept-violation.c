/* EPT violations. EPT01 maps everything but the hypervisor's region and write-protects the local
 * APIC page (writes are emulated, lapic-trap.c) and the L1 bitmap pages VMCS02 merged (a write gives
 * them back, nested/bitmap-watch.c); any other violation is the guest reaching for the hypervisor's
 * memory: a security event, reported and the machine stopped. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>

void handle_ept_violation(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u64 gpa = vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS);

	if (lapic_trap_handle_ept(v, gpa))
		return;
	/* A write to an L1 bitmap page VMCS02 merged (nested/bitmap-watch.c): retried with its rights. */
	if (nested_bitmap_watch_fault(gpa, q))
		return;
	/* Not present in EPT01 (bits 5:3 of the qualification: no rights) beyond the boot map: MMIO,
	 * mapped now; the access is retried. */
	if (!(q & 0x38) && ept01_map_on_demand(gpa))
		return;
	if (guestmem_ptr(gpa, 1) &&
	    xmhf_app_handleintercept_hwpgtblviolation(v, &v->regs, gpa, vmcs_read(VMCS_GUEST_LINEAR_ADDRESS), q) ==
		    APP_SUCCESS)
		return;

	if (gpa < boot_info->region_base || gpa >= boot_info->region_base + boot_info->region_size) {
		printf("XMHF: FATAL: CPU %u: EPT violation at GPA 0x%llx (qualification 0x%llx) that no hypapp "
		       "handled\n",
		       v->cpu->index, (unsigned long long)gpa, (unsigned long long)q);
		panic("unhandled EPT violation");
	}
	printf("XMHF: SECURITY: CPU %u: the guest %s hypervisor memory at GPA 0x%llx (RIP 0x%llx, "
	       "qualification 0x%llx)\n",
	       v->cpu->index, (q & 2) ? "wrote" : (q & 4) ? "fetched from" : "read", (unsigned long long)gpa,
	       (unsigned long long)vmcs_read(VMCS_GUEST_RIP), (unsigned long long)q);
	xmhf_stop("guest access to hypervisor memory");
}
