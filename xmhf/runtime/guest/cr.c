/* MOV to CR0/CR4 exits: only bits in the guest/host masks exit (CR0.NE, CR4.VMXE, CR4.SMXE and reserved
 * bits: vmcs01.c). The guest sees its own values in the read shadows; the real registers keep the bits
 * VMX operation requires (SDM Vol. 3, 25.6.6 and 24.8). Paging-mode changes need no work here: with
 * unrestricted guest the CPU itself updates EFER.LMA and the PDPTEs in non-root operation, except when
 * the MOV itself exits (the guest changed CR0.NE): then paging_transition() does it. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

#define CR4_SMXE (1ULL << 14)

/* PAE paging's four PDPTEs from CR3, checked as the CPU checks them (SDM Vol. 3, 4.4.1: a present
 * entry with reserved bits set is refused; VM entry would fail on it). */
static bool load_pdptes(u64 cr3)
{
	u64 *p = guestmem_ptr(cr3 & 0xffffffe0ULL, 32), pdpte[4];
	u64 reserved = 0x1e6ULL | ~((1ULL << vmx_caps.maxphyaddr) - 1);

	if (!p)
		return false;
	for (int i = 0; i < 4; i++) {
		pdpte[i] = p[i];
		if ((pdpte[i] & 1) && (pdpte[i] & reserved))
			return false;
	}
	for (int i = 0; i < 4; i++)
		vmcs_write(VMCS_GUEST_PDPTE0 + 2 * i, pdpte[i]);
	return true;
}

/* The MOV to CR0 is emulated, so its side effects on paging are too (SDM Vol. 3, 10.8.5 and 4.4.1):
 * setting PG with EFER.LME activates IA-32e mode (EFER.LMA and the "IA-32e mode guest" entry control),
 * clearing PG deactivates it, and entering PAE paging loads the PDPTEs from CR3. */
static bool paging_transition(u64 old_cr0, u64 new_cr0)
{
	u64 efer = vmcs_read(VMCS_GUEST_IA32_EFER);
	bool pg_on = !(old_cr0 & CR0_PG) && (new_cr0 & CR0_PG);
	bool pg_off = (old_cr0 & CR0_PG) && !(new_cr0 & CR0_PG);

	if (pg_on && (efer & EFER_LME)) {
		if (!(vmcs_read(VMCS_GUEST_CR4) & CR4_PAE))
			return false; /* #GP: IA-32e mode needs PAE */
		vmcs_write(VMCS_GUEST_IA32_EFER, efer | EFER_LMA);
		vmcs_set_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);
	} else if (pg_off && (efer & EFER_LMA)) {
		vmcs_write(VMCS_GUEST_IA32_EFER, efer & ~EFER_LMA);
		vmcs_clear_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);
	} else if (pg_on && (vmcs_read(VMCS_GUEST_CR4) & CR4_PAE) && !load_pdptes(vmcs_read(VMCS_GUEST_CR3))) {
		return false;
	}
	return true;
}

/* The guest's (VPID 1's) non-global translations go, as a MOV to CR3 of the guest itself would drop
 * them; without VPID every VM entry flushes them anyway (SDM 29.4.3.3). */
static void flush_guest_tlb(void)
{
	if (!(vmcs_read(VMCS_PROC_BASED_CONTROLS) & PROC_SECONDARY_CONTROLS) ||
	    !(vmcs_read(VMCS_PROC_BASED_CONTROLS2) & PROC2_VPID))
		return;
	vmx_invvpid(INVVPID_SINGLE_KEEP_GLOBALS, (u16)vmcs_read(VMCS_VPID), 0);
}

/* Loads a guest CR3 written by an emulated instruction (MOV to CR3, a task switch): with PAE paging
 * outside IA-32e mode the PDPTEs come from it first. The guest's VPID-tagged translations are flushed
 * as the instruction itself would flush them (SDM 4.10.4.1; globals kept). */
bool guest_load_cr3(u64 cr3)
{
	if ((vmcs_read(VMCS_GUEST_CR0) & CR0_PG) && (vmcs_read(VMCS_GUEST_CR4) & CR4_PAE) &&
	    !(vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA) && !load_pdptes(cr3))
		return false;
	vmcs_write(VMCS_GUEST_CR3, cr3);
	flush_guest_tlb();
	return true;
}

/* VM exits do not load CR0.CD and CR0.NW from the host-state area (SDM Vol. 3, 28.5.1), so the
 * hypervisor runs with the guest's cache-control bits anyway; and Bochs 2.7 also keeps the current
 * CD/NW on VM entry instead of loading them from the guest CR0 field. Setting them here to the value
 * the guest is given makes both behave the same. */
void guest_cr0_sync_cache_bits(u64 cr0)
{
	u64 now = read_cr0(), want = (now & ~(CR0_CD | CR0_NW)) | (cr0 & (CR0_CD | CR0_NW));

	if (want != now) /* a MOV to CR0 serializes: not at every exit to L1 */
		write_cr0(want);
}

static void mov_to_cr0(struct vcpu *v, u64 val)
{
	u64 old = vmcs_read(VMCS_GUEST_CR0);

	/* #GP for reserved bits, NW without CD, PG without PE (SDM Vol. 3, 2.5), and, once L1 is in VMX
	 * operation, for clearing a bit VMX requires (IA32_VMX_CR0_FIXED0, SDM 24.8). */
	if ((val >> 32) || ((val & CR0_NW) && !(val & CR0_CD)) || ((val & CR0_PG) && !(val & CR0_PE)) ||
	    (v->l1_vmx_on && (val & vmx_caps.cr0_fixed0) != vmx_caps.cr0_fixed0)) {
		guest_inject_gp();
		return;
	}
	if (!paging_transition(old, val)) {
		guest_inject_gp();
		return;
	}
	vmcs_write(VMCS_CR0_READ_SHADOW, val);
	vmcs_write(VMCS_GUEST_CR0, (val | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1);
	guest_cr0_sync_cache_bits(val);
	guest_skip_instruction();
}

static void mov_to_cr4(struct vcpu *v, u64 val)
{
	/* SMX is hidden, and VMX unless nested VMX is on: their enable bits are reserved from the guest's
	 * point of view. CR4.VMXE cannot be cleared in VMX operation; PAE cannot be cleared in IA-32e
	 * mode. */
	u64 hidden = CR4_SMXE | (nested_enabled() ? 0 : CR4_VMXE);

	if ((val & ~vmx_caps.cr4_fixed1) || (val & hidden) || (v->l1_vmx_on && !(val & CR4_VMXE)) ||
	    (!(val & CR4_PAE) && (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA))) {
		guest_inject_gp();
		return;
	}
	vmcs_write(VMCS_CR4_READ_SHADOW, val);
	vmcs_write(VMCS_GUEST_CR4, (val | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1);
	guest_skip_instruction();
}

void handle_cr_access(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 cr = q & 15, type = (q >> 4) & 3, reg = (q >> 8) & 15;
	u64 val;

	if (cr == 3 && type == 1) {
		/* MOV from CR3 exits only where CR3-store exiting cannot be turned off (no TRUE controls). */
		if (reg == REG_RSP)
			vmcs_write(VMCS_GUEST_RSP, vmcs_read(VMCS_GUEST_CR3));
		else
			v->regs.gpr[reg] = vmcs_read(VMCS_GUEST_CR3);
		guest_skip_instruction();
		return;
	}
	if (type != 0) /* CLTS and LMSW never exit with these masks */
		panic("unexpected control-register exit, qualification 0x%llx", (unsigned long long)q);
	val = reg == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg];
	if (!(vmcs_read(VMCS_ENTRY_CONTROLS) & ENTRY_IA32E_MODE_GUEST) || !(vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS) & (1 << 13)))
		val = (u32)val; /* outside 64-bit mode only 32 bits are moved */
	if (cr == 3) {
		/* As for the store: only without TRUE controls. */
		if (!guest_load_cr3(val)) {
			guest_inject_gp();
			return;
		}
		guest_skip_instruction();
	} else if (cr == 0)
		mov_to_cr0(v, val);
	else if (cr == 4)
		mov_to_cr4(v, val);
	else
		panic("unexpected MOV to CR%u exit", cr);
}
