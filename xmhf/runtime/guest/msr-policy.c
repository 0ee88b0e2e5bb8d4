/* Which MSRs the hypervisor keeps from the guest, in one table: it builds VMCS01's MSR bitmap (and so
 * VMCS02's, which ORs L1's into it), tells the RDMSR/WRMSR handlers (msr.c) what to do, and tells
 * nested VMX which MSRs no MSR-load/store list may name (nested/msr-lists.c). Every MSR not listed
 * goes to the hardware as it is; the rows are the ones whose direct use would let the guest reach
 * L0's memory or state:
 *  - VMX capability MSRs and IA32_FEATURE_CONTROL: VMX is L0's (emulated for L1 by nested/caps.c);
 *  - the microcode update trigger: unchecked code below the hypervisor;
 *  - IA32_APIC_BASE: L0 keeps using its local APIC at the base it found (INIT kicks, quiesce and stop
 *    NMIs), so only the x2APIC mode switch reaches the hardware;
 *  - the x2APIC ICR: guest INIT/SIPI are emulated (ipi.c);
 *  - MTRRs: EPT01's memory types follow them (a guest must not choose the type of L0's region);
 *  - Intel PT (IA32_RTIT_*) and the debug store (IA32_DS_AREA, IA32_PEBS_ENABLE): their output
 *    addresses are host-physical, so the trace or PEBS records could be aimed at L0's region. The
 *    features are hidden in CPUID (cpuid.c) and their MSRs #GP, as on a CPU without them;
 *  - for the MSR lists only: FS/GS base, SMBASE and the SMM monitor control (SDM 27.4 forbids them),
 *    the microcode signature and the whole x2APIC range. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/msr.h>

struct msr_rule {
	u32 first, last;
	u8 read, write; /* enum msr_action */
	bool (*match)(u32 msr); /* NULL: every MSR of the range */
};

static const struct msr_rule rules[] = {
	{ MSR_IA32_APIC_BASE, MSR_IA32_APIC_BASE, MSR_PASS, MSR_EMULATE, NULL },
	{ MSR_IA32_FEATURE_CONTROL, MSR_IA32_FEATURE_CONTROL, MSR_EMULATE, MSR_EMULATE, NULL },
	{ 0x79, 0x79, MSR_PASS, MSR_EMULATE, NULL },             /* IA32_BIOS_UPDT_TRIG */
	{ 0x8b, 0x8b, MSR_PASS, MSR_LISTS_ONLY, NULL },          /* IA32_BIOS_SIGN_ID */
	{ 0x9b, 0x9b, MSR_PASS, MSR_LISTS_ONLY, NULL },          /* IA32_SMM_MONITOR_CTL */
	{ 0x9e, 0x9e, MSR_PASS, MSR_LISTS_ONLY, NULL },          /* IA32_SMBASE */
	{ 0x200, 0x2ff, MSR_PASS, MSR_EMULATE, ept01_is_mtrr_msr }, /* MTRRs */
	{ 0x3f1, 0x3f1, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_PEBS_ENABLE */
	{ 0x480, 0x492, MSR_EMULATE, MSR_EMULATE, NULL },        /* IA32_VMX_* */
	{ 0x560, 0x561, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_OUTPUT_BASE/MASK_PTRS */
	{ 0x570, 0x572, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_CTL, STATUS, CR3_MATCH */
	{ 0x580, 0x587, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_ADDRn_A/B */
	{ 0x600, 0x600, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_DS_AREA */
	{ 0x800, 0x8ff, MSR_PASS, MSR_LISTS_ONLY, NULL },        /* x2APIC registers */
	{ 0x830, 0x830, MSR_PASS, MSR_EMULATE, NULL },           /* x2APIC ICR */
	{ MSR_IA32_FS_BASE, MSR_IA32_GS_BASE, MSR_PASS, MSR_LISTS_ONLY, NULL },
};

/* The last matching row wins (the ICR row refines the x2APIC range). */
static const struct msr_rule *rule_of(u32 msr)
{
	const struct msr_rule *r = NULL;

	for (u32 i = 0; i < ARRAY_SIZE(rules); i++)
		if (msr >= rules[i].first && msr <= rules[i].last && (!rules[i].match || rules[i].match(msr)))
			r = &rules[i];
	return r;
}

enum msr_action msr_policy(u32 msr, bool write)
{
	const struct msr_rule *r = rule_of(msr);
	enum msr_action a = !r ? MSR_PASS : write ? (enum msr_action)r->write : (enum msr_action)r->read;

	return a == MSR_LISTS_ONLY ? MSR_PASS : a;
}

bool msr_policy_refused_in_lists(u32 msr)
{
	const struct msr_rule *r = rule_of(msr);

	return r && (r->read != MSR_PASS || r->write != MSR_PASS);
}

static void intercept(u8 *bitmap, u32 msr, bool write)
{
	u32 base = (msr >= 0xc0000000 ? 1024 : 0) + (write ? 2048 : 0);
	u32 idx = msr & 0x1fff;

	bitmap[base + idx / 8] |= (u8)(1 << (idx % 8));
}

/* The MSR bitmap (SDM 25.6.9) of every row that is not passed through. */
void msr_policy_bitmap(u8 *bitmap)
{
	for (u32 i = 0; i < ARRAY_SIZE(rules); i++)
		for (u32 m = rules[i].first; m <= rules[i].last; m++) {
			if (rules[i].match && !rules[i].match(m))
				continue;
			if (msr_policy(m, false) != MSR_PASS)
				intercept(bitmap, m, false);
			if (msr_policy(m, true) != MSR_PASS)
				intercept(bitmap, m, true);
		}
}
