/* What L1 sees of VMX: CPUID.1:ECX.VMX, IA32_FEATURE_CONTROL locked with VMX enabled, and the IA32_VMX_*
 * capability MSRs = the host's intersected with what nested VMX emulates (allowed-1 bits outside the
 * lists below are cleared; must-be-1 bits stay). docs/nested.md says why each hidden bit is hidden. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/msr.h>
#include "nested.h"

bool nested_enabled(void)
{
	return boot_info->cmdline.nested != 0;
}

u32 nested_vmcs_revision(void)
{
	return (u32)vmx_caps.basic & 0x7fffffff;
}

/* Bit 29 (VMWRITE to any supported field, the exit-information fields too) is honoured: L1's and L2's
 * VMWRITEs are emulated into VMCS12 (vmx-insn.c), and the exit information goes to VMCS02 never. Bit
 * 30 (software interrupts and exceptions injected with instruction length 0) the CPU checks itself
 * on VMCS02, which takes VMCS12's entry fields as they are. */
u64 nested_vmx_misc(void)
{
	return vmx_caps.misc;
}

/* EPT for L2 through EPT02 (ept02.c); VPID for L2 through VPID02 (vpid02.c). */
bool nested_offers_ept(void)
{
	return (vmx_caps.proc2_1 & PROC2_EPT) != 0;
}

bool nested_offers_vpid(void)
{
	return (vmx_caps.proc2_1 & PROC2_VPID) != 0;
}

/* EPT/VPID capabilities offered: execute-only pages (EPT02 maps them so), WB and UC structures,
 * 4-level walks, 2 MiB and 1 GiB pages, INVEPT single/all-context, accessed and dirty flags (bit 21,
 * emulated in EPT12: ept-ad.c), INVVPID of all four types (Hyper-V requires all). Not: 5-level
 * walks, advanced EPT-violation information. */
#define NESTED_EPT_VPID_CAP ((1ULL << 0) | (1ULL << 6) | (1ULL << 8) | (1ULL << 14) | (1ULL << 16) | (1ULL << 17) | \
			     (1ULL << 20) | (1ULL << 21) | (1ULL << 25) | (1ULL << 26) | (1ULL << 32) |        \
			     (1ULL << 40) | (1ULL << 41) | (1ULL << 42) | (1ULL << 43))

/* The allowed-1 control settings L1 is offered (read from nested_rdmsr once; the same on every CPU). */
const struct vmcs_feature_caps *nested_offered_caps(void)
{
	static struct vmcs_feature_caps offered;
	static bool known;

	if (!known) {
		u64 cap;
		bool true_ctls = (vmx_caps.basic & VMX_BASIC_TRUE_CTLS) != 0;
#define ALLOWED1(msr) (nested_rdmsr(msr, &cap) ? (u32)(cap >> 32) : 0)
		offered.pin1 = ALLOWED1(true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS);
		offered.proc1 = ALLOWED1(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
		offered.proc2_1 = ALLOWED1(MSR_IA32_VMX_PROCBASED_CTLS2);
		offered.exit1 = ALLOWED1(true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS);
		offered.entry1 = ALLOWED1(true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS);
#undef ALLOWED1
		known = true; /* a race computes the same values */
	}
	return &offered;
}

/* Does the field exist for L1? Only for the features L1 is offered (a real CPU without a feature
 * lacks its fields), and only if nested VMX handles it. */
bool nested_field_supported(u32 field_index)
{
	return vmcs_fields[field_index].nested != VMCS_NESTED_UNSUPP &&
	       vmcs_field_exists(field_index, nested_offered_caps());
}

bool vmcs12_read_pin_nmi_exiting(struct vcpu *v)
{
	return v->l1_current_vmcs != ~0ULL &&
	       (vmcs12_read(v, VMCS_PIN_BASED_CONTROLS) & PIN_NMI_EXITING);
}

/* Optional control bits L1 may set, per control (SDM Appendix A.3-A.5). The TPR shadow, APIC-access
 * virtualization, x2APIC-mode virtualization, APIC-register virtualization and virtual-interrupt
 * delivery run in hardware on VMCS02 with L1's pages (apicv.c); VMCS shadowing for L2 is L0's
 * emulation (shadow12.c); TSC scaling and PAUSE-loop exiting run on VMCS02 (timing.c). */
#define NESTED_PROC2_APICV (PROC2_VIRTUALIZE_X2APIC | PROC2_APIC_REGISTER_VIRT | PROC2_VIRTUAL_INTR_DELIVERY)
#define NESTED_PIN (PIN_EXTINT_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPTION_TIMER)
#define NESTED_PROC (PROC_INTR_WINDOW_EXITING | PROC_TSC_OFFSETTING | PROC_HLT_EXITING | PROC_INVLPG_EXITING |  \
		     PROC_MWAIT_EXITING | PROC_RDPMC_EXITING | PROC_RDTSC_EXITING | PROC_CR3_LOAD_EXITING |     \
		     PROC_CR3_STORE_EXITING | PROC_CR8_LOAD_EXITING | PROC_CR8_STORE_EXITING | PROC_TPR_SHADOW | \
		     PROC_NMI_WINDOW_EXITING | PROC_MOV_DR_EXITING | PROC_UNCOND_IO_EXITING | PROC_USE_IO_BITMAPS | \
		     PROC_MTF | PROC_USE_MSR_BITMAPS | PROC_MONITOR_EXITING | PROC_PAUSE_EXITING |               \
		     PROC_SECONDARY_CONTROLS)
#define NESTED_PROC2 (PROC2_VIRTUALIZE_APIC | PROC2_EPT | PROC2_DESC_TABLE_EXITING | PROC2_RDTSCP | PROC2_VPID | PROC2_WBINVD_EXITING |   \
		      PROC2_UNRESTRICTED_GUEST | (1U << 11) /* RDRAND */ | PROC2_INVPCID | (1U << 16) /* RDSEED */ | \
		      PROC2_XSAVES | PROC2_VMFUNC | PROC2_PAUSE_LOOP_EXITING | PROC2_VMCS_SHADOWING | PROC2_TSC_SCALING | \
		      PROC2_EPT_VE /* ve.c */ | NESTED_PROC2_APICV)
#define NESTED_VMFUNC 1ULL /* EPTP switching */
/* "Acknowledge interrupt on exit" (SDM 24.7.1) is passed through to VMCS02 (entry.c): L0 takes no
 * external interrupts of its own, so the CPU acknowledging one at an L2 exit and storing its vector in
 * the VM-exit interruption information (SDM 28.2.2), which exit.c copies to VMCS12, is exactly what L1
 * asked for. Linux KVM requires it (kvm_intel fails to load with EIO without it). */
#define NESTED_EXIT (EXIT_SAVE_DEBUG_CONTROLS | EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_PAT | EXIT_LOAD_PAT | \
		     EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PREEMPTION_TIMER | EXIT_ACK_INTERRUPT)
#define NESTED_ENTRY (ENTRY_LOAD_DEBUG_CONTROLS | ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_PAT | ENTRY_LOAD_EFER)

static u64 restrict_ctls(u64 cap, u32 supported)
{
	u32 allowed0 = (u32)cap, allowed1 = (u32)(cap >> 32);

	return ((u64)(allowed1 & (supported | allowed0)) << 32) | allowed0;
}

bool nested_rdmsr(u32 msr, u64 *value)
{
	if (msr == MSR_IA32_FEATURE_CONTROL) {
		*value = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
		return true;
	}
	if (msr < MSR_IA32_VMX_BASIC || msr > MSR_IA32_VMX_VMFUNC)
		return false;
	/* EPTP switching only (vmfunc.c). Without VM functions (secondary bit 13 not offered) no bits: such
	 * a CPU has no such MSR (SDM A.11), but Hyper-V reads it unconditionally; KVM answers 0 too. */
	if (msr == MSR_IA32_VMX_VMFUNC) {
		if (!(vmx_caps.proc2_1 & PROC2_VMFUNC) || rdmsr_safe(msr, value))
			*value = 0;
		*value &= NESTED_VMFUNC;
		return true;
	}
	if (rdmsr_safe(msr, value))
		return false;
	switch (msr) {
	case MSR_IA32_VMX_MISC:
		*value = nested_vmx_misc();
		break;
	case MSR_IA32_VMX_PINBASED_CTLS:
	case MSR_IA32_VMX_TRUE_PINBASED_CTLS:
		*value = restrict_ctls(*value, NESTED_PIN);
		break;
	case MSR_IA32_VMX_PROCBASED_CTLS:
	case MSR_IA32_VMX_TRUE_PROCBASED_CTLS:
		*value = restrict_ctls(*value, NESTED_PROC);
		break;
	case MSR_IA32_VMX_PROCBASED_CTLS2:
		/* PML is emulated with the EPT12 dirty flags (pml.c). */
		*value = restrict_ctls(*value, NESTED_PROC2 | (nested_offers_ept_ad() ? PROC2_PML : 0));
		break;
	case MSR_IA32_VMX_EXIT_CTLS:
	case MSR_IA32_VMX_TRUE_EXIT_CTLS:
		*value = restrict_ctls(*value, NESTED_EXIT);
		break;
	case MSR_IA32_VMX_ENTRY_CTLS:
	case MSR_IA32_VMX_TRUE_ENTRY_CTLS:
		*value = restrict_ctls(*value, NESTED_ENTRY);
		break;
	case MSR_IA32_VMX_EPT_VPID_CAP:
		*value &= NESTED_EPT_VPID_CAP;
		break;
	case MSR_IA32_VMX_VMCS_ENUM:
		/* The highest field index L1 can use, not the host's (SDM A.9). */
		*value = vmcs_enum_msr(nested_offered_caps());
		break;
	case MSR_IA32_VMX_CR4_FIXED1:
		/* SMX is hidden (CPUID.1:ECX.SMX clear, MOV to CR4.SMXE #GPs: guest/cr.c), so L1 must not
		 * read that CR4.SMXE may be 1 in VMX operation. */
		*value &= ~(1ULL << 14);
		break;
	default:
		break;
	}
	return true;
}
