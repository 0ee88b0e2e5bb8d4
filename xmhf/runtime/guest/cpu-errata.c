/* CPU errata the guest is told about (lib/cpu-errata.h), found once by the BSP before any guest runs:
 * TSC-deadline mode is hidden from CPUID (cpuid.c) where the CPU's TSC-deadline timer has Intel's
 * erratum at its microcode revision, as bare Linux would turn it off itself: the guest programs the
 * real local APIC timer (IA32_TSC_DEADLINE passes through, msr-policy.c). docs/decisions.md says why
 * and what it changes. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/cpu-errata.h>
#include <lib/string.h>
#include <x86/cpu.h>

#define MSR_IA32_BIOS_SIGN_ID 0x8b

static bool tsc_deadline_hidden;

void guest_cpu_errata_init(void)
{
	struct cpu_ident id = { 0 };
	struct cpuid_regs r = cpuid(0, 0);
	u64 sign = 0;

	id.intel = !memcmp(&r.ebx, "Genu", 4) && !memcmp(&r.edx, "ineI", 4) && !memcmp(&r.ecx, "ntel", 4);
	/* The microcode revision: IA32_BIOS_SIGN_ID written with 0, then CPUID, then read (SDM Vol. 3A,
	 * "Microcode Update Facilities", "Determining the Signature"). A CPU without the MSR has revision 0. */
	(void)wrmsr_safe(MSR_IA32_BIOS_SIGN_ID, 0);
	r = cpuid(1, 0);
	if (rdmsr_safe(MSR_IA32_BIOS_SIGN_ID, &sign))
		sign = 0;
	id.microcode = (u32)(sign >> 32);
	cpu_ident_signature(&id, r.eax);
	id.hypervisor = (r.ecx & CPUID1_ECX_HYPERVISOR) != 0;
	tsc_deadline_hidden = cpu_tsc_deadline_erratum(&id);
	if (tsc_deadline_hidden)
		printf("XMHF: TSC-deadline timer erratum at microcode 0x%x (CPU %x-%x-%x): TSC-deadline mode hidden "
		       "from the guest\n", id.microcode, id.family, id.model, id.stepping);
}

bool guest_tsc_deadline_hidden(void)
{
	return tsc_deadline_hidden;
}
