/* Exits while L2 runs (SDM Vol. 3, chapter 28): L0 keeps what is its own (its NMIs, its APIC trap, its
 * memory, MSRs only L0 intercepts, CR bits only L0 owns) and resumes L2; every other exit is what L1
 * asked for and is reflected: L2's state and the exit information go to VMCS12, L1's host state from
 * VMCS12 goes into VMCS01 (SDM 28.5), and L1 resumes at its host RIP. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <lib/vmcs-translate.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include <lib/nested-logic.h>
#include "nested.h"

/* The exit information into VMCS12, as exit `reason` (lib/vmcs-translate.c); with `l2_state`, L2's
 * guest state too (a VM-entry failure leaves VMCS12's guest state as it was), with `lazy` only its
 * hot fields: the rest stay in VMCS02 until something reads them (the caller sets rare12_stale once
 * VMCS02 is in sync with VMCS12; nested_rare12_sync, entry.c; KVM splits its vmcs02-to-vmcs12 copy
 * the same way): a segment register, a descriptor table or a SYSENTER MSR costs a VMREAD at few
 * exits. */
static inline __attribute__((always_inline)) void save_exit_as(struct vcpu *v, u32 reason, bool l2_state, bool lazy)
{
	/* Lazily, VMCS02 keeps holding the rare fields (L2 ran on them since); a VM-entry failure
	 * leaves VMCS12's guest state as the last exit saved it, rare fields included. */
	if (!l2_state)
		nested_rare12_sync(v);
	else if (!lazy)
		v->rare12_stale = 0; /* all of L2's state now */
	/* VMCS12 still holds what L1 entered with (read before L2's state replaces it). */
	bool nmi_held = l2_state && nested_l2_nmi_blocked_until_exit((u32)r12(v, VMCS_PIN_BASED_CONTROLS),
								     (u32)r12(v, VMCS_GUEST_INTERRUPTIBILITY),
								     (u32)r12(v, VMCS_ENTRY_INTR_INFO));
	if (l2_state && lazy) {
		nested_save_exit_hot(v, reason);
	} else {
		struct vmcs_pair pair;
		nested_vmcs_pair(v, &pair);
		if (l2_state)
			vmcs_guest_02_to_12(&pair);
		vmcs_exit_info_02_to_12(&pair, reason);
	}
	if (!l2_state)
		return;
	/* An IRET of L2's lifted VMCS02's virtual-NMI blocking, not L2's blocking by NMI. */
	if (nmi_held)
		w12(v, VMCS_GUEST_INTERRUPTIBILITY, r12(v, VMCS_GUEST_INTERRUPTIBILITY) | INTERRUPTIBILITY_NMI);
	if (v->l2_vid)
		nested_apicv_save12(v);
}

static void save_exit(struct vcpu *v, u32 reason, bool l2_state)
{
	save_exit_as(v, reason, l2_state, false);
}

/* load_l1_host_state's l2_cr0 for a VM-entry failure in the guest-state checks: L2's state was never
 * loaded, so CR0's bits the exit leaves alone keep L1's values (SDM 27.8). */
#define KEEP_L1_CR0 (~0ULL)

/* Back to VMCS01 with L1's host state as its guest state (SDM 28.5). */
static void load_l1_host_state(struct vcpu *v, u64 l2_cr0)
{
	u32 exit12 = (u32)r12(v, VMCS_EXIT_CONTROLS);
	bool host64 = exit12 & EXIT_HOST_ADDR_SPACE_SIZE;
	u64 cr0 = r12(v, VMCS_HOST_CR0), cr4 = r12(v, VMCS_HOST_CR4), efer;
	/* L2's EFER and PAT (VMCS02 saves both), which a VM exit without "load IA32_EFER/PAT" leaves in
	 * place (SDM 28.5.1); after a guest-state failure L2's were never loaded and L1's stay. */
	bool l2_loaded = l2_cr0 != KEEP_L1_CR0;
	u64 efer02 = l2_loaded && !(exit12 & EXIT_LOAD_EFER) ? vmcs_read(VMCS_GUEST_IA32_EFER) : 0;
	u64 pat02 = l2_loaded && !(exit12 & EXIT_LOAD_PAT) ? vmcs_read(VMCS_GUEST_IA32_PAT) : 0;

	if (vmptrld(v->vmcs_pa))
		panic("VMPTRLD of VMCS01 failed");
	v->in_l2 = 0;
	if (!l2_loaded)
		l2_cr0 = guest_cr0();
	/* ET, CD, NW and the reserved bits 28:19, 17 and 15:6 are not loaded from the host state: they
	 * keep L2's values (SDM 28.5.1); bits 63:32 were checked 0 at entry. */
	const u64 keep = CR0_ET | CR0_CD | CR0_NW | (0x1ffULL << 19) | (1ULL << 17) | (0x3ffULL << 6);
	cr0 = (cr0 & ~keep) | (l2_cr0 & keep);
	vmcs_write(VMCS_CR0_READ_SHADOW, cr0);
	vmcs_write(VMCS_GUEST_CR0, (cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1);
	vmcs_write(VMCS_GUEST_CR3, r12(v, VMCS_HOST_CR3));
	vmcs_write(VMCS_CR4_READ_SHADOW, cr4);
	vmcs_write(VMCS_GUEST_CR4, (cr4 | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1);
	vmcs_write(VMCS_GUEST_DR7, 0x400);
	vmcs_write(VMCS_GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_CS, r12(v, VMCS_HOST_IA32_SYSENTER_CS));
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_ESP, r12(v, VMCS_HOST_IA32_SYSENTER_ESP));
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_EIP, r12(v, VMCS_HOST_IA32_SYSENTER_EIP));
	efer = l2_loaded ? efer02 : vmcs_read(VMCS_GUEST_IA32_EFER);
	if (exit12 & EXIT_LOAD_EFER)
		efer = r12(v, VMCS_HOST_IA32_EFER);
	else
		efer = host64 ? efer | EFER_LMA | EFER_LME : efer & ~(EFER_LMA | EFER_LME);
	vmcs_write(VMCS_GUEST_IA32_EFER, efer);
	if (exit12 & EXIT_LOAD_PAT)
		vmcs_write(VMCS_GUEST_IA32_PAT, r12(v, VMCS_HOST_IA32_PAT));
	else if (l2_loaded)
		vmcs_write(VMCS_GUEST_IA32_PAT, pat02);
	if (host64)
		vmcs_set_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);
	else
		vmcs_clear_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);

	guest_set_segment(VMCS_GUEST_CS_SELECTOR, r12(v, VMCS_HOST_CS_SELECTOR), 0, 0xffffffff, host64 ? 0xa09b : 0xc09b);
	guest_set_segment(VMCS_GUEST_SS_SELECTOR, r12(v, VMCS_HOST_SS_SELECTOR), 0, 0xffffffff, 0xc093);
	u64 ds = r12(v, VMCS_HOST_DS_SELECTOR), es = r12(v, VMCS_HOST_ES_SELECTOR);
	guest_set_segment(VMCS_GUEST_DS_SELECTOR, ds, 0, 0xffffffff, ds ? 0xc093 : 0x10000);
	guest_set_segment(VMCS_GUEST_ES_SELECTOR, es, 0, 0xffffffff, es ? 0xc093 : 0x10000);
	guest_set_segment(VMCS_GUEST_FS_SELECTOR, r12(v, VMCS_HOST_FS_SELECTOR), r12(v, VMCS_HOST_FS_BASE), 0xffffffff,
		    r12(v, VMCS_HOST_FS_SELECTOR) ? 0xc093 : 0x10000);
	guest_set_segment(VMCS_GUEST_GS_SELECTOR, r12(v, VMCS_HOST_GS_SELECTOR), r12(v, VMCS_HOST_GS_BASE), 0xffffffff,
		    r12(v, VMCS_HOST_GS_SELECTOR) ? 0xc093 : 0x10000);
	guest_set_segment(VMCS_GUEST_TR_SELECTOR, r12(v, VMCS_HOST_TR_SELECTOR), r12(v, VMCS_HOST_TR_BASE), 0x67, 0x8b);
	guest_set_segment(VMCS_GUEST_LDTR_SELECTOR, 0, 0, 0, 0x10000);
	vmcs_write(VMCS_GUEST_GDTR_BASE, r12(v, VMCS_HOST_GDTR_BASE));
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, 0xffff);
	vmcs_write(VMCS_GUEST_IDTR_BASE, r12(v, VMCS_HOST_IDTR_BASE));
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, 0xffff);
	vmcs_write(VMCS_GUEST_RIP, r12(v, VMCS_HOST_RIP));
	vmcs_write(VMCS_GUEST_RSP, r12(v, VMCS_HOST_RSP));
	vmcs_write(VMCS_GUEST_RFLAGS, 0x2);
	/* After an exit caused by an NMI, NMIs stay blocked in L1 until its next IRET (SDM 27.2.3,
	 * 26.7.1); VMCS01's virtual-NMI blocking is that. */
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
		   (r12(v, VMCS_EXIT_REASON) & 0xffff) == EXIT_REASON_EXCEPTION_NMI &&
				   (r12(v, VMCS_EXIT_INTR_INFO) & (INTR_INFO_VALID | INTR_TYPE_MASK)) ==
					   (INTR_INFO_VALID | INTR_TYPE_NMI) ?
			   INTERRUPTIBILITY_NMI :
			   0);
	vmcs_write(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	vmcs_write(VMCS_GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
	vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
	guest_cr0_sync_cache_bits(cr0);
	shadow_load_after_exit(v); /* L1's VMREADs of the exit information run on the shadow VMCS */
}

static inline void exit_msr_lists(struct vcpu *v);
static inline void exit_msr_load(struct vcpu *v);
static void vmx_abort_l1(struct vcpu *v, u32 indicator);

/* After an exit L2 took (VMCS12 holds its state and exit information, VMCS02 still current): the
 * VMCS is launched and in sync with VMCS02, L1 resumes with its host state, then the MSR lists run
 * (SDM 28.5 before 28.6: the exit-load list overrides the host state's SYSENTER MSRs, PAT...). */
static void return_to_l1(struct vcpu *v)
{
	vmcs12_set_launched(v, true);
	v->vmcs02_of = v->l1_current_vmcs;
	load_l1_host_state(v, vmcs_read(VMCS_GUEST_CR0));
	exit_msr_lists(v);
}

/* Reflects the current L2 exit as a different exit (an EPT violation found in EPT12). */
void nested_reflect_with(struct vcpu *v, u32 reason, u64 qual)
{
	save_exit(v, reason, true);
	w12(v, VMCS_EXIT_QUALIFICATION, qual);
	return_to_l1(v);
}

/* A hardware exception L0 raises while emulating an instruction of L2 (a #GP from its MSR policy or a
 * refused store, a #PF from an operand walk): on a real CPU the exception would have gone through L1's
 * exception bitmap (SDM 26.2), so when L1 intercepts it the emulated instruction's exit becomes an
 * exception exit to L1 (SDM 28.2.2: interruption information, error code; for #PF the linear address
 * in the qualification and CR2 unchanged) with L2's RIP still at the instruction. Returns false when
 * it is L2's to take (the caller injects it). */
bool nested_l2_exception(struct vcpu *v, u32 vector, bool has_error, u32 error_code, u64 qual)
{
	if (!v || !v->in_l2 ||
	    !nested_exception_exits((u32)r12(v, VMCS_EXCEPTION_BITMAP), (u32)r12(v, VMCS_PAGE_FAULT_ERROR_MASK),
					  (u32)r12(v, VMCS_PAGE_FAULT_ERROR_MATCH), vector, error_code))
		return false;
	nested_reflect_exception(v, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector |
					    (has_error ? INTR_INFO_DELIVER_ERROR_CODE : 0),
				 has_error ? error_code : 0, qual);
	return true;
}

/* SDM 28.6: L1's exit-load list, after its host state; also after a VM-entry failure (SDM 27.8),
 * whose host state is loaded as for an exit. It may only fail into a VMX abort of L1 (SDM 28.7). */
static inline void exit_msr_load(struct vcpu *v)
{
	/* Most L1s have no list: no call then. */
	if (r12(v, VMCS_EXIT_MSR_LOAD_COUNT) &&
	    !nested_msr_exit_load(r12(v, VMCS_EXIT_MSR_LOAD_ADDR), (u32)r12(v, VMCS_EXIT_MSR_LOAD_COUNT)))
		vmx_abort_l1(v, 4); /* indicator 4: failure loading MSRs at VM exit */
	if (v->l1_vmx_aborted)
		nested_hold_aborted(v);
}

/* SDM 28.4 and 28.6: L2's MSRs into L1's store list, then L1's exit-load list. */
static inline void exit_msr_lists(struct vcpu *v)
{
	if (r12(v, VMCS_EXIT_MSR_STORE_COUNT) &&
	    !nested_msr_store_copy_back(v, r12(v, VMCS_EXIT_MSR_STORE_ADDR), (u32)r12(v, VMCS_EXIT_MSR_STORE_COUNT))) {
		vmx_abort_l1(v, 1); /* indicator 1: failure saving guest MSRs */
		nested_hold_aborted(v);
		return;
	}
	exit_msr_load(v);
}

/* A VMX abort (SDM 28.7) of this L1 vCPU alone: the indicator goes into the VMCS12 region and the
 * vCPU enters the VMX-abort shutdown state, from which only RESET wakes it: L1 stays "in VMX
 * operation" here, so its INITs stay pending (ipi_check_init), and it never runs again. The machine
 * and L1's other vCPUs go on; L0's own NMIs (quiesce, stop) still reach this CPU through NMI exits. */
static void vmx_abort_l1(struct vcpu *v, u32 indicator)
{
	vmcs12_set_abort(v, indicator);
	printf("XMHF: CPU %u: VMX abort of L1 (indicator %u): this vCPU is shut down\n", v->cpu->index, indicator);
	v->l1_vmx_aborted = 1;
}

/* Before every entry of an aborted vCPU: shutdown (HLT with interrupts off where the CPU has no
 * shutdown activity state, IA32_VMX_MISC[7]), nothing injected, no window asked for. */
void nested_hold_aborted(struct vcpu *v)
{
	bool shutdown = vmx_caps.misc & (1ULL << 7);

	vmcs_write(VMCS_GUEST_ACTIVITY_STATE, shutdown ? ACTIVITY_SHUTDOWN : ACTIVITY_HLT);
	if (!shutdown)
		vmcs_write(VMCS_GUEST_RFLAGS, vmcs_read(VMCS_GUEST_RFLAGS) & ~RFLAGS_IF);
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
	v->nmi_pending = 0;
	vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING | PROC_INTR_WINDOW_EXITING);
}

/* The common reflected exit: L2's rare guest fields stay in VMCS02 (save_exit_as). */
static void reflect(struct vcpu *v)
{
	save_exit_as(v, v->exit_reason, true, true);
	return_to_l1(v);
	v->rare12_stale = 1; /* VMCS02 is in sync with the current VMCS12 (return_to_l1) */
}

/* An exit of L0's making for an event that arrived for L1 while L2 ran: an INIT (reason 3) or an NMI
 * L1 intercepts (reason 0, NMI interruption information): no qualification, no IDT-vectoring
 * information (SDM 28.2.1-28.2.3), L2's state saved as for any exit. */
static void save_event_exit(struct vcpu *v, u32 reason, u64 qual, u32 intr_info)
{
	save_exit(v, reason, true);
	w12(v, VMCS_EXIT_QUALIFICATION, qual);
	w12(v, VMCS_EXIT_INTR_INFO, intr_info);
	w12(v, VMCS_IDT_VECTORING_INFO, 0);
}

static void reflect_event(struct vcpu *v, u32 reason, u32 intr_info)
{
	save_event_exit(v, reason, 0, intr_info);
	return_to_l1(v);
}

/* A SIPI for L2 in wait-for-SIPI that L0 emulated (entry.c): the SIPI exit, the vector in the
 * qualification (SDM 28.2.1), L2's state as it was. Called with VMCS02 current before the CPU ran
 * it (perhaps fresh from a build): the next entry to L2 builds it again. */
void nested_reflect_sipi(struct vcpu *v, u32 vector)
{
	save_event_exit(v, EXIT_REASON_SIPI, vector, 0);
	return_to_l1(v);
	v->vmcs02_of = ~0ULL;
	v->launch_next = 0;
}

/* An exception of L2's that L1's exception bitmap intercepts, raised by L0 (an instruction it
 * emulated for L2, nested_l2_exception; a #VE, ve.c): exit reason 0 with the exception's interruption information and error code;
 * `qual` is the #PF linear address, else 0 (SDM 28.2.1, 28.2.2). */
void nested_reflect_exception(struct vcpu *v, u32 intr_info, u32 error_code, u64 qual)
{
	save_event_exit(v, EXIT_REASON_EXCEPTION_NMI, qual, intr_info);
	w12(v, VMCS_EXIT_INTR_ERROR_CODE, error_code);
	return_to_l1(v);
}

/* An EPT violation or misconfiguration of EPT12 found by L0 for an access it performs for L2 (an
 * emulated instruction's operand, shadow12.c): the guest-physical and linear addresses are the
 * access's, not those of the exit L0 took (SDM 28.2.1, 28.2.5). */
void nested_reflect_ept12(struct vcpu *v, u32 reason, u64 qual, u64 gpa2, u64 linear)
{
	save_exit(v, reason, true);
	w12(v, VMCS_EXIT_QUALIFICATION, qual);
	w12(v, VMCS_GUEST_PHYSICAL_ADDRESS, gpa2);
	w12(v, VMCS_GUEST_LINEAR_ADDRESS, linear);
	w12(v, VMCS_IDT_VECTORING_INFO, 0);
	return_to_l1(v);
}

/* A VM-entry failure L0 finds before VMCS02 runs (SDM 27.8): reason 33 (guest state, qualification
 * per Table 27-1) or 34 (MSR loading, the failing entry's 1-based index); L1 resumes at its host RIP
 * after its exit-load list. Called with VMCS02 current. */
void nested_entry_fail(struct vcpu *v, u32 reason, u64 qual)
{
	save_exit(v, EXIT_REASON_ENTRY_FAILURE | reason, false);
	w12(v, VMCS_EXIT_QUALIFICATION, qual);
	load_l1_host_state(v, reason == EXIT_REASON_INVALID_GUEST_STATE ? KEEP_L1_CR0 : vmcs_read(VMCS_GUEST_CR0));
	exit_msr_load(v);
	v->launch_next = 0;
}

/* Entry-load list entry `index` (1-based) refused by L0 before VMCS02 ran: the VM-entry failure due to
 * MSR loading (reason 34, SDM 27.8). */
void nested_entry_fail_msr_load(struct vcpu *v, u32 index)
{
	nested_entry_fail(v, EXIT_REASON_MSR_LOADING, index);
}

/* Does L1's MSR bitmap (or its lack) make this access exit to L1? (SDM 25.6.9) */
static bool l1_wants_msr(struct vcpu *v, u32 msr, bool write)
{
	const u8 *bm;
	u32 base;

	if (!(r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_USE_MSR_BITMAPS))
		return true;
	if (msr <= 0x1fff)
		base = 0;
	else if (msr >= 0xc0000000 && msr <= 0xc0001fff)
		base = 1024;
	else
		return true;
	bm = guestmem_ptr(r12(v, VMCS_MSR_BITMAP), PAGE_SIZE_4K);
	if (!bm)
		return true;
	if (write)
		base += 2048;
	return (bm[base + (msr & 0x1fff) / 8] >> (msr & 7)) & 1;
}

/* L1's I/O bitmap page i (A or B) at gpa, mapped: guestmem_ptr's answer for an address never changes,
 * so it is looked up again only when L1 moves the bitmap (most L2 exits in a Xen dom0 are port I/O). */
static const u8 *io_bitmap12(struct vcpu *v, u32 i, u64 gpa)
{
	if (v->io_bitmap12_gpa[i] != gpa || !v->io_bitmap12[i]) {
		v->io_bitmap12[i] = guestmem_ptr(gpa, PAGE_SIZE_4K);
		v->io_bitmap12_gpa[i] = gpa;
	}
	return v->io_bitmap12[i];
}

/* Do L1's I/O controls make this access exit to L1? (SDM 26.1.3) */
static bool l1_wants_io(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 proc12 = (u32)r12(v, VMCS_PROC_BASED_CONTROLS);
	const u8 *a = NULL, *b = NULL;

	if (proc12 & PROC_USE_IO_BITMAPS) {
		a = io_bitmap12(v, 0, r12(v, VMCS_IO_BITMAP_A));
		b = io_bitmap12(v, 1, r12(v, VMCS_IO_BITMAP_B));
		if (!a || !b)
			return true;
	}
	return nested_io_exits_to_l1(proc12, a, b, (u32)(q >> 16) & 0xffff, (u32)(q & 7) + 1);
}

/* A MOV to CR0/CR4 exits to L1 if it changes a bit L1 owns (SDM 26.1.3). */
static bool l1_wants_cr(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 cr = q & 15, type = (q >> 4) & 3, reg = (q >> 8) & 15;
	u64 val, mask, shadow;

	if (type != 0 || (cr != 0 && cr != 4))
		return true;
	val = reg == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg];
	mask = r12(v, cr == 0 ? VMCS_CR0_GUEST_HOST_MASK : VMCS_CR4_GUEST_HOST_MASK);
	shadow = r12(v, cr == 0 ? VMCS_CR0_READ_SHADOW : VMCS_CR4_READ_SHADOW);
	return nested_cr_write_exits_to_l1(mask, shadow, val);
}

/* Returns true if L0 handled the exit and L2 resumes. */
static bool l0_handles(struct vcpu *v)
{
	u32 basic = v->exit_reason & 0xffff;

	switch (basic) {
	case EXIT_REASON_EXCEPTION_NMI:
		if ((vmcs_read(VMCS_EXIT_INTR_INFO) & INTR_TYPE_MASK) != INTR_TYPE_NMI)
			return false; /* an exception L1's bitmap asked for */
		if (nested_l0_nmi(v))
			return true;
		return false;
	case EXIT_REASON_EPT_VIOLATION:
		if (nested_l2_uses_ept(v))
			return ept02_violation(v) && v->in_l2;
		/* Without EPT12, VMCS02 runs on EPT01 and these are L0's (its APIC trap, its memory),
		 * except an access to the APIC-access page L1 virtualizes (apicv.c). */
		if (nested_apicv_access_exit(v, vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS),
					     vmcs_read(VMCS_EXIT_QUALIFICATION)))
			return v->in_l2; /* a virtualized TPR write (L2 resumes) or an exit L1 has */
		__attribute__((fallthrough));
	case EXIT_REASON_EPT_MISCONFIG:
		(basic == EXIT_REASON_EPT_VIOLATION ? handle_ept_violation : handle_ept_misconfig)(v);
		return v->in_l2; /* an exception the emulation raised may have gone to L1 */
	case EXIT_REASON_NMI_WINDOW:
		if (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_NMI_WINDOW_EXITING)
			return false;
		if (r12(v, VMCS_PIN_BASED_CONTROLS) & PIN_NMI_EXITING) {
			/* Pending NMIs go to L1 as NMI exits (nested_l2_exit), not into L2. */
			vmcs_clear_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
			return true;
		}
		handle_nmi_window(v);
		return true;
	case EXIT_REASON_RDMSR:
	case EXIT_REASON_WRMSR:
		if (l1_wants_msr(v, (u32)v->regs.gpr[REG_RCX], basic == EXIT_REASON_WRMSR))
			return false;
		(basic == EXIT_REASON_RDMSR ? handle_rdmsr : handle_wrmsr)(v);
		return v->in_l2;
	case EXIT_REASON_CR_ACCESS:
		if (l1_wants_cr(v))
			return false;
		handle_cr_access(v);
		return v->in_l2;
	case EXIT_REASON_VMFUNC:
		return nested_vmfunc_exit(v); /* EPTP switching, emulated (vmfunc.c) */
	case EXIT_REASON_VMREAD:
	case EXIT_REASON_VMWRITE:
		/* Through L1's VMCS shadowing when its bitmaps allow (shadow12.c), else L1's exit. */
		return nested_l2_vmread_vmwrite(v, basic == EXIT_REASON_VMWRITE);
	case EXIT_REASON_IO:
		/* A port L0 or a hypapp intercepts, which L1 lets L2 reach (entry.c's merged bitmaps). L0's
		 * string I/O emulation reaches memory through L1 addresses, so INS/OUTS of an L2 on EPT12
		 * go to L1 instead (not asked for, but L1 performs them, and L0 sees L1's own port I/O). */
		if (l1_wants_io(v) || (((vmcs_read(VMCS_EXIT_QUALIFICATION) >> 4) & 1) && nested_l2_uses_ept(v)))
			return false;
		handle_io(v);
		return v->in_l2;
	case EXIT_REASON_SIPI:
		quiesce_unpark(v); /* L2 left wait-for-SIPI (entry.c); the exit is L1's */
		return false;
	default:
		return false;
	}
}

/* An EPT violation or misconfiguration exit saves the pending debug exceptions as clear unless MOV-SS
 * blocking is in effect (SDM 28.3.4). Bochs 2.7 saves the single-step trap it had scheduled for the
 * faulting instruction (BS with RFLAGS.TF): resumed with it after an EPT02 miss, L2 took a #DB before
 * the instruction ran again (`vmxfuzz seed=8` with 2 CPUs, docs/known-bugs.md). Only for exits after
 * which the instruction runs again (RIP unchanged: not an emulated MMIO access). */
static bool is_ept_exit(struct vcpu *v)
{
	u32 basic = v->exit_reason & 0xffff;

	return basic == EXIT_REASON_EPT_VIOLATION || basic == EXIT_REASON_EPT_MISCONFIG;
}

static void ept_exit_no_pending_debug(u64 rip_at_exit)
{
	if (vmcs_read(VMCS_GUEST_RIP) == rip_at_exit &&
	    !(vmcs_read(VMCS_GUEST_INTERRUPTIBILITY) & INTERRUPTIBILITY_MOV_SS))
		vmcs_write(VMCS_GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
}

bool nested_l2_exit(struct vcpu *v)
{
	if (v->exit_reason & EXIT_REASON_ENTRY_FAILURE) {
		/* The CPU refused VMCS02's guest state (or an MSR load): the same VM-entry failure exit
		 * goes to L1, with VMCS12's guest state unchanged and the VMCS still not launched. */
		u64 l2_cr0 = (v->exit_reason & 0xffff) == EXIT_REASON_INVALID_GUEST_STATE ? KEEP_L1_CR0
											   : vmcs_read(VMCS_GUEST_CR0);
		save_exit(v, v->exit_reason, false);
		load_l1_host_state(v, l2_cr0);
		exit_msr_load(v);
		return false;
	}
	bool ept_exit = is_ept_exit(v);
	u64 rip = ept_exit ? vmcs_read(VMCS_GUEST_RIP) : 0;

	if (l0_handles(v)) {
		/* An INIT for this CPU (emulated, runtime/guest/ipi.c) while L2 runs is an INIT VM exit
		 * to L1 (SDM 26.2); in L1's VMX root operation it stays blocked (ipi_check_init). It waits
		 * for an exit that delivered no event, so nothing needs re-injecting into L2. */
		if (!v->in_l2)
			return true;
		if (ept_exit)
			ept_exit_no_pending_debug(rip);
		if (vmcs_read(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID) {
			/* The interrupted event is re-injected (reinject_interrupted_event); an interrupted
			 * virtual interrupt as the SDM says, not as Bochs 2.7 reports it (apicv.c). */
			if (v->l2_vid)
				nested_apicv_vectoring(v, (v->exit_reason & 0xffff) == EXIT_REASON_EPT_VIOLATION);
			return true;
		}
		if (__atomic_load_n(&v->init_pending, __ATOMIC_ACQUIRE)) {
			/* A SIPI sent before L1 puts L2 in wait-for-SIPI must not be lost (ipi.c). */
			spin_lock(&v->ipi_lock);
			v->init_pending = 0;
			v->l2_init_taken = 1;
			spin_unlock(&v->ipi_lock);
			reflect_event(v, EXIT_REASON_INIT, 0);
			return false;
		}
		/* A guest NMI (one for L1's world) with L1 intercepting NMIs is an NMI exit to L1, whatever
		 * L2's NMI blocking (SDM 26.2, 26.7.1); without NMI exiting it goes into L2 at its NMI
		 * window (runtime/guest/nmi.c). */
		if (v->nmi_pending && (r12(v, VMCS_PIN_BASED_CONTROLS) & PIN_NMI_EXITING)) {
			__atomic_sub_fetch(&v->nmi_pending, 1, __ATOMIC_SEQ_CST);
			reflect_event(v, EXIT_REASON_EXCEPTION_NMI, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
			return false;
		}
		return true;
	}
	/* A handler may have reflected the exit already (as another exit: an EPT12 fault). */
	if (v->in_l2)
		reflect(v);
	return false;
}

bool nested_entry_failed(struct vcpu *v, u32 error)
{
	/* VMLAUNCH of VMCS02 failed before entering L2 (a check L0 did not do itself): L1 gets the
	 * same VMfail for its VMLAUNCH/VMRESUME, which completes it (nested_vmentry left L1's RIP at the
	 * instruction, and VMCS01 still has its exit information). */
	if (vmptrld(v->vmcs_pa))
		panic("VMPTRLD of VMCS01 failed");
	v->in_l2 = 0;
	guest_skip_instruction();
	nested_vm_fail_noskip(v, error);
	shadow_load(v);
	return true;
}
