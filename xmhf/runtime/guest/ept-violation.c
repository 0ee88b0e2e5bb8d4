/* EPT violations. EPT01 maps everything but the hypervisor's region and write-protects the local
 * APIC page (writes are emulated, lapic-trap.c); any other violation is the guest reaching for the
 * hypervisor's memory: a security event, reported and the machine stopped. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>

void handle_ept_violation(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u64 gpa = vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS);

	if (lapic_trap_handle_ept(v, gpa))
		return;

	printf("XMHF: SECURITY: CPU %u: the guest %s hypervisor memory at GPA 0x%llx (RIP 0x%llx, "
	       "qualification 0x%llx)\n",
	       v->cpu->index, (q & 2) ? "wrote" : (q & 4) ? "fetched from" : "read", (unsigned long long)gpa,
	       (unsigned long long)vmcs_read(VMCS_GUEST_RIP), (unsigned long long)q);
	if (gpa < boot_info->region_base || gpa >= boot_info->region_base + boot_info->region_size)
		panic("EPT violation outside the hypervisor region (GPA 0x%llx)", (unsigned long long)gpa);
	xmhf_stop("guest access to hypervisor memory");
}
