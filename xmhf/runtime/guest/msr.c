/* RDMSR/WRMSR exits: the MSRs msr-policy.c does not pass through (every write it does not list) and
 * those outside the bitmap's ranges. VMX stays hidden, MTRR writes update EPT01's memory types,
 * microcode loads are ignored, writes of unlisted MSRs get #GP, and an access the hardware faults on
 * gets that fault (#GP) in the guest. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <x86/cpu.h>
#include <x86/msr.h>

#define MSR_BIOS_UPDT_TRIG 0x79
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_XD_DISABLE (1ULL << 34)
#define MSR_IA32_XSS 0xda0
#define XSS_PT (1ULL << 8)

/* A write the policy refuses, once per MSR on the console (up to a few): what to add to the table if
 * a real guest needs it. */
static void report_refused(struct vcpu *v, u32 msr)
{
	static u32 seen[16];
	static u32 nseen;

	for (u32 i = 0; i < nseen && i < ARRAY_SIZE(seen); i++)
		if (seen[i] == msr)
			return;
	if (nseen < ARRAY_SIZE(seen)) {
		seen[nseen++] = msr; /* racy across CPUs: at worst a second line */
		printf("XMHF: CPU %u: guest WRMSR 0x%x refused (#GP): not in the MSR policy (guest/msr-policy.c)\n",
		       v->cpu->index, msr);
	}
}

static bool is_vmx_cap_msr(u32 msr)
{
	return msr >= MSR_IA32_VMX_BASIC && msr <= MSR_IA32_VMX_PROCBASED_CTLS3;
}

void handle_rdmsr(struct vcpu *v)
{
	u32 msr = (u32)v->regs.gpr[REG_RCX];
	u64 value;

	event_log_key(v, EXIT_REASON_RDMSR, msr);
	if (nested_enabled() && nested_rdmsr(msr, &value)) {
		v->regs.gpr[REG_RAX] = (u32)value;
		v->regs.gpr[REG_RDX] = value >> 32;
		guest_skip_instruction();
		return;
	}
	if (is_vmx_cap_msr(msr) || msr_policy(msr, false) == MSR_HIDDEN) {
		guest_inject_gp(); /* as on a CPU without VMX, PT, DS */
		return;
	}
	if (rdmsr_safe(msr, &value)) {
		guest_inject_gp();
		return;
	}
	if (msr == MSR_IA32_FEATURE_CONTROL)
		value &= ~(FEATURE_CONTROL_VMX_IN_SMX | FEATURE_CONTROL_VMX_OUTSIDE_SMX | (0x7fULL << 8));
	v->regs.gpr[REG_RAX] = (u32)value;
	v->regs.gpr[REG_RDX] = value >> 32;
	guest_skip_instruction();
}

/* IA32_APIC_BASE (SDM 11.4.4, 11.12.5): L0 keeps the local APIC enabled at its base, so a write
 * may change the x2APIC mode (the hardware faults on a transition it does not allow) but not
 * relocate or disable the APIC: that gets #GP, like a reserved bit. */
static void wrmsr_apic_base(u64 value)
{
	u64 now = rdmsr(MSR_IA32_APIC_BASE), keep = ~(u64)(APIC_BASE_EXTD | APIC_BASE_BSP);

	if ((value & keep) != (now & keep) || wrmsr_safe(MSR_IA32_APIC_BASE, value))
		guest_inject_gp();
	else
		guest_skip_instruction();
}

void handle_wrmsr(struct vcpu *v)
{
	u32 msr = (u32)v->regs.gpr[REG_RCX];
	u64 value = (v->regs.gpr[REG_RDX] << 32) | (u32)v->regs.gpr[REG_RAX];

	event_log_key(v, EXIT_REASON_WRMSR, msr);
	if (is_vmx_cap_msr(msr) || msr == MSR_IA32_FEATURE_CONTROL) {
		guest_inject_gp(); /* read-only, and IA32_FEATURE_CONTROL is locked */
		return;
	}
	switch (msr_policy(msr, true)) {
	case MSR_HIDDEN:
		guest_inject_gp();
		return;
	case MSR_REFUSED:
		report_refused(v, msr);
		guest_inject_gp();
		return;
	default:
		break;
	}
	/* L0's NX page-table bits would become reserved bits (SDM Vol. 4, IA32_MISC_ENABLE[34]). */
	if (msr == MSR_IA32_MISC_ENABLE)
		value &= ~MISC_ENABLE_XD_DISABLE;
	/* XRSTORS of the PT state component would load the IA32_RTIT_* MSRs: PT is hidden (CPUID). */
	if (msr == MSR_IA32_XSS && (value & XSS_PT)) {
		guest_inject_gp();
		return;
	}
	if (msr == MSR_IA32_APIC_BASE) {
		wrmsr_apic_base(value);
		return;
	}
	if (lapic_trap_handle_wrmsr(v, msr, value))
		return;
	if (msr == MSR_BIOS_UPDT_TRIG) {
		/* A microcode update from the guest would run unchecked code below the hypervisor: ignored,
		 * as XMHF does without a whitelist. */
		guest_skip_instruction();
		return;
	}
	if (ept01_is_mtrr_msr(msr)) {
		if (xmhf_app_handlemtrr(v, msr, value) != APP_SUCCESS || wrmsr_safe(msr, value)) {
			guest_inject_gp();
			return;
		}
		ept01_mtrr_write(msr, value);
		guest_skip_instruction();
		return;
	}
	if (wrmsr_safe(msr, value)) {
		guest_inject_gp();
		return;
	}
	guest_skip_instruction();
}
