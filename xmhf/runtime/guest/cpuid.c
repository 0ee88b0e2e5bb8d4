/* CPUID: the host's answers, with what the hypervisor does not virtualize hidden and the
 * hypervisor-present bit set, identical on every CPU except the per-CPU APIC ids. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <x86/cpu.h>
#include <lib/cpu-errata.h>

#define CPUID1_ECX_DTES64 (1U << 2)
#define CPUID1_ECX_DS_CPL (1U << 4)
#define CPUID1_EDX_DS (1U << 21)
#define CPUID1_ECX_XSAVE (1U << 26)
#define CPUID1_ECX_OSXSAVE (1U << 27)
#define CPUID7_EBX_INTEL_PT (1U << 25)
#define CPUID7_ECX_OSPKE (1U << 4)
#define CR4_OSXSAVE (1ULL << 18)
#define CR4_PKE (1ULL << 22)
#define HV_LEAF_BASE 0x40000000

void handle_cpuid(struct vcpu *v)
{
	u32 leaf = (u32)v->regs.gpr[REG_RAX], sub = (u32)v->regs.gpr[REG_RCX];
	u64 cr4 = guest_cr4();
	struct cpuid_regs r;

	if (xmhf_app_handlecpuid(v, &v->regs) == APP_CPUID_SKIP) {
		guest_skip_instruction();
		return;
	}
	if (leaf >= HV_LEAF_BASE && leaf < HV_LEAF_BASE + 0x100) {
		/* Hypervisor vendor leaf: "XMHFXMHFXMHF", no further leaves. */
		r.eax = HV_LEAF_BASE;
		r.ebx = r.ecx = r.edx = 0x46484d58;
		if (leaf != HV_LEAF_BASE)
			r.eax = r.ebx = r.ecx = r.edx = 0;
	} else {
		r = cpuid(leaf, sub);
	}
	switch (leaf) {
	case 1:
		r.ecx &= ~(CPUID1_ECX_SMX | (nested_enabled() ? 0 : CPUID1_ECX_VMX));
		r.ecx |= CPUID1_ECX_HYPERVISOR;
		/* The guest sees the hypervisor bit and no longer checks the CPU's TSC-deadline erratum:
		 * checked here (cpu-errata.c). */
		if (guest_tsc_deadline_hidden())
			r.ecx &= ~CPUID1_ECX_TSC_DEADLINE;
		/* The debug store is not virtualized (its buffers are host-physical: msr-policy.c). */
		r.ecx &= ~(CPUID1_ECX_DTES64 | CPUID1_ECX_DS_CPL);
		r.edx &= ~CPUID1_EDX_DS;
		/* OSXSAVE mirrors the guest's CR4, not the host's. */
		r.ecx &= ~CPUID1_ECX_OSXSAVE;
		if ((r.ecx & CPUID1_ECX_XSAVE) && (cr4 & CR4_OSXSAVE))
			r.ecx |= CPUID1_ECX_OSXSAVE;
		break;
	case 7:
		if (sub == 0) {
			r.ebx &= ~CPUID7_EBX_INTEL_PT; /* Intel PT is not virtualized */
			r.ecx &= ~CPUID7_ECX_OSPKE;
			if (cr4 & CR4_PKE)
				r.ecx |= CPUID7_ECX_OSPKE;
		}
		break;
	case 0x14: /* Intel PT leaf */
		r.eax = r.ebx = r.ecx = r.edx = 0;
		break;
	default:
		break;
	}
	v->regs.gpr[REG_RAX] = r.eax;
	v->regs.gpr[REG_RBX] = r.ebx;
	v->regs.gpr[REG_RCX] = r.ecx;
	v->regs.gpr[REG_RDX] = r.edx;
	event_log_key(v, EXIT_REASON_CPUID, leaf);
	guest_skip_instruction();
}
