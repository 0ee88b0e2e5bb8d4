/* What a guest must be told about the CPU underneath because it cannot find out itself. The hypervisor
 * sets CPUID.1:ECX[31] (hypervisor present), and Linux then skips the checks of the CPU model and its
 * microcode it makes on bare metal, trusting the hypervisor to have virtualized what they are about.
 * This hypervisor passes the local APIC timer through, so the checks whose outcome changes what the
 * guest does with the hardware are made here (guest/cpu-errata.c). One so far: the TSC-deadline timer
 * erratum. On the models and microcode revisions Intel lists in its specification updates (the timer
 * may fire at the wrong time in TSC-deadline mode), bare Linux turns TSC-deadline mode off and uses
 * the APIC timer's one-shot mode; CPUID.1:ECX[24] is cleared for the guest on those.
 * Pure logic (tests/unit/test_cpu_errata.c). */
#ifndef LIB_CPU_ERRATA_H
#define LIB_CPU_ERRATA_H
#include <xmhf/types.h>

#define CPUID1_ECX_TSC_DEADLINE (1U << 24)

/* What the hypervisor found about the CPU it runs on. */
struct cpu_ident {
	bool intel;
	u32 family, model, stepping; /* display family/model (extended fields folded in) */
	u32 microcode;               /* revision: IA32_BIOS_SIGN_ID[63:32] after CPUID */
	bool hypervisor;             /* CPUID.1:ECX[31]: another hypervisor runs below this one */
};

/* Family, model and stepping from CPUID.1:EAX (SDM Vol. 2A, CPUID, figure 3-6). */
void cpu_ident_signature(struct cpu_ident *id, u32 eax);
/* True if the CPU's TSC-deadline timer has Intel's erratum at its microcode revision. Under another
 * hypervisor the timer is that hypervisor's: false, as Linux decides. */
bool cpu_tsc_deadline_erratum(const struct cpu_ident *id);
#endif
