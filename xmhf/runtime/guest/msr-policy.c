/* Which MSRs the guest may use, in one table: it builds VMCS01's MSR bitmap (and so VMCS02's, which ORs
 * L1's into it), tells the RDMSR/WRMSR handlers (msr.c) what to do, and tells nested VMX which MSRs no
 * MSR-load/store list may name (nested/msr-lists.c).
 *
 * Writes are default-deny: a WRMSR to an MSR no row passes through exits and gets #GP (msr.c reports
 * each such MSR once on the console). The rows pass through the architectural MSRs an OS or hypervisor
 * writes natively (SDM Vol. 4, table 2-2) and the model-specific ones Linux writes without a fault
 * handler (power, idle, RDT, AMX). Reads are default-allow, as Xen learned with "msr_relaxed": OSes
 * read many model-specific MSRs without a fault handler, and a read reaches no memory. Kept by L0:
 *  - VMX capability MSRs and IA32_FEATURE_CONTROL: VMX is L0's (emulated for L1 by nested/caps.c);
 *  - the microcode update trigger: unchecked code below the hypervisor (ignored);
 *  - IA32_APIC_BASE: L0 keeps using its local APIC at the base it found (INIT kicks, quiesce and stop
 *    NMIs), so only the x2APIC mode switch reaches the hardware;
 *  - the x2APIC ICR: guest INIT/SIPI are emulated (ipi.c);
 *  - MTRRs: EPT01's memory types follow them (a guest must not choose the type of L0's region);
 *  - IA32_MISC_ENABLE: "XD bit disable" would turn L0's NX page-table bits into reserved bits;
 *  - IA32_XSS: its PT bit would let XRSTORS load the IA32_RTIT_* MSRs from memory;
 *  - Intel PT (IA32_RTIT_*) and the debug store (IA32_DS_AREA, IA32_PEBS_ENABLE): their output
 *    addresses are host-physical, so the trace or PEBS records could be aimed at L0's region. The
 *    features are hidden in CPUID (cpuid.c) and their MSRs #GP, as on a CPU without them;
 *  - not written at all (default): SMRRs, IA32_SMM_MONITOR_CTL, IA32_DEBUG_INTERFACE, uncore and
 *    anything else not listed;
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

#define PASS(first, last) { first, last, MSR_PASS, MSR_PASS, NULL }

static const struct msr_rule rules[] = {
	/* Written natively (no exit). */
	PASS(0x10, 0x10),                /* IA32_TSC */
	PASS(0x3b, 0x3b),                /* IA32_TSC_ADJUST */
	PASS(0x48, 0x49),                /* IA32_SPEC_CTRL, IA32_PRED_CMD */
	PASS(0xc1, 0xc8),                /* IA32_PMC0-7 */
	PASS(0xe1, 0xe2),                /* IA32_UMWAIT_CONTROL, MSR_PKG_CST_CONFIG_CONTROL (intel_idle) */
	PASS(0xe7, 0xe8),                /* IA32_MPERF, IA32_APERF */
	PASS(0x10b, 0x10b),              /* IA32_FLUSH_CMD */
	PASS(0x122, 0x123),              /* IA32_TSX_CTRL, IA32_MCU_OPT_CTRL */
	PASS(0x140, 0x140),              /* MSR_MISC_FEATURES_ENABLES (CPUID faulting) */
	PASS(0x174, 0x176),              /* IA32_SYSENTER_CS/ESP/EIP */
	PASS(0x17a, 0x17b),              /* IA32_MCG_STATUS, IA32_MCG_CTL */
	PASS(0x186, 0x18d),              /* IA32_PERFEVTSEL0-7 */
	PASS(0x199, 0x19c),              /* IA32_PERF_CTL, CLOCK_MODULATION, THERM_INTERRUPT/STATUS */
	PASS(0x1a4, 0x1a4),              /* MSR_MISC_FEATURE_CONTROL (prefetchers) */
	PASS(0x1aa, 0x1aa),              /* MSR_MISC_PWR_MGMT */
	PASS(0x1b0, 0x1b2),              /* IA32_ENERGY_PERF_BIAS, IA32_PACKAGE_THERM_STATUS/INTERRUPT */
	PASS(0x1c4, 0x1c5),              /* IA32_XFD, IA32_XFD_ERR */
	PASS(0x1c8, 0x1c9),              /* MSR_LBR_SELECT, MSR_LASTBRANCH_TOS */
	PASS(0x1d9, 0x1d9),              /* IA32_DEBUGCTL (cleared by every VM exit, SDM 28.3.1) */
	PASS(0x1dd, 0x1de),              /* MSR_LER_FROM/TO */
	PASS(0x1fc, 0x1fc),              /* MSR_IA32_POWER_CTL */
	PASS(0x277, 0x277),              /* IA32_PAT (switched by VMCS01's PAT controls) */
	PASS(0x280, 0x29f),              /* IA32_MC0-31_CTL2 */
	PASS(0x309, 0x30c),              /* IA32_FIXED_CTR0-3 */
	PASS(0x329, 0x329),              /* IA32_PERF_METRICS */
	PASS(0x38d, 0x392),              /* IA32_FIXED_CTR_CTRL, IA32_PERF_GLOBAL_* */
	PASS(0x400, 0x47f),              /* IA32_MCi_CTL/STATUS/ADDR/MISC */
	PASS(0x4c1, 0x4c8),              /* IA32_A_PMC0-7 */
	PASS(0x4d0, 0x4d0),              /* IA32_MCG_EXT_CTL */
	PASS(0x680, 0x69f),              /* MSR_LASTBRANCH_n_FROM_IP */
	PASS(0x6a0, 0x6a8),              /* IA32_U_CET, S_CET, PL0-3_SSP, INTERRUPT_SSP_TABLE_ADDR */
	PASS(0x6c0, 0x6df),              /* MSR_LASTBRANCH_n_TO_IP */
	PASS(0x6e0, 0x6e1),              /* IA32_TSC_DEADLINE, IA32_PKRS */
	PASS(0x770, 0x777),              /* IA32_PM_ENABLE, IA32_HWP_* */
	PASS(0xc81, 0xd8f),              /* RDT: L3_QOS_CFG, QM_EVTSEL, PQR_ASSOC, cache masks */
	PASS(0xd90, 0xd90),              /* IA32_BNDCFGS */
	PASS(0xd93, 0xd93),              /* IA32_PASID */
	PASS(0xdc0, 0xddf),              /* MSR_LBR_INFO_n */
	PASS(0x1200, 0x121f),            /* IA32_LBR_n_INFO (architectural LBRs) */
	PASS(0x14ce, 0x14cf),            /* IA32_LBR_CTL, IA32_LBR_DEPTH */
	PASS(0x1500, 0x151f),            /* IA32_LBR_n_FROM_IP */
	PASS(0x1600, 0x161f),            /* IA32_LBR_n_TO_IP */
	PASS(0x1b01, 0x1b01),            /* IA32_UARCH_MISC_CTL */
	PASS(0xc0000080, 0xc0000084),    /* IA32_EFER (switched by VMCS01), STAR, LSTAR, CSTAR, FMASK */
	PASS(0xc0000102, 0xc0000103),    /* IA32_KERNEL_GS_BASE, IA32_TSC_AUX */
	/* Kept, emulated or hidden by L0 (see above). */
	{ MSR_IA32_APIC_BASE, MSR_IA32_APIC_BASE, MSR_PASS, MSR_EMULATE, NULL },
	{ MSR_IA32_FEATURE_CONTROL, MSR_IA32_FEATURE_CONTROL, MSR_EMULATE, MSR_EMULATE, NULL },
	{ 0x79, 0x79, MSR_PASS, MSR_EMULATE, NULL },             /* IA32_BIOS_UPDT_TRIG */
	{ 0x8b, 0x8b, MSR_PASS, MSR_LISTS_ONLY, NULL },          /* IA32_BIOS_SIGN_ID */
	{ 0x9b, 0x9b, MSR_PASS, MSR_REFUSED, NULL },             /* IA32_SMM_MONITOR_CTL */
	{ 0x9e, 0x9e, MSR_PASS, MSR_REFUSED, NULL },             /* IA32_SMBASE */
	{ 0x1a0, 0x1a0, MSR_PASS, MSR_EMULATE, NULL },           /* IA32_MISC_ENABLE */
	{ 0x200, 0x2ff, MSR_PASS, MSR_EMULATE, ept01_is_mtrr_msr }, /* MTRRs */
	{ 0x3f1, 0x3f1, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_PEBS_ENABLE */
	{ 0x480, 0x492, MSR_EMULATE, MSR_EMULATE, NULL },        /* IA32_VMX_* */
	{ 0x560, 0x561, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_OUTPUT_BASE/MASK_PTRS */
	{ 0x570, 0x572, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_CTL, STATUS, CR3_MATCH */
	{ 0x580, 0x587, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_RTIT_ADDRn_A/B */
	{ 0x600, 0x600, MSR_HIDDEN, MSR_HIDDEN, NULL },          /* IA32_DS_AREA */
	{ 0x800, 0x8ff, MSR_PASS, MSR_LISTS_ONLY, NULL },        /* x2APIC registers */
	{ 0x830, 0x830, MSR_PASS, MSR_EMULATE, NULL },           /* x2APIC ICR */
	{ 0xda0, 0xda0, MSR_PASS, MSR_EMULATE, NULL },           /* IA32_XSS */
	{ MSR_IA32_FS_BASE, MSR_IA32_GS_BASE, MSR_PASS, MSR_LISTS_ONLY, NULL },
};

/* The last matching row wins (the ICR row refines the x2APIC range). */
static const struct msr_rule *rule_scan(u32 msr)
{
	const struct msr_rule *r = NULL;

	for (u32 i = 0; i < ARRAY_SIZE(rules); i++)
		if (msr >= rules[i].first && msr <= rules[i].last && (!rules[i].match || rules[i].match(msr)))
			r = &rules[i];
	return r;
}

/* rule_scan's answer for every MSR of the MSR bitmap's two ranges, where every row lies: the row + 1,
 * or 0 for none. Built once by the BSP (msr_policy_bitmap, after ept01_init read the MTRR count the
 * MTRR row's match depends on), so that RDMSR/WRMSR exits and each entry of L1's MSR-load/store lists
 * (up to 512 and more per VM entry) find their row without scanning the table. */
static u8 rule_index[2][0x2000];
static bool rule_indexed;
_Static_assert(ARRAY_SIZE(rules) < 255, "rule_index holds row + 1 in a byte");

static bool in_bitmap_range(u32 msr)
{
	return msr <= 0x1fff || (msr >= 0xc0000000 && msr <= 0xc0001fff);
}

static const struct msr_rule *rule_of(u32 msr)
{
	if (rule_indexed && in_bitmap_range(msr)) {
		u8 r = rule_index[msr >> 31][msr & 0x1fff];
		return r ? &rules[r - 1] : NULL;
	}
	return rule_scan(msr);
}

static void index_rules(void)
{
	for (u32 i = 0; i < ARRAY_SIZE(rules); i++) {
		if (!in_bitmap_range(rules[i].first) || !in_bitmap_range(rules[i].last))
			panic("MSR policy row 0x%x-0x%x lies outside the MSR bitmap's ranges", rules[i].first,
			      rules[i].last);
		for (u32 m = rules[i].first; m <= rules[i].last; m++) {
			const struct msr_rule *r = rule_scan(m);
			rule_index[m >> 31][m & 0x1fff] = r ? (u8)(r - rules + 1) : 0;
		}
	}
	rule_indexed = true;
}

/* An MSR no row names: read as it is, written never. */
static const struct msr_rule unlisted = { 0, 0, MSR_PASS, MSR_REFUSED, NULL };

enum msr_action msr_policy(u32 msr, bool write)
{
	const struct msr_rule *r = rule_of(msr);
	enum msr_action a;

	if (!r)
		r = &unlisted;
	a = write ? (enum msr_action)r->write : (enum msr_action)r->read;
	return a == MSR_LISTS_ONLY ? MSR_PASS : a;
}

bool msr_policy_refused_in_lists(u32 msr)
{
	const struct msr_rule *r = rule_of(msr);

	if (!r)
		r = &unlisted;
	return r->read != MSR_PASS || r->write != MSR_PASS;
}

static void intercept(u8 *bitmap, u32 msr, bool write, bool on)
{
	u32 base = (msr >= 0xc0000000 ? 1024 : 0) + (write ? 2048 : 0);
	u32 idx = msr & 0x1fff;

	if (msr > 0x1fff && (msr < 0xc0000000 || msr > 0xc0001fff))
		return; /* outside the bitmap: always exits */
	if (on)
		bitmap[base + idx / 8] |= (u8)(1 << (idx % 8));
	else
		bitmap[base + idx / 8] &= (u8)~(1 << (idx % 8));
}

/* The MSR bitmap (SDM 25.6.9): every write exits but those of rows that pass them; reads exit for the
 * rows that do not pass them. */
void msr_policy_bitmap(u8 *bitmap)
{
	index_rules();
	for (u32 i = 2048; i < 4096; i++)
		bitmap[i] = 0xff;
	for (u32 i = 0; i < ARRAY_SIZE(rules); i++)
		for (u32 m = rules[i].first; m <= rules[i].last; m++) {
			if (rules[i].match && !rules[i].match(m))
				continue;
			if (msr_policy(m, false) != MSR_PASS)
				intercept(bitmap, m, false, true);
			if (msr_policy(m, true) == MSR_PASS)
				intercept(bitmap, m, true, false);
			else
				intercept(bitmap, m, true, true);
		}
}
