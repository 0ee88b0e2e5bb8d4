/* Nested VMX internals shared by the files of runtime/nested/. */
#ifndef RUNTIME_NESTED_H
#define RUNTIME_NESTED_H
#include <xmhf/types.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <xmhf/runtime.h>

/* The current VMCS12 (vmcs12.c): an L0-private copy of L1's region, loaded by VMPTRLD and written
 * back by vmcs12_release (VMCLEAR, VMPTRLD of another VMCS, VMXOFF). */
void vmcs12_load(struct vcpu *v, u64 vmcs12_pa);
void vmcs12_release(struct vcpu *v);
u64 vmcs12_read_any(struct vcpu *v, u32 encoding);
void vmcs12_write_any(struct vcpu *v, u32 encoding, u64 value);

/* A field's value in its slot, at the field's width (the high half of a 64-bit field from the top of
 * the slot; L1 may have put anything in its region before VMPTRLD), and the store into it: the same
 * for the current copy and for a region in L1's memory. */
static inline __attribute__((always_inline)) u64 vmcs12_slot_get(const u64 *s, u32 encoding)
{
	u64 val = *s;

	switch (vmcs_field_bytes(encoding)) {
	case 2:
		return (u16)val;
	case 4:
		return (encoding & 1) ? val >> 32 : (u32)val;
	default:
		return val;
	}
}

static inline __attribute__((always_inline)) void vmcs12_slot_set(u64 *s, u32 encoding, u64 value)
{
	switch (vmcs_field_bytes(encoding)) {
	case 2:
		*s = (u16)value;
		break;
	case 4:
		if (encoding & 1) /* high half of a 64-bit field */
			*s = (*s & 0xffffffffULL) | ((u64)(u32)value << 32);
		else
			*s = (u32)value;
		break;
	default:
		*s = value;
	}
}

#define VMCS12_FIELDS_OFFSET 64 /* the slots' place in a VMCS12 region (vmcs12.c) */
/* Never defined: a constant encoding that is not in the table fails the build here. */
void vmcs12_not_a_field(void) __attribute__((error("not a VMCS field encoding")));

static inline __attribute__((always_inline)) u64 *vmcs12_slot_of(struct vcpu *v, u32 encoding)
{
	int i = vmcs_field_index_fast(encoding);

	if (i < 0)
		vmcs12_not_a_field();
	BUG_ON(v->l1_current_vmcs == ~0ULL);
	return &v->vmcs12[VMCS12_FIELDS_OFFSET / 8 + i];
}

/* A field of the current VMCS12 (any field, read-only ones too). A constant encoding (most callers)
 * costs a load and the width's mask: no lookup, no call; the entry and exit paths read dozens. */
static inline __attribute__((always_inline)) u64 vmcs12_read(struct vcpu *v, u32 encoding)
{
	if (!__builtin_constant_p(encoding))
		return vmcs12_read_any(v, encoding);
	return vmcs12_slot_get(vmcs12_slot_of(v, encoding), encoding);
}

static inline __attribute__((always_inline)) void vmcs12_write_field(struct vcpu *v, u32 encoding, u64 value)
{
	if (!__builtin_constant_p(encoding)) {
		vmcs12_write_any(v, encoding, value);
		return;
	}
	vmcs12_slot_set(vmcs12_slot_of(v, encoding), encoding, value);
}
/* The value slots of the current VMCS12, by field-table index: each holds the field's value at its
 * width (a 64-bit field whole), as VMREAD of the full encoding returns it. Inline, as the region's
 * header fields below: each round trip asks a dozen times. */
static inline u64 *vmcs12_slots(struct vcpu *v)
{
	BUG_ON(v->l1_current_vmcs == ~0ULL);
	return &v->vmcs12[VMCS12_FIELDS_OFFSET / 8];
}
#define VMCS12_LAUNCH_STATE_OFFSET 8 /* after the revision identifier and the abort indicator */
static inline void vmcs12_set_launched(struct vcpu *v, bool launched)
{
	BUG_ON(v->l1_current_vmcs == ~0ULL);
	((u32 *)v->vmcs12)[VMCS12_LAUNCH_STATE_OFFSET / 4] = launched;
}
/* Short names for the files of runtime/nested/. */
static inline __attribute__((always_inline)) u64 r12(struct vcpu *v, u32 enc)
{
	return vmcs12_read(v, enc);
}

static inline __attribute__((always_inline)) void w12(struct vcpu *v, u32 enc, u64 value)
{
	vmcs12_write_field(v, enc, value);
}

/* What a change of a VMCS12 field means for the VMCS02 in sync with it (entry.c): nothing, a copy of
 * the field as it is, host state (not in VMCS02, but checked at entry), or anything else (controls,
 * CR0/CR4, EPTP, ...: a full rebuild). */
enum vmcs12_changes { CHANGED_NOTHING = 0, CHANGED_COPY = 1, CHANGED_HOST = 2, CHANGED_OTHER = 4 };
extern u8 nested_field_change[VMCS_FIELD_COUNT]; /* by table index; from nested_field_kinds_init */
void nested_field_kinds_init(void);              /* before the first VMCS12 is loaded */

/* Field i of VMCS12 changed since VMCS02 was in sync with it (L1's VMWRITE, the shadow VMCS). */
static inline void nested_vmcs12_dirty(struct vcpu *v, u32 i)
{
	v->vmcs12_dirty[i / 64] |= 1ULL << (i % 64);
	v->vmcs12_dirty_words |= 1U << (i / 64);
	v->vmcs12_changes |= nested_field_change[i];
}

/* VMCS12's secondary controls as in force: 0 unless "activate secondary controls" (SDM 25.6.2). */
static inline u32 nested_proc2_12(struct vcpu *v)
{
	return (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_SECONDARY_CONTROLS) ? (u32)r12(v, VMCS_PROC_BASED_CONTROLS2) : 0;
}

static inline bool nested_l2_uses_ept(struct vcpu *v)
{
	return nested_proc2_12(v) & PROC2_EPT;
}

bool nested_apicv_tpr_vapic_ok(struct vcpu *v);
/* The TPR threshold (SDM 27.2.1.1), at every entry: it is a field a VMRESUME copies without the
 * other checks, and L1 may write its virtual-APIC page between entries. Without virtual-interrupt
 * delivery, bits 31:4 must be 0 and, without APIC-access virtualization either, bits 3:0 must not
 * exceed VTPR[7:4] (apicv.c); with it, the threshold is not used at all. */
static inline bool nested_apicv_tpr_ok(struct vcpu *v)
{
	if (!(r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW))
		return true;
	u32 proc2 = nested_proc2_12(v);
	if (proc2 & PROC2_VIRTUAL_INTR_DELIVERY)
		return true;
	if (r12(v, VMCS_TPR_THRESHOLD) & ~0xfULL)
		return false;
	return (proc2 & PROC2_VIRTUALIZE_APIC) || nested_apicv_tpr_vapic_ok(v);
}

static inline bool vmcs12_launched(struct vcpu *v)
{
	BUG_ON(v->l1_current_vmcs == ~0ULL);
	return ((const u32 *)v->vmcs12)[VMCS12_LAUNCH_STATE_OFFSET / 4] != 0;
}
/* The shadow-VMCS indicator, bit 31 of the revision identifier (SDM 25.2). */
static inline bool vmcs12_is_shadow(struct vcpu *v)
{
	BUG_ON(v->l1_current_vmcs == ~0ULL);
	return ((const u32 *)v->vmcs12)[0] >> 31;
}
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
u64 ept02_eptp_at_entry(struct vcpu *v, u64 eptp12);
/* Does VMCS02's EPT pointer still stand for eptp12? It does from an ept02_eptp for that EPTP12 (whose
 * result the caller wrote into VMCS02) until ept02.c drops an EPT02 or EPT01 changes (a new
 * generation): a VMRESUME then needs neither the lookup nor the VMWRITE. The slot's last use, for the
 * choice of a victim among 32 slots, is not bumped on that path. */
static inline bool nested_ept02_current(struct vcpu *v, u64 eptp12)
{
	return v->eptp02_key == eptp12 && v->eptp02_gen == v->cpu->ept_generation;
}
void nested_apicv_vectoring(struct vcpu *v, bool ept_violation);
bool ept02_violation(struct vcpu *v);
u64 nested_eptp12(struct vcpu *v);
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

/* VMCS02's merged bitmaps kept while L1's pages are unchanged (bitmap-watch.c): true if slot
 * (BITMAP02_*) holds L1's page gpa merged with l0 as of now; false: merge it (gpa 0: no page). */
struct sparse_bitmap;
bool nested_bitmap_current(struct vcpu *v, u32 slot, u64 gpa, const struct sparse_bitmap *l0);
void nested_bitmap_forget(struct vcpu *v, u32 slot);
/* A VMRESUME's check of VMCS02's merged pages `slots` (a bit per BITMAP02_*) in one compare: they were
 * all found current and watched after the stamp (nested_bitmaps_epoch) was taken, and no watched page
 * was written and L0's bitmaps did not change since (each bumps the epoch). Else: take the stamp,
 * check each page (nested_bitmap_current), and record the outcome (nested_bitmaps_stamped). */
extern u32 nested_bitmaps_epoch;
static inline u32 nested_bitmaps_stamp(void)
{
	return __atomic_load_n(&nested_bitmaps_epoch, __ATOMIC_ACQUIRE);
}
static inline bool nested_bitmaps_unchanged(struct vcpu *v, u32 slots)
{
	return v->bitmaps02_stamped && v->bitmaps02_slots == slots && v->bitmaps02_stamp == nested_bitmaps_stamp();
}
void nested_bitmaps_stamped(struct vcpu *v, u32 stamp, u32 slots);

/* VPID02 (vpid02.c). */
u32 vpid02_setup(struct vcpu *v, u32 proc2_12, u16 vpid12);
void vpid02_invvpid(struct vcpu *v, u32 type, u16 vpid12, u64 linear);

/* Hardware VMCS shadowing of VMCS12 for L1 (shadow.c). VMCS01 must be current. */
void shadow_load(struct vcpu *v);
void shadow_load_after_exit(struct vcpu *v);
void shadow_flush(struct vcpu *v, bool unlink);
void shadow_write_field(struct vcpu *v, u32 enc, u64 value);

/* APIC virtualization: TPR shadow, APIC-access, x2APIC mode, APIC registers, virtual-interrupt
 * delivery (apicv.c). */
bool nested_apicv_controls_ok(struct vcpu *v);
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
void nested_save_exit_hot(struct vcpu *v, u32 reason);
void nested_rare12_sync(struct vcpu *v);
bool nested_offers_ept(void);
bool nested_offers_vpid(void);

#endif
