/* Nested VMX internals shared by the files of runtime/nested/. */
#ifndef RUNTIME_NESTED_H
#define RUNTIME_NESTED_H
#include <xmhf/types.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>

/* The current VMCS12 (vmcs12.c): an L0-private copy of L1's region, loaded by VMPTRLD and written
 * back by vmcs12_release (VMCLEAR, VMPTRLD of another VMCS, VMXOFF). */
void vmcs12_load(struct vcpu *v, u64 vmcs12_pa);
void vmcs12_release(struct vcpu *v);
u64 vmcs12_read(struct vcpu *v, u32 encoding);
void vmcs12_write_field(struct vcpu *v, u32 encoding, u64 value); /* any field, read-only ones too */
void vmcs12_set_launched(struct vcpu *v, bool launched);
/* The value slots of the current VMCS12, by field-table index: each holds the field's value at its
 * width (a 64-bit field whole), as VMREAD of the full encoding returns it. */
u64 *vmcs12_slots(struct vcpu *v);
bool vmcs12_launched(struct vcpu *v);
bool vmcs12_is_shadow(struct vcpu *v);
/* A field of a VMCS that is not current, in its region in L1's memory. */
u64 vmcs12_region_read(u64 vmcs12_pa, u32 encoding);
void vmcs12_region_write(u64 vmcs12_pa, u32 encoding, u64 value);
void vmcs12_clear_in_l1(u64 vmcs12_pa);
void vmcs12_set_abort(struct vcpu *v, u32 indicator);

/* Results of L1's VMX instructions (vmx-insn.c); they also move L1's RIP past the instruction. */
void nested_vm_succeed(void);
void nested_vm_fail_invalid(void);
void nested_vm_fail(struct vcpu *v, u32 error);
void nested_vm_fail_noskip(struct vcpu *v, u32 error);

/* MSR lists (msr-lists.c). */
u32 nested_msr_list_max(void);
bool nested_msr_lists_valid(u64 load_gpa, u32 load_n, u64 store_gpa, u32 store_n, u64 exit_gpa, u32 exit_n);
void nested_msr_lists_setup(struct vcpu *v, u64 load_gpa, u32 load_n, u64 store_gpa, u32 store_n);
bool nested_msr_store_copy_back(struct vcpu *v, u64 store_gpa, u32 store_n);
bool nested_msr_exit_load(u64 gpa, u32 n);

/* EPT02 (ept02.c). */
void ept02_invept(struct vcpu *v, bool all, u64 eptp12);
u64 ept02_eptp(struct vcpu *v, u64 eptp12);
bool ept02_violation(struct vcpu *v);
u64 nested_eptp12(struct vcpu *v);
u32 nested_proc2_12(struct vcpu *v);        /* VMCS12's secondary controls in force (0 if not activated) */
bool nested_l2_uses_ept(struct vcpu *v);
/* Reflects the current L2 exit to L1 as `reason` with qualification `qual` (exit.c). */
void nested_reflect_with(struct vcpu *v, u32 reason, u64 qual);
void nested_reflect_sipi(struct vcpu *v, u32 vector);
void nested_entry_fail_msr_load(struct vcpu *v, u32 index);
void nested_entry_fail(struct vcpu *v, u32 reason, u64 qual);
void nested_reflect_exception(struct vcpu *v, u32 intr_info, u32 error_code, u64 qual);
void nested_reflect_ept12(struct vcpu *v, u32 reason, u64 qual, u64 gpa2, u64 linear);

/* Accessed and dirty flags in EPT12 (ept-ad.c) and page-modification logging (pml.c). */
struct ept12_walk;
enum ept12_ad_result {
	EPT12_AD_DONE,   /* the flags are set (and logged): map the page */
	EPT12_AD_RETRY,  /* L1 changed an entry meanwhile: L2 retries its access */
	EPT12_AD_EXITED, /* a page-modification log-full exit went to L1 */
};
enum ept12_ad_result nested_ept12_ad_update(struct vcpu *v, struct ept12_walk *walk, u64 gpa2, u64 qual02);
bool nested_offers_ept_ad(void);
bool nested_pml_controls_ok(struct vcpu *v);
bool nested_pml_full(struct vcpu *v, u64 qual02);
void nested_pml_log(struct vcpu *v, u64 gpa2);
/* EPT-violation #VE (ve.c). */
bool nested_ve_controls_ok(struct vcpu *v);
bool nested_ve_convert(struct vcpu *v, const struct ept12_walk *walk, u64 qual12, u64 gpa2);

/* VPID02 (vpid02.c). */
u32 vpid02_setup(struct vcpu *v, u32 proc2_12, u16 vpid12);
void vpid02_invvpid(struct vcpu *v, u32 type, u16 vpid12, u64 linear);

/* Hardware VMCS shadowing of VMCS12 for L1 (shadow.c). VMCS01 must be current. */
void shadow_load(struct vcpu *v);
void shadow_flush(struct vcpu *v, bool unlink);
void shadow_write_field(struct vcpu *v, u32 enc, u64 value);

/* APIC virtualization: TPR shadow, APIC-access, x2APIC mode, APIC registers, virtual-interrupt
 * delivery (apicv.c). */
bool nested_apicv_controls_ok(struct vcpu *v);
bool nested_apicv_tpr_ok(struct vcpu *v);
void nested_apicv_setup02(struct vcpu *v);
void nested_apicv_save12(struct vcpu *v);
bool nested_apicv_access_exit(struct vcpu *v, u64 gpa1, u64 qual);
bool nested_apicv_virtualize_write(struct vcpu *v, u32 off); /* apicv-write.c */

/* VM functions: EPTP switching (vmfunc.c). */
bool nested_vmfunc_controls_ok(struct vcpu *v);
void nested_vmfunc_setup02(struct vcpu *v);
bool nested_vmfunc_exit(struct vcpu *v);

/* VMCS shadowing for L1's own use (shadow12.c); L2's VMREAD/VMWRITE (vmx-insn.c). */
bool nested_shadow12_controls_ok(struct vcpu *v);
bool nested_shadow12_link_ok(struct vcpu *v);
bool nested_shadow12_exits_to_l1(struct vcpu *v, bool write, u64 enc);
bool nested_l2_vmread_vmwrite(struct vcpu *v, bool write);

/* TSC scaling and PAUSE-loop exiting for L2 (timing.c). */
bool nested_timing_controls_ok(struct vcpu *v);
void nested_timing_setup02(struct vcpu *v);

/* VM entry to L2 (entry.c). */
void nested_vmentry(struct vcpu *v, bool launch);
bool nested_eptp_valid(u64 eptp12);

/* What L1 sees (caps.c). */
u32 nested_vmcs_revision(void);
u64 nested_vmx_misc(void);
bool nested_field_supported(u32 field_index);
const struct vmcs_feature_caps *nested_offered_caps(void);
/* VMCS12 (current) and VMCS02 (the current VMCS) for lib/vmcs-translate.c. */
struct vmcs_pair;
void nested_vmcs_pair(struct vcpu *v, struct vmcs_pair *p);
bool nested_offers_ept(void);
bool nested_offers_vpid(void);

#endif
