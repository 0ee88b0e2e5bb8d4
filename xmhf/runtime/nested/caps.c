/* What L1 sees of VMX: CPUID.1:ECX.VMX, IA32_FEATURE_CONTROL locked with VMX enabled, and the IA32_VMX_*
 * capability MSRs = the host's with what is not emulated removed. Phase 1 (instructions without VM
 * entry) hides: VMCS shadowing (not offered), VMWRITE to read-only fields (IA32_VMX_MISC bit 29). */
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

u64 nested_vmx_misc(void)
{
	return vmx_caps.misc & ~(1ULL << 29);
}

bool nested_field_supported(u32 field_index)
{
	return vmcs_fields[field_index].nested != VMCS_NESTED_UNSUPP;
}

bool vmcs12_read_pin_nmi_exiting(struct vcpu *v)
{
	return v->l1_current_vmcs != ~0ULL &&
	       (vmcs12_read(v->l1_current_vmcs, VMCS_PIN_BASED_CONTROLS) & PIN_NMI_EXITING);
}

bool nested_rdmsr(u32 msr, u64 *value)
{
	if (msr == MSR_IA32_FEATURE_CONTROL) {
		*value = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
		return true;
	}
	if (msr < MSR_IA32_VMX_BASIC || msr > MSR_IA32_VMX_VMFUNC)
		return false;
	if (rdmsr_safe(msr, value))
		return false;
	switch (msr) {
	case MSR_IA32_VMX_MISC:
		*value = nested_vmx_misc();
		break;
	case MSR_IA32_VMX_PROCBASED_CTLS2:
		*value &= ~((u64)PROC2_VMCS_SHADOWING << 32);
		break;
	default:
		break;
	}
	return true;
}
