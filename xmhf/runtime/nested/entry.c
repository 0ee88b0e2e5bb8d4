/* VM entry to L2 (SDM Vol. 3, chapter 27): L1's VMLAUNCH/VMRESUME checks what must fail with
 * VMfailValid (controls: error 7, host state: error 8), then builds VMCS02 from VMCS12 and this CPU's
 * host state, and lets the CPU enter L2. The CPU's own checks of the guest state then give the
 * VM-entry failure exit (reason 33) that exit.c reflects to L1; L1's VMCS link pointer, which VMCS02
 * does not carry, L0 checks itself (shadow12.c). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <lib/vmcs-fields.h>
#include <lib/vmcs-translate.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include <lib/nested-logic.h>
#include "nested.h"

#define VMXERR_VMLAUNCH_NONCLEAR 4
#define VMXERR_VMRESUME_NONLAUNCHED 5
#define VMXERR_INVALID_CONTROLS 7
#define VMXERR_INVALID_HOST_STATE 8
#define VMXERR_ENTRY_MOV_SS 26

_Static_assert(VMCS_FIELD_COUNT <= 4 * 64, "vmcs12_dirty has a bit per field");

/* Allowed-0/1 check of one control field against the capability MSR L1 reads (SDM 27.2.1.1). */
static bool ctl_ok(u32 value, u32 true_msr, u32 msr)
{
	u64 cap;

	if (!nested_rdmsr((vmx_caps.basic & VMX_BASIC_TRUE_CTLS) && true_msr ? true_msr : msr, &cap))
		return false;
	return (value & (u32)cap) == (u32)cap && (value & ~(u32)(cap >> 32)) == 0;
}

u64 nested_eptp12(struct vcpu *v)
{
	return r12(v, VMCS_EPT_POINTER);
}

/* EPTP12 (SDM 27.2.1.1): a memory type and walk length offered, no reserved bits, A/D enable only
 * where offered. */
static bool eptp_ok(u64 eptp)
{
	u32 mt = eptp & 7;
	u64 reserved = (0x3fULL << 6) & ~(nested_offers_ept_ad() ? EPTP_AD : 0);

	return (mt == 0 || mt == 6) && ((eptp >> 3) & 7) == 3 && !(eptp & reserved) && !(eptp >> vmx_caps.maxphyaddr);
}

bool nested_eptp_valid(u64 eptp12)
{
	return eptp_ok(eptp12);
}

/* The event to inject (SDM 27.2.1.3), checked at every entry with the other controls (error 7) so
 * that it fails before the host-state checks, as on the CPU: reserved bits 30:12, type 1, an NMI not
 * vector 2, an exception above 31, a software event's instruction length, type 7 (MTF pending) not
 * vector 0, the error-code bit against the vector (unless IA32_VMX_BASIC[56]), error code bits 31:16. */
static bool entry_event_ok(struct vcpu *v)
{
	u32 info = (u32)r12(v, VMCS_ENTRY_INTR_INFO), vec = info & 0xff, type = (info >> 8) & 7;
	bool errcode = info & (1U << 11), want = false;
	u32 len = (u32)r12(v, VMCS_ENTRY_INSTRUCTION_LENGTH);

	if (!(info & INTR_INFO_VALID))
		return true;
	if ((info & 0x7ffff000) || type == 1 || (type == 2 && vec != 2) || (type == 3 && vec > 31) ||
	    (type == 7 && vec != 0))
		return false;
	if (type >= 4 && type <= 6 && (len > 15 || (len == 0 && !(nested_vmx_misc() & (1ULL << 30)))))
		return false;
	if (type == 3 && vec < 32 && ((1U << vec) & 0x27d00) && /* #DF #TS #NP #SS #GP #PF #AC */
	    (!(nested_proc2_12(v) & PROC2_UNRESTRICTED_GUEST) || (r12(v, VMCS_GUEST_CR0) & CR0_PE)))
		want = true;
	if (!(vmx_caps.basic & (1ULL << 56)) && errcode != want)
		return false;
	return !errcode || !(r12(v, VMCS_ENTRY_EXCEPTION_ERROR_CODE) & 0xffff0000);
}

static bool check_controls(struct vcpu *v)
{
	u32 pin = (u32)r12(v, VMCS_PIN_BASED_CONTROLS), proc = (u32)r12(v, VMCS_PROC_BASED_CONTROLS);
	u32 proc2 = nested_proc2_12(v);

	if (!ctl_ok(pin, MSR_IA32_VMX_TRUE_PINBASED_CTLS, MSR_IA32_VMX_PINBASED_CTLS) ||
	    !ctl_ok(proc, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, MSR_IA32_VMX_PROCBASED_CTLS) ||
	    ((proc & PROC_SECONDARY_CONTROLS) && !ctl_ok(proc2, 0, MSR_IA32_VMX_PROCBASED_CTLS2)) ||
	    !ctl_ok((u32)r12(v, VMCS_EXIT_CONTROLS), MSR_IA32_VMX_TRUE_EXIT_CTLS, MSR_IA32_VMX_EXIT_CTLS) ||
	    !ctl_ok((u32)r12(v, VMCS_ENTRY_CONTROLS), MSR_IA32_VMX_TRUE_ENTRY_CTLS, MSR_IA32_VMX_ENTRY_CTLS))
		return false;
	/* Virtual NMIs need NMI exiting; unrestricted guest needs EPT (SDM 27.2.1.1). */
	if ((pin & PIN_VIRTUAL_NMIS) && !(pin & PIN_NMI_EXITING))
		return false;
	if ((proc2 & PROC2_UNRESTRICTED_GUEST) && !(proc2 & PROC2_EPT))
		return false;
	if ((proc2 & PROC2_EPT) && !eptp_ok(r12(v, VMCS_EPT_POINTER)))
		return false;
	if ((proc2 & PROC2_VPID) && r12(v, VMCS_VPID) == 0)
		return false;
	if ((proc & PROC_NMI_WINDOW_EXITING) && !(pin & PIN_VIRTUAL_NMIS))
		return false;
	/* Saving the preemption timer needs it active (SDM 27.2.1.2). */
	if ((r12(v, VMCS_EXIT_CONTROLS) & EXIT_SAVE_PREEMPTION_TIMER) && !(pin & PIN_PREEMPTION_TIMER))
		return false;
	/* Bitmap addresses: 4 KiB aligned, in guest memory. */
	if ((proc & PROC_USE_IO_BITMAPS) && (!guestmem_ptr(r12(v, VMCS_IO_BITMAP_A), PAGE_SIZE_4K) ||
					     !guestmem_ptr(r12(v, VMCS_IO_BITMAP_B), PAGE_SIZE_4K) ||
					     ((r12(v, VMCS_IO_BITMAP_A) | r12(v, VMCS_IO_BITMAP_B)) & 0xfff)))
		return false;
	if ((proc & PROC_USE_MSR_BITMAPS) &&
	    (!guestmem_ptr(r12(v, VMCS_MSR_BITMAP), PAGE_SIZE_4K) || (r12(v, VMCS_MSR_BITMAP) & 0xfff)))
		return false;
	/* MSR lists: 16-byte aligned, within the count limit, in guest memory (SDM 27.2.1.2/3). */
	if (!nested_msr_lists_valid(r12(v, VMCS_ENTRY_MSR_LOAD_ADDR), (u32)r12(v, VMCS_ENTRY_MSR_LOAD_COUNT),
				    r12(v, VMCS_EXIT_MSR_STORE_ADDR), (u32)r12(v, VMCS_EXIT_MSR_STORE_COUNT),
				    r12(v, VMCS_EXIT_MSR_LOAD_ADDR), (u32)r12(v, VMCS_EXIT_MSR_LOAD_COUNT)))
		return false;
	return nested_apicv_controls_ok(v) && nested_vmfunc_controls_ok(v) && nested_shadow12_controls_ok(v) &&
	       nested_timing_controls_ok(v) && nested_pml_controls_ok(v) && nested_ve_controls_ok(v);
}

/* The CR3-target count copies into VMCS02 as it is, so a VMRESUME after L1 changed only it takes the
 * fast path without check_controls: it is checked at every entry, as the TPR threshold and the event
 * to inject are (SDM 27.2.1.1; `vmxfuzz seed=9` with 2 CPUs got VMfailValid(8) for 7). */
static bool cr3_target_count_ok(struct vcpu *v)
{
	return r12(v, VMCS_CR3_TARGET_COUNT) <= ((vmx_caps.misc >> 16) & 0x1ff);
}

static bool canonical(u64 a)
{
	return (u64)((s64)(a << 16) >> 16) == a;
}

/* SDM 27.2.2 and 27.2.3 for a 64-bit L1: everything L0 would otherwise load into VMCS01 unchecked. */
static bool check_host_state(struct vcpu *v)
{
	u64 cr0 = r12(v, VMCS_HOST_CR0), cr4 = r12(v, VMCS_HOST_CR4);
	bool host64 = r12(v, VMCS_EXIT_CONTROLS) & EXIT_HOST_ADDR_SPACE_SIZE;

	/* Every bit against the fixed-bit MSRs L1 reads (SDM 27.2.2, A.7, A.8): their bits 63:32 are
	 * 0 in FIXED1, so HOST_CR0/CR4 bits 63:32 must be 0. */
	if ((cr0 & vmx_caps.cr0_fixed0) != vmx_caps.cr0_fixed0 || (cr0 & ~vmx_caps.cr0_fixed1) ||
	    (cr4 & vmx_caps.cr4_fixed0) != vmx_caps.cr4_fixed0 || (cr4 & ~vmx_caps.cr4_fixed1))
		return false;
	if (r12(v, VMCS_HOST_CR3) >> vmx_caps.maxphyaddr)
		return false;
	/* Selectors: RPL and TI 0; CS and TR not null; SS not null unless 64-bit host. */
	for (u32 f = VMCS_HOST_ES_SELECTOR; f <= VMCS_HOST_TR_SELECTOR; f += 2)
		if (r12(v, f) & 7)
			return false;
	if (!r12(v, VMCS_HOST_CS_SELECTOR) || !r12(v, VMCS_HOST_TR_SELECTOR) ||
	    (!host64 && !r12(v, VMCS_HOST_SS_SELECTOR)))
		return false;
	/* L1 runs in 64-bit mode here: the host must be 64-bit too, with canonical bases and RIP. */
	if (!host64 || !(cr4 & CR4_PAE))
		return false;
	if (!canonical(r12(v, VMCS_HOST_FS_BASE)) || !canonical(r12(v, VMCS_HOST_GS_BASE)) ||
	    !canonical(r12(v, VMCS_HOST_TR_BASE)) || !canonical(r12(v, VMCS_HOST_GDTR_BASE)) ||
	    !canonical(r12(v, VMCS_HOST_IDTR_BASE)) || !canonical(r12(v, VMCS_HOST_RIP)))
		return false;
	/* MSRs the exit loads into L1 (VMCS01's guest state): a bad one would fail L0's own entry. */
	if (!canonical(r12(v, VMCS_HOST_IA32_SYSENTER_ESP)) || !canonical(r12(v, VMCS_HOST_IA32_SYSENTER_EIP)))
		return false;
	if ((r12(v, VMCS_EXIT_CONTROLS) & EXIT_LOAD_PAT) && !x86_pat_valid(r12(v, VMCS_HOST_IA32_PAT)))
		return false;
	if ((r12(v, VMCS_EXIT_CONTROLS) & EXIT_LOAD_EFER) &&
	    !nested_host_efer_valid(r12(v, VMCS_HOST_IA32_EFER), host64))
		return false;
	return true;
}

/* Guest state VMCS02 cannot take from VMCS12 as it is, given to the CPU so that its own checks (in
 * its own order, SDM 27.3.1) refuse what they would refuse in VMCS12: VMCS12's link pointer (VMCS02
 * has none: an unaligned one there when VMCS12's fails 27.3.1.5, qualification 4; its revision and
 * shadow-VMCS indicator as nested_shadow12_link_ok checks them), and the PDPTEs of a PAE L2 without EPT12, which
 * the entry loads from CR3 (27.3.1.6, 27.3.2.4): VMCS02 always uses EPT, so the CPU takes its PDPTE
 * fields instead (all-ones, refused with qualification 2, when CR3 is not L1 memory). CR0.PG with
 * "IA-32e mode guest" (27.3.1.1) is checked here: Bochs 2.7 does not, and panics the emulator on such
 * an entry with unrestricted guest (docs/known-bugs.md). True after reflecting that failure. */
static inline __attribute__((always_inline)) bool guest_state_to_02(struct vcpu *v)
{
	u64 cr0 = r12(v, VMCS_GUEST_CR0), cr4 = r12(v, VMCS_GUEST_CR4);
	u32 entry12 = (u32)r12(v, VMCS_ENTRY_CONTROLS);

	/* Usually no link pointer (~0): then VMCS02's is ~0 already since the last entry. */
	u64 link02 = vmcs12_slots(v)[VMCS_IDX_VMCS_LINK_POINTER] == ~0ULL || nested_shadow12_link_ok(v) ? ~0ULL : 1;
	if (link02 != v->link02) {
		vmcs_write(VMCS_VMCS_LINK_POINTER, link02);
		v->link02 = link02;
	}
	if (!nested_l2_uses_ept(v) && (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(entry12 & ENTRY_IA32E_MODE_GUEST)) {
		const u64 *pdpte = guestmem_ptr(r12(v, VMCS_GUEST_CR3) & 0xffffffe0ULL, 32);
		for (u32 i = 0; i < 4; i++)
			vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, pdpte ? pdpte[i] : ~0ULL);
	}
	if ((entry12 & ENTRY_IA32E_MODE_GUEST) && !(cr0 & CR0_PG)) {
		nested_entry_fail(v, EXIT_REASON_INVALID_GUEST_STATE, 0);
		return true;
	}
	return false;
}

/* L1's bitmap page gpa merged with L0's into out, unless the merge there is still current
 * (bitmap-watch.c). Checked at entry and kept in L0's VMCS12 copy, the page is L1 memory unless L0's
 * own map changed: then every access exits. */
static void merge_bitmap(struct vcpu *v, u32 slot, u64 gpa, u8 *out, const struct sparse_bitmap *l0)
{
	const u64 *l1;

	if (nested_bitmap_current(v, slot, gpa, l0))
		return;
	l1 = guestmem_ptr(gpa, PAGE_SIZE_4K);
	if (l1) {
		bitmap_merge((u64 *)out, l1, l0);
		return;
	}
	nested_bitmap_forget(v, slot);
	memset(out, 0xff, PAGE_SIZE_4K);
}

/* L1's MSR bitmap page, and its two I/O bitmap pages, merged into VMCS02's (where still stale). */
static void merge_msr_page(struct vcpu *v)
{
	merge_bitmap(v, BITMAP02_MSR, r12(v, VMCS_MSR_BITMAP), v->msr_bitmap02, vmcs01_msr_intercepts());
}

static void merge_io_pages(struct vcpu *v)
{
	merge_bitmap(v, BITMAP02_IO_A, r12(v, VMCS_IO_BITMAP_A), v->io_bitmap02, io_bitmap_l0(0));
	merge_bitmap(v, BITMAP02_IO_B, r12(v, VMCS_IO_BITMAP_B), v->io_bitmap02 + PAGE_SIZE_4K, io_bitmap_l0(1));
}

/* VMCS02's MSR bitmap: an MSR exits if L0 or L1 wants it (SDM 25.6.9), so L2 accesses L1 allows
 * run without any exit. Without L1's bitmap VMCS02 has none either: every MSR access exits, and all
 * of them are L1's (exit.c). */
static void setup_msr_bitmap(struct vcpu *v, u32 proc12)
{
	if (!(proc12 & PROC_USE_MSR_BITMAPS)) {
		vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_USE_MSR_BITMAPS);
		return;
	}
	if (!v->msr_bitmap02)
		v->msr_bitmap02 = page_alloc(1);
	merge_msr_page(v);
	vmcs_set_bits(VMCS_PROC_BASED_CONTROLS, PROC_USE_MSR_BITMAPS);
	vmcs_write(VMCS_MSR_BITMAP, (u64)(uintptr_t)v->msr_bitmap02);
}

/* VMCS02's I/O exiting (SDM 25.6.4): the ports L0 and hypapps intercept exit whatever L1 chose, so L2
 * reaches none of them behind L0's back (nested/exit.c hands L0 the exits L1 did not ask for). With
 * L1's bitmaps, their merge with L0's; with "unconditional I/O exiting" alone, every access exits
 * anyway; with neither, L0's own bitmaps. */
static void setup_io_bitmaps(struct vcpu *v, u32 proc12)
{
	u64 a = io_bitmap_a(), b = io_bitmap_b();

	if (proc12 & PROC_USE_IO_BITMAPS) {
		if (!v->io_bitmap02)
			v->io_bitmap02 = page_alloc(2);
		merge_io_pages(v);
		a = (u64)(uintptr_t)v->io_bitmap02;
		b = a + PAGE_SIZE_4K;
	} else if (proc12 & PROC_UNCOND_IO_EXITING) {
		return;
	}
	vmcs_set_bits(VMCS_PROC_BASED_CONTROLS, PROC_USE_IO_BITMAPS);
	vmcs_write(VMCS_IO_BITMAP_A, a);
	vmcs_write(VMCS_IO_BITMAP_B, b);
}

/* At a VMRESUME without a rebuild VMCS02's bitmap controls and addresses are as the last entry left
 * them (L1 changing its controls or bitmap addresses is a rebuild): only the merged pages may be
 * stale, L1 having written its bitmaps in memory since (SDM 25.6.4, 25.6.9: the CPU reads them at
 * each access; bitmap-watch.c notices the writes). */
static void refresh_bitmaps(struct vcpu *v, u32 proc12)
{
	u32 slots = ((proc12 & PROC_USE_MSR_BITMAPS) ? 1U << BITMAP02_MSR : 0) |
		    ((proc12 & PROC_USE_IO_BITMAPS) ? (1U << BITMAP02_IO_A) | (1U << BITMAP02_IO_B) : 0);

	if (!slots || nested_bitmaps_unchanged(v, slots))
		return;
	u32 stamp = nested_bitmaps_stamp();
	if (proc12 & PROC_USE_MSR_BITMAPS)
		merge_msr_page(v);
	if (proc12 & PROC_USE_IO_BITMAPS)
		merge_io_pages(v);
	nested_bitmaps_stamped(v, stamp, slots);
}

/* The fields whose change a VMRESUME copies into VMCS02 as they are, by table index, a bit each
 * (vmcs12_changes in nested.h says what the other kinds are). */
static u64 copy_fields[4];
u8 nested_field_change[VMCS_FIELD_COUNT];
static volatile u32 kinds_ready;

void nested_field_kinds_init(void)
{
	if (__atomic_load_n(&kinds_ready, __ATOMIC_ACQUIRE))
		return;
	/* Every CPU computes the same tables: a race only writes equal values. */
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		u8 kind = vmcs_field_resume_copy(i)			? CHANGED_COPY :
			  vmcs_fields[i].cls == VMCS_CLASS_HOST	? CHANGED_HOST :
			  vmcs_fields[i].nested == VMCS_NESTED_L0 ? CHANGED_NOTHING : /* PML/EPTP index */
								    CHANGED_OTHER;
		nested_field_change[i] = kind;
		if (kind == CHANGED_COPY)
			copy_fields[i / 64] |= 1ULL << (i % 64);
	}
	__atomic_store_n(&kinds_ready, 1, __ATOMIC_RELEASE);
}

/* What L1 changed in VMCS12 since VMCS02 was last in sync with it: the kinds its changed fields have
 * (nested_vmcs12_dirty gathers them as they change). */
static u32 vmcs12_changes(struct vcpu *v)
{
	if (v->vmcs02_of != v->l1_current_vmcs)
		return CHANGED_OTHER;
	return v->vmcs12_changes;
}

/* L1's EFER, PAT, DR7 and IA32_DEBUGCTL of the moment (VMCS01 saves them at every exit of L1's), those
 * l2_from_l1 uses: the ones VMCS12's entry controls do not load. */
struct l1_loadables {
	u64 efer, pat, dr7, debugctl;
};

static struct l1_loadables l1_loadables(u32 entry12)
{
	struct l1_loadables l1 = { 0 };

	if (!(entry12 & ENTRY_LOAD_DEBUG_CONTROLS)) {
		l1.dr7 = vmcs_read(VMCS_GUEST_DR7);
		l1.debugctl = vmcs_read(VMCS_GUEST_IA32_DEBUGCTL);
	}
	if (!(entry12 & ENTRY_LOAD_EFER))
		l1.efer = vmcs_read(VMCS_GUEST_IA32_EFER);
	if (!(entry12 & ENTRY_LOAD_PAT))
		l1.pat = vmcs_read(VMCS_GUEST_IA32_PAT);
	return l1;
}

/* Without "load IA32_EFER/PAT" or "load debug controls" L2 starts with L1's values (EFER.LMA/LME
 * from "IA-32e mode guest"), and VMCS12's fields are neither checked nor used (SDM 27.3.1.1,
 * 27.3.2.1). VMCS02 loads all of them always (L0's own DR7 is not L1's), so it gets L1's values
 * here, at every entry: L1 may have changed them since the last. */
static inline void l2_from_l1(u32 entry12, const struct l1_loadables *l1)
{
	if (!(entry12 & ENTRY_LOAD_DEBUG_CONTROLS)) {
		vmcs_write(VMCS_GUEST_DR7, l1->dr7);
		vmcs_write(VMCS_GUEST_IA32_DEBUGCTL, l1->debugctl);
	}
	if (!(entry12 & ENTRY_LOAD_EFER))
		vmcs_write(VMCS_GUEST_IA32_EFER, (l1->efer & ~(EFER_LMA | EFER_LME)) |
							 ((entry12 & ENTRY_IA32E_MODE_GUEST) ? EFER_LMA | EFER_LME : 0));
	if (!(entry12 & ENTRY_LOAD_PAT))
		vmcs_write(VMCS_GUEST_IA32_PAT, l1->pat);
}

/* VMRESUME of the VMCS12 VMCS02 is in sync with, changed only in fields that copy as they are or in
 * its host state: the changed guest fields are copied, nothing rebuilt. L1's MSR and I/O bitmaps are
 * merged again if L1 changed them in memory (bitmap-watch.c). */
static void resume_cached(struct vcpu *v)
{
	u32 entry12 = (u32)r12(v, VMCS_ENTRY_CONTROLS);
	struct l1_loadables l1 = l1_loadables(entry12);

	if (vmptrld(v->vmcs02_pa))
		panic("VMPTRLD of VMCS02 failed");
	/* A dirty slot holds a clean value at its width (VMWRITE emulation, shadow_flush). */
	const u64 *slot = vmcs12_slots(v);
	/* The dirty words only (nested_vmcs12_dirty marks them): often a word holding RIP alone. */
	for (u32 words = v->vmcs12_dirty_words; words; words &= words - 1) {
		u32 w = (u32)__builtin_ctz(words);
		for (u64 bits = v->vmcs12_dirty[w] & copy_fields[w]; bits; bits &= bits - 1) {
			u32 i = w * 64 + (u32)__builtin_ctzll(bits);
			vmcs_write(vmcs_fields[i].encoding, slot[i]);
		}
		v->vmcs12_dirty[w] = 0;
	}
	v->vmcs12_dirty_words = 0;
	v->vmcs12_changes = 0;
	/* A GUEST_IA32_PAT/EFER/DR7/DEBUGCTL L1 wrote must not reach VMCS02 when VMCS12 does not load
	 * it. */
	l2_from_l1(entry12, &l1);
	refresh_bitmaps(v, (u32)r12(v, VMCS_PROC_BASED_CONTROLS));
	/* L1's entry starts L2's preemption timer from VMCS12's value (saved there at the last exit if
	 * L1 asked, else the value L1 wrote), not from where VMCS02 stopped. */
	if (r12(v, VMCS_PIN_BASED_CONTROLS) & PIN_PREEMPTION_TIMER)
		vmcs_write(VMCS_GUEST_PREEMPTION_TIMER, r12(v, VMCS_GUEST_PREEMPTION_TIMER));
	/* EPT02 may have been dropped meanwhile (L1's INVEPT, an EPT01 change). */
	if (nested_l2_uses_ept(v) && !nested_ept02_current(v, r12(v, VMCS_EPT_POINTER)))
		vmcs_write(VMCS_EPT_POINTER, ept02_eptp_at_entry(v, r12(v, VMCS_EPT_POINTER)));
	v->in_l2 = 1;
	v->launch_next = 0;
	/* L1 may rewrite its MSR-load list in memory between entries: copy the lists again. Their
	 * counts are as at the last entry (a change is a rebuild): with none, VMCS02 has none. */
	if (r12(v, VMCS_ENTRY_MSR_LOAD_COUNT) || r12(v, VMCS_EXIT_MSR_STORE_COUNT))
		nested_msr_lists_setup(v, r12(v, VMCS_ENTRY_MSR_LOAD_ADDR), (u32)r12(v, VMCS_ENTRY_MSR_LOAD_COUNT),
				       r12(v, VMCS_EXIT_MSR_STORE_ADDR), (u32)r12(v, VMCS_EXIT_MSR_STORE_COUNT));
	guest_state_to_02(v);
}

static u64 pair_read02(void *ctx, u32 enc)
{
	(void)ctx;
	return vmcs_read(enc);
}

static void pair_write02(void *ctx, u32 enc, u64 value)
{
	(void)ctx;
	vmcs_write(enc, value);
}

/* Before each entry to L2, events pending for L1's world. An INIT (blocked in L1's VMX root
 * operation, SDM 26.2) exits from L2 at once: an NMI to this CPU makes L2 exit right after the entry,
 * and exit.c turns that into the INIT exit. A guest NMI with L1 intercepting NMIs becomes an NMI exit
 * to L1 the same way; without NMI exiting it goes into L2 at L2's NMI window. */
void nested_pending_events(struct vcpu *v)
{
	if (!v->in_l2)
		return;
	/* L2 in wait-for-SIPI (L1's answer to an INIT exit). While L0 emulates the guest's SIPIs
	 * (lapic-trap.c), none reaches the CPU: L0 waits for one itself and gives L1 the SIPI exit.
	 * Otherwise the CPU waits, NMIs blocked (so it counts as quiesced), and its SIPI exit is L1's. */
	if (vmcs_read(VMCS_GUEST_ACTIVITY_STATE) == ACTIVITY_WAIT_SIPI) {
		if (!lapic_trap_delinked()) {
			nested_reflect_sipi(v, ipi_wait_sipi_nested(v));
			return;
		}
		quiesce_park(v);
	} else if (__atomic_load_n(&v->l2_init_taken, __ATOMIC_ACQUIRE)) {
		ipi_l2_active(v);
	}
	if (__atomic_load_n(&v->init_pending, __ATOMIC_ACQUIRE))
		ipi_kick(v);
	if (!v->nmi_pending)
		return;
	if (r12(v, VMCS_PIN_BASED_CONTROLS) & PIN_NMI_EXITING)
		ipi_kick(v);
	else
		vmcs_set_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
}

/* The field lists, computed once (they depend only on what L1 is offered, the same on every CPU):
 * guest state, exit information, the guest fields every exit saves, and those split into the hot
 * ones (in the shadow VMCS) and the rare ones (saved lazily, nested_rare12_sync). */
static struct {
	u16 guest[VMCS_FIELD_COUNT], exit_info[VMCS_FIELD_COUNT], saved[VMCS_FIELD_COUNT];
	u16 hot[VMCS_FIELD_COUNT], rare[VMCS_FIELD_COUNT];
	u32 nguest, nexit_info, nsaved, nhot, nrare;
	u32 fixed_hot, fixed_exit_info; /* hot and exit_info are vmcs-translate.h's lists */
	volatile u32 ready;
} lists;

/* VMCS02's fields idx[0..n) into VMCS12's slots: the hot guest fields and the exit information, at
 * every reflected exit, unrolled with constant encodings (vmcs-translate.h's lists). */
static void pair_read02_list(void *ctx, const u16 *idx, u32 n, u64 *slots12)
{
	(void)ctx;
#define FROM_02(name) slots12[VMCS_IDX_##name] = vmcs_read(VMCS_##name);
	if (idx == lists.hot && lists.fixed_hot) {
		VMCS_HOT_GUEST_FIELDS(FROM_02)
		return;
	}
	if (idx == lists.exit_info && lists.fixed_exit_info) {
		VMCS_EXIT_INFO_FIELDS(FROM_02)
		return;
	}
#undef FROM_02
	for (u32 k = 0; k < n; k++)
		slots12[idx[k]] = vmcs_read(vmcs_fields[idx[k]].encoding);
}

static void compute_lists(void)
{
	if (__atomic_load_n(&lists.ready, __ATOMIC_ACQUIRE))
		return;
	/* Every CPU computes the same lists: a race only writes equal values. */
	lists.nexit_info = vmcs_field_list(nested_offered_caps(), VMCS_CLASS_RO, lists.exit_info);
	lists.nguest = vmcs_field_list(nested_offered_caps(), VMCS_CLASS_GUEST, lists.guest);
	lists.nsaved = vmcs_guest_saved_list(lists.guest, lists.nguest, lists.saved);
	lists.nhot = vmcs_guest_split_list(lists.saved, lists.nsaved, lists.hot, lists.rare, &lists.nrare);
	u64 set[VMCS_FIELD_SET_WORDS];
	vmcs_hot_guest_set(set);
	lists.fixed_hot = vmcs_list_is_set(lists.hot, lists.nhot, set);
	vmcs_exit_info_set(set);
	lists.fixed_exit_info = vmcs_list_is_set(lists.exit_info, lists.nexit_info, set);
	__atomic_store_n(&lists.ready, 1, __ATOMIC_RELEASE);
}

/* VMCS12 in L1 memory and VMCS02, the CPU's current VMCS. */
void nested_vmcs_pair(struct vcpu *v, struct vmcs_pair *p)
{
	compute_lists();
	*p = (struct vmcs_pair){ .slots12 = vmcs12_slots(v), .read02 = pair_read02,
				 .write02 = pair_write02, .ctx = v, .guest = lists.guest, .nguest = lists.nguest,
				 .exit_info = lists.exit_info, .nexit_info = lists.nexit_info,
				 .read02_list = pair_read02_list, .guest_saved = lists.saved,
				 .nguest_saved = lists.nsaved };
}

static inline u64 read02_now(u32 enc)
{
	return vmcs_read(enc);
}

/* A reflected exit's save of L2's hot guest fields and the exit information (the caller sets
 * rare12_stale): unrolled when the lists are vmcs-translate.h's, as they are whenever L1 is offered
 * EPT. */
void nested_save_exit_hot(struct vcpu *v, u32 reason)
{
	struct vmcs_pair pair;

	compute_lists();
	if (lists.fixed_hot && lists.fixed_exit_info) {
		vmcs_exit_02_to_12_hot(vmcs12_slots(v), reason, read02_now);
		return;
	}
	nested_vmcs_pair(v, &pair);
	pair.guest_saved = lists.hot;
	pair.nguest_saved = lists.nhot;
	vmcs_guest_02_to_12(&pair);
	vmcs_exit_info_02_to_12(&pair, reason);
}

/* L2's rare guest fields from VMCS02 into VMCS12 if a reflected exit left them there
 * (rare12_stale: VMCS02 is then in sync with the current VMCS12, and L1 could not have read them
 * without an exit, as no shadow VMCS holds them). Called before anything reads VMCS12's guest state
 * whole or by a variable encoding, or VMCS02 is rebuilt or given up; any current VMCS. */
void nested_rare12_sync(struct vcpu *v)
{
	bool in02 = v->in_l2; /* VMCS02 is current, else VMCS01 */

	if (!v->rare12_stale)
		return;
	v->rare12_stale = 0;
	BUG_ON(v->vmcs02_of != v->l1_current_vmcs);
	if (!in02 && vmptrld(v->vmcs02_pa))
		panic("VMPTRLD of VMCS02 failed");
	pair_read02_list(v, lists.rare, lists.nrare, vmcs12_slots(v));
	if (!in02 && vmptrld(v->vmcs_pa))
		panic("VMPTRLD of VMCS01 failed");
}

/* CR0/CR4 for L2: L1's masks and shadows, plus the bits L0 owns (VMX-fixed bits), whose shadow shows
 * L1's value for them (from VMCS12's guest CR0/CR4). */
static void setup_cr_masks(struct vcpu *v)
{
	u64 m01 = vmcs_read(VMCS_CR0_GUEST_HOST_MASK), m12 = r12(v, VMCS_CR0_GUEST_HOST_MASK);

	vmcs_write(VMCS_CR0_GUEST_HOST_MASK, nested_cr_mask02(m01, m12));
	vmcs_write(VMCS_CR0_READ_SHADOW,
		   nested_cr_shadow02(m01, m12, r12(v, VMCS_CR0_READ_SHADOW), r12(v, VMCS_GUEST_CR0)));
	m01 = vmcs_read(VMCS_CR4_GUEST_HOST_MASK);
	m12 = r12(v, VMCS_CR4_GUEST_HOST_MASK);
	vmcs_write(VMCS_CR4_GUEST_HOST_MASK, nested_cr_mask02(m01, m12));
	vmcs_write(VMCS_CR4_READ_SHADOW,
		   nested_cr_shadow02(m01, m12, r12(v, VMCS_CR4_READ_SHADOW), r12(v, VMCS_GUEST_CR4)));
}

static void build_vmcs02(struct vcpu *v)
{
	u32 pin12 = (u32)r12(v, VMCS_PIN_BASED_CONTROLS), proc12 = (u32)r12(v, VMCS_PROC_BASED_CONTROLS);
	u32 proc2_12 = nested_proc2_12(v);
	u32 entry12 = (u32)r12(v, VMCS_ENTRY_CONTROLS);
	u64 cr0_mask01 = vmcs_read(VMCS_CR0_GUEST_HOST_MASK), cr4_mask01 = vmcs_read(VMCS_CR4_GUEST_HOST_MASK);
	struct l1_loadables l1 = l1_loadables(entry12);

	if (!v->vmcs02_pa) {
		u32 *p = page_alloc(1);
		p[0] = (u32)vmx_caps.basic & 0x7fffffff;
		v->vmcs02_pa = (u64)(uintptr_t)p;
	}
	/* One VMCS02 per CPU, rebuilt at every entry (no caching yet): launch it fresh. */
	if (vmclear(v->vmcs02_pa) || vmptrld(v->vmcs02_pa))
		panic("VMCLEAR/VMPTRLD of VMCS02 failed");
	v->in_l2 = 1;
	v->launch_next = 1;
	v->vmcs02_of = ~0ULL; /* in sync only once the CPU has entered it (exit.c) */
	v->bitmaps02_stamped = 0; /* the merges below are checked page by page */
	v->link02 = 0; /* VMCS02's link pointer is written below (guest_state_to_02) */
	v->eptp02_key = ~0ULL; /* an EPT pointer of ept02_eptp's is written below, or EPT01's */
	for (u32 i = 0; i < ARRAY_SIZE(v->vmcs12_dirty); i++)
		v->vmcs12_dirty[i] = 0;
	v->vmcs12_dirty_words = 0;
	v->vmcs12_changes = 0;

	/* Controls: L1's, plus what L0 needs to keep L2 under its EPT and to see its own NMIs. */
	vmcs_write(VMCS_PIN_BASED_CONTROLS,
		   (pin12 | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | vmx_caps.pin0) & vmx_caps.pin1);
	vmcs_write(VMCS_PROC_BASED_CONTROLS, proc12 | PROC_SECONDARY_CONTROLS);
	/* RDTSCP, INVPCID and XSAVES/XRSTORS as L1 chose: clear, they #UD in L2 (SDM 26.3, 25.6.2);
	 * L0 has no use of its own for them in L2. */
	/* PML and #VE are L0's emulation (pml.c, ve.c), not the CPU's. */
	vmcs_write(VMCS_PROC_BASED_CONTROLS2, (proc2_12 & ~(PROC2_VPID | PROC2_VMCS_SHADOWING | PROC2_EPT | PROC2_PML |
							     PROC2_EPT_VE)) |
						      PROC2_EPT | vpid02_setup(v, proc2_12, (u16)r12(v, VMCS_VPID)));
	if (proc2_12 & PROC2_XSAVES)
		vmcs_write(VMCS_XSS_EXIT_BITMAP, r12(v, VMCS_XSS_EXIT_BITMAP));
	/* L2's guest-physical addresses: L1's own (EPT01) without EPT12, else through EPT02. */
	vmcs_write(VMCS_EPT_POINTER, (proc2_12 & PROC2_EPT) ? ept02_eptp_at_entry(v, r12(v, VMCS_EPT_POINTER)) : ept01_eptp());
	setup_msr_bitmap(v, proc12);
	setup_io_bitmaps(v, proc12);
	nested_apicv_setup02(v);
	nested_vmfunc_setup02(v);
	nested_timing_setup02(v);
	vmcs_write(VMCS_EXCEPTION_BITMAP, r12(v, VMCS_EXCEPTION_BITMAP));
	vmcs_write(VMCS_PAGE_FAULT_ERROR_MASK, r12(v, VMCS_PAGE_FAULT_ERROR_MASK));
	vmcs_write(VMCS_PAGE_FAULT_ERROR_MATCH, r12(v, VMCS_PAGE_FAULT_ERROR_MATCH));
	vmcs_write(VMCS_CR3_TARGET_COUNT, r12(v, VMCS_CR3_TARGET_COUNT));
	for (u32 i = 0; i < 4; i++)
		vmcs_write(VMCS_CR3_TARGET_VALUE0 + 2 * i, r12(v, VMCS_CR3_TARGET_VALUE0 + 2 * i));
	if (proc12 & PROC_TSC_OFFSETTING)
		vmcs_write(VMCS_TSC_OFFSET, r12(v, VMCS_TSC_OFFSET));
	vmcs_write(VMCS_CR0_GUEST_HOST_MASK, cr0_mask01);
	vmcs_write(VMCS_CR4_GUEST_HOST_MASK, cr4_mask01);
	vmcs_write(VMCS_EXIT_CONTROLS, EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT |
					       EXIT_LOAD_PAT | EXIT_SAVE_DEBUG_CONTROLS |
					       /* L1's "acknowledge interrupt on exit": the CPU does it for L1 (caps.c) */
					       ((u32)r12(v, VMCS_EXIT_CONTROLS) & EXIT_ACK_INTERRUPT) |
					       /* L2's timer keeps counting down across the exits L0 handles itself;
						* VMCS12 gets the saved value only if L1 asked (vmcs-translate.c). */
					       (((pin12 & PIN_PREEMPTION_TIMER) ? EXIT_SAVE_PREEMPTION_TIMER : 0) &
						vmx_caps.exit1) |
					       vmx_caps.exit0);
	vmcs_write(VMCS_ENTRY_CONTROLS, ((entry12 & ENTRY_IA32E_MODE_GUEST) | ENTRY_LOAD_DEBUG_CONTROLS |
					 ENTRY_LOAD_EFER | ENTRY_LOAD_PAT | vmx_caps.entry0) & vmx_caps.entry1);
	vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VMCS_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	nested_msr_lists_setup(v, r12(v, VMCS_ENTRY_MSR_LOAD_ADDR), (u32)r12(v, VMCS_ENTRY_MSR_LOAD_COUNT),
			       r12(v, VMCS_EXIT_MSR_STORE_ADDR), (u32)r12(v, VMCS_EXIT_MSR_STORE_COUNT));
	vmcs_write(VMCS_ENTRY_INTR_INFO, r12(v, VMCS_ENTRY_INTR_INFO));
	vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR_CODE, r12(v, VMCS_ENTRY_EXCEPTION_ERROR_CODE));
	vmcs_write(VMCS_ENTRY_INSTRUCTION_LENGTH, r12(v, VMCS_ENTRY_INSTRUCTION_LENGTH));
	vmcs01_host_state(v);

	struct vmcs_pair pair;
	nested_vmcs_pair(v, &pair);
	vmcs_guest_12_to_02(&pair);
	setup_cr_masks(v);
	if (guest_state_to_02(v))
		return;
	l2_from_l1(entry12, &l1);
}

void nested_vmentry(struct vcpu *v, bool launch)
{
	/* No current VMCS, or a shadow VMCS (SDM 31.3 VMLAUNCH/VMRESUME). */
	if (v->l1_current_vmcs == ~0ULL || vmcs12_is_shadow(v)) {
		nested_vm_fail_invalid();
		return;
	}
	if (vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_MOV_SS) {
		nested_vm_fail(v, VMXERR_ENTRY_MOV_SS);
		return;
	}
	if (launch && vmcs12_launched(v)) {
		nested_vm_fail(v, VMXERR_VMLAUNCH_NONCLEAR);
		return;
	}
	if (!launch && !vmcs12_launched(v)) {
		nested_vm_fail(v, VMXERR_VMRESUME_NONLAUNCHED);
		return;
	}
	/* The checks' outcome depends only on VMCS12's controls and host state (and on constants):
	 * unchanged since the last entry that passed them, they pass again. */
	u32 changes = launch ? CHANGED_OTHER : vmcs12_changes(v);
	if (((changes & CHANGED_OTHER) && !check_controls(v)) || !cr3_target_count_ok(v) || !nested_apicv_tpr_ok(v) ||
	    !entry_event_ok(v)) {
		nested_vm_fail(v, VMXERR_INVALID_CONTROLS);
		return;
	}
	if ((changes & (CHANGED_OTHER | CHANGED_HOST)) && !check_host_state(v)) {
		nested_vm_fail(v, VMXERR_INVALID_HOST_STATE);
		return;
	}
	/* L1's RIP stays at VMLAUNCH/VMRESUME in VMCS01: where L1 continues after L2 exits is its host
	 * RIP, and only an entry the CPU then refuses (nested_entry_failed: VMCS01 has not run since, so
	 * its exit information is still this instruction's) moves it past, as a VMfail completes it. */
	v->nested_entries++;
	/* VMCS01 keeps L1's state untouched while L2 runs. A rebuild starts from VMCS12 whole. */
	if (changes & CHANGED_OTHER) {
		nested_rare12_sync(v);
		build_vmcs02(v);
	} else {
		resume_cached(v);
	}
	/* Events pending for L1 (an INIT, a guest NMI) are dealt with before the entry by
	 * nested_pending_events, which the exit dispatch calls once VMCS02 is current. */
}
