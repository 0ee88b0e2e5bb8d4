/* VMCS01: the VMCS each CPU runs the guest with (SDM Vol. 3, chapter 25 "VMCS" and 27.3 entry checks).
 * Controls: unrestricted guest on EPT01, MSR bitmap, NMI exiting with virtual NMIs, EFER/PAT switched by
 * the VMCS. Host state: this CPU's runtime state, RIP = the exit stub. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/uefi.h>
#include <lib/nested-logic.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/msr.h>

#define AR_UNUSABLE (1U << 16)

static u8 *msr_bitmap; /* one page shared by all CPUs: the MSRs the hypervisor must see */
static struct sparse_bitmap msr_intercepts; /* the same, indexed for VMCS02's merge */

void vmcs_write_failed(u64 field, u64 value)
{
	panic("VMWRITE of field 0x%llx = 0x%llx failed (VM-instruction error %llu)", (unsigned long long)field,
	      (unsigned long long)value, (unsigned long long)vmread(VMCS_VM_INSTRUCTION_ERROR));
}

/* Required bits set, unsupported bits cleared, per the allowed-0/allowed-1 settings (SDM A.3-A.5). */
static u32 adjust(u32 want, u32 allowed0, u32 allowed1, const char *what)
{
	u32 v = (want | allowed0) & allowed1;

	if ((v & want) != want)
		panic("%s control bits 0x%x are not supported by this CPU", what, want & ~v);
	return v;
}

/* Shared by every CPU's VMCS01: built by the BSP before any AP sets up its VMCS. */
void vmcs01_global_init(void)
{
	msr_bitmap = page_alloc(1);
	msr_policy_bitmap(msr_bitmap);
	msr_intercepts = (struct sparse_bitmap){ .bits = (const u64 *)(uintptr_t)msr_bitmap,
						 .nwords = PAGE_SIZE_4K / 8 };
	sparse_bitmap_index(&msr_intercepts);
}

static void setup_controls(void)
{
	u32 pin = adjust(PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, vmx_caps.pin0, vmx_caps.pin1, "pin-based");
	u32 proc = adjust(PROC_USE_MSR_BITMAPS | PROC_USE_IO_BITMAPS | PROC_SECONDARY_CONTROLS, vmx_caps.proc0,
			  vmx_caps.proc1, "processor-based");
	u32 want2 = PROC2_EPT | PROC2_UNRESTRICTED_GUEST;
	/* Features the guest OS may use natively; without these controls their instructions #UD. */
	want2 |= vmx_caps.proc2_1 & (PROC2_RDTSCP | PROC2_INVPCID | PROC2_XSAVES | PROC2_VPID);
	u32 proc2 = adjust(want2, vmx_caps.proc2_0, vmx_caps.proc2_1, "secondary");
	u32 exit = adjust(EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT |
				  EXIT_SAVE_DEBUG_CONTROLS,
			  vmx_caps.exit0, vmx_caps.exit1, "VM-exit");
	u32 entry = adjust(ENTRY_LOAD_EFER | ENTRY_LOAD_PAT | ENTRY_LOAD_DEBUG_CONTROLS, vmx_caps.entry0,
			   vmx_caps.entry1, "VM-entry");

	/* I/O bitmaps (io.c): only watched and hypapp ports exit. */
	proc &= ~(PROC_UNCOND_IO_EXITING | PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING | PROC_INVLPG_EXITING |
		  PROC_RDTSC_EXITING) | vmx_caps.proc0;
	vmcs_write(VMCS_PIN_BASED_CONTROLS, pin);
	vmcs_write(VMCS_PROC_BASED_CONTROLS, proc);
	vmcs_write(VMCS_PROC_BASED_CONTROLS2, proc2);
	vmcs_write(VMCS_EXIT_CONTROLS, exit);
	vmcs_write(VMCS_ENTRY_CONTROLS, entry);
	vmcs_write(VMCS_EXCEPTION_BITMAP, 0);
	vmcs_write(VMCS_PAGE_FAULT_ERROR_MASK, 0);
	vmcs_write(VMCS_PAGE_FAULT_ERROR_MATCH, 0);
	vmcs_write(VMCS_CR3_TARGET_COUNT, 0);
	vmcs_write(VMCS_MSR_BITMAP, (u64)(uintptr_t)msr_bitmap);
	vmcs_write(VMCS_IO_BITMAP_A, io_bitmap_a());
	vmcs_write(VMCS_IO_BITMAP_B, io_bitmap_b());
	vmcs_write(VMCS_EPT_POINTER, ept01_eptp());
	if (proc2 & PROC2_VPID)
		vmcs_write(VMCS_VPID, 1); /* 0 is the host's */
	vmcs_write(VMCS_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VMCS_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(VMCS_ENTRY_INTR_INFO, 0);
	vmcs_write(VMCS_VMCS_LINK_POINTER, ~0ULL);
	/* CR0.NE and CR4.VMXE are forced to 1 in VMX operation: the guest sees its own values in the read
	 * shadows. Bits outside FIXED1 are reserved. SMXE is masked because SMX is hidden. */
	vmcs_write(VMCS_CR0_GUEST_HOST_MASK, (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG)) | ~vmx_caps.cr0_fixed1);
	vmcs_write(VMCS_CR4_GUEST_HOST_MASK, vmx_caps.cr4_fixed0 | ~vmx_caps.cr4_fixed1 | (1UL << 14));
}

const struct sparse_bitmap *vmcs01_msr_intercepts(void)
{
	return &msr_intercepts;
}

void vmcs01_host_state(struct vcpu *v)
{
	extern char vmx_exit_stub[];
	struct cpu *c = v->cpu;
	u64 *stack_slot = (u64 *)(uintptr_t)(c->stack_top - 16);

	vmcs_write(VMCS_HOST_CR0, read_cr0());
	vmcs_write(VMCS_HOST_CR3, read_cr3());
	vmcs_write(VMCS_HOST_CR4, read_cr4());
	vmcs_write(VMCS_HOST_CS_SELECTOR, GDT_SEL_CODE64);
	vmcs_write(VMCS_HOST_SS_SELECTOR, GDT_SEL_DATA);
	vmcs_write(VMCS_HOST_DS_SELECTOR, GDT_SEL_DATA);
	vmcs_write(VMCS_HOST_ES_SELECTOR, GDT_SEL_DATA);
	vmcs_write(VMCS_HOST_FS_SELECTOR, 0);
	vmcs_write(VMCS_HOST_GS_SELECTOR, 0);
	vmcs_write(VMCS_HOST_TR_SELECTOR, GDT_SEL_TSS);
	vmcs_write(VMCS_HOST_FS_BASE, 0);
	vmcs_write(VMCS_HOST_GS_BASE, (u64)(uintptr_t)c);
	vmcs_write(VMCS_HOST_TR_BASE, (u64)(uintptr_t)&c->tss);
	vmcs_write(VMCS_HOST_GDTR_BASE, (u64)(uintptr_t)c->gdt);
	{
		struct desc_ptr idtr;
		__asm__ volatile("sidt %0" : "=m"(idtr));
		vmcs_write(VMCS_HOST_IDTR_BASE, idtr.base);
	}
	vmcs_write(VMCS_HOST_IA32_SYSENTER_CS, 0);
	vmcs_write(VMCS_HOST_IA32_SYSENTER_ESP, 0);
	vmcs_write(VMCS_HOST_IA32_SYSENTER_EIP, 0);
	vmcs_write(VMCS_HOST_IA32_EFER, rdmsr(MSR_IA32_EFER));
	vmcs_write(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	/* The exit stub finds its vcpu at the host RSP; the stack below it serves the C handlers. */
	*stack_slot = (u64)(uintptr_t)v;
	vmcs_write(VMCS_HOST_RSP, (u64)(uintptr_t)stack_slot);
	vmcs_write(VMCS_HOST_RIP, (u64)(uintptr_t)vmx_exit_stub);
}

/* Real-address mode at cs:rip with the other registers as after INIT (SDM Vol. 3, Table 10-1). */
void guest_state_real_mode(u16 cs_sel, u64 cs_base, u64 rip)
{
	u64 cr0 = CR0_ET | CR0_NE; /* NE is fixed to 1 in VMX operation; the shadow below shows 0 */

	vmcs_write(VMCS_GUEST_CR0, (cr0 | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1);
	guest_cr0_sync_cache_bits(cr0);
	vmcs_write(VMCS_CR0_READ_SHADOW, CR0_ET);
	vmcs_write(VMCS_GUEST_CR3, 0);
	vmcs_write(VMCS_GUEST_CR4, vmx_caps.cr4_fixed0 & vmx_caps.cr4_fixed1);
	vmcs_write(VMCS_CR4_READ_SHADOW, 0);
	guest_set_segment(VMCS_GUEST_CS_SELECTOR, cs_sel, cs_base, 0xffff, 0x9b);
	guest_set_segment(VMCS_GUEST_SS_SELECTOR, 0, 0, 0xffff, 0x93);
	guest_set_segment(VMCS_GUEST_DS_SELECTOR, 0, 0, 0xffff, 0x93);
	guest_set_segment(VMCS_GUEST_ES_SELECTOR, 0, 0, 0xffff, 0x93);
	guest_set_segment(VMCS_GUEST_FS_SELECTOR, 0, 0, 0xffff, 0x93);
	guest_set_segment(VMCS_GUEST_GS_SELECTOR, 0, 0, 0xffff, 0x93);
	guest_set_segment(VMCS_GUEST_LDTR_SELECTOR, 0, 0, 0xffff, 0x82);
	guest_set_segment(VMCS_GUEST_TR_SELECTOR, 0, 0, 0xffff, 0x8b);
	vmcs_write(VMCS_GUEST_GDTR_BASE, 0);
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, 0xffff);
	vmcs_write(VMCS_GUEST_IDTR_BASE, 0);
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, 0x3ff);
	vmcs_write(VMCS_GUEST_RIP, rip);
	vmcs_write(VMCS_GUEST_RSP, 0);
	vmcs_write(VMCS_GUEST_RFLAGS, 0x2);
	vmcs_write(VMCS_GUEST_DR7, 0x400);
	vmcs_write(VMCS_GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(VMCS_GUEST_IA32_EFER, 0);
	vmcs_write(VMCS_GUEST_IA32_PAT, 0x0007040600070406ULL);
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_CS, 0);
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_ESP, 0);
	vmcs_write(VMCS_GUEST_IA32_SYSENTER_EIP, 0);
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_write(VMCS_GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
	vmcs_write(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	vmcs_clear_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);
}

/* The state INIT leaves (SDM Vol. 3, Table 10-1): GPRs zero but EDX, real mode at cs:rip, caches
 * disabled (CR0 = 60000010h). */
static void state_after_init(struct vcpu *v, u16 cs_sel, u64 cs_base, u64 rip)
{
	for (int i = 0; i < 16; i++)
		v->regs.gpr[i] = 0;
	v->regs.gpr[REG_RDX] = 0x600; /* family/model/stepping placeholder as after reset */
	guest_state_real_mode(cs_sel, cs_base, rip);
	vmcs_write(VMCS_GUEST_CR0, vmcs_read(VMCS_GUEST_CR0) | CR0_CD | CR0_NW);
	vmcs_write(VMCS_CR0_READ_SHADOW, CR0_CD | CR0_NW | CR0_ET);
	guest_cr0_sync_cache_bits(CR0_CD | CR0_NW);
}

/* After INIT: an AP waits for SIPI; the BSP restarts at the reset vector (SDM Vol. 3, 9.4.1, 10.1). */
void guest_state_after_init(struct vcpu *v, bool bsp)
{
	if (bsp) {
		state_after_init(v, 0xf000, 0xffff0000, 0xfff0);
	} else {
		state_after_init(v, 0, 0, 0);
		vmcs_write(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_WAIT_SIPI);
	}
}

/* An AP started by SIPI: the post-INIT state, running in real mode at vector * 4096 (SDM 9.4.4). */
void guest_state_sipi(struct vcpu *v, u32 vector)
{
	state_after_init(v, (u16)(vector << 8), (u64)vector << 12, 0);
}

void vmcs01_setup(struct vcpu *v, bool bsp)
{
	u32 *vmcs = page_alloc(1);

	BUG_ON(!msr_bitmap);
	vmcs[0] = (u32)vmx_caps.basic & 0x7fffffff;
	v->vmcs_pa = (u64)(uintptr_t)vmcs;
	if (vmclear(v->vmcs_pa) || vmptrld(v->vmcs_pa))
		panic("VMCLEAR/VMPTRLD of VMCS01 failed");
	setup_controls();
	vmcs01_host_state(v);
	if (bsp && boot_info->uefi_fw_pa) {
		uefi_guest_state(v); /* the firmware, where the EFI loader left it (runtime/uefi) */
	} else if (bsp) {
		/* The guest starts like a BIOS boot: the boot sector at 0:7C00, DL = boot drive. */
		guest_state_real_mode(0, 0, 0x7c00);
		vmcs_write(VMCS_GUEST_RSP, 0x7c00);
		vmcs_write(VMCS_GUEST_RFLAGS, 0x2);
		v->regs.gpr[REG_RDX] = boot_info->cmdline.boot_drive;
	} else {
		guest_state_after_init(v, false);
	}
}
