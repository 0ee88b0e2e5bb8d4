/* UEFI boot in the runtime (boot-info uefi_fw_pa != 0): the guest is the firmware itself, in 64-bit mode
 * at the point where the EFI loader called the runtime, with the firmware's control registers, GDT, IDT,
 * segments and stack (struct uefi_fw_state). The BSP's VMCS01 starts there (uefi_guest_state); the APs
 * wait for the firmware's INIT-SIPI-SIPI as on BIOS machines. dryrun=1 stops short of VMX: every CPU up,
 * the firmware's state checked and shown, the APs put back into wait-for-SIPI with INIT, and the CPU
 * handed back to the loader (return.S). */
#include <xmhf/runtime.h>
#include <xmhf/percpu.h>
#include <xmhf/uefi.h>
#include <xmhf/vcpu.h>
#include <lib/segdesc.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <x86/msr.h>

NORETURN void uefi_return_to_firmware(const struct uefi_fw_state *st);

struct fw_segments {
	struct vmx_segment cs, ss, ds, es, fs, gs, tr, ldtr;
};

static struct fw_segments segs;

static struct uefi_fw_state *fw_state(void)
{
	return (struct uefi_fw_state *)(uintptr_t)boot_info->uefi_fw_pa;
}

static NORETURN void bad_firmware_state(const char *what, const char *why)
{
	printf("XMHF: FATAL: the UEFI firmware's state cannot be a VMX guest: %s: %s\n", what, why);
	xmhf_stop("bad UEFI firmware state");
}

static void one_segment(const struct uefi_fw_state *st, const char *name, u16 sel, enum seg_kind kind,
			struct vmx_segment *out)
{
	const char *err;

	if (seg_from_gdt((const u8 *)(uintptr_t)st->gdtr.base, st->gdtr.limit, sel, kind, out, &err))
		bad_firmware_state(name, err);
}

/* Checks the state the loader recorded against what a 64-bit VM entry needs (SDM 27.3.1.1 control
 * registers, 27.3.1.2 segments) and decodes the segments once; prints it. Runs on the BSP. */
void uefi_check_firmware_state(void)
{
	const struct uefi_fw_state *st = fw_state();

	if (st->magic != UEFI_FW_STATE_MAGIC)
		bad_firmware_state("the loader's record", "bad magic");
	if (!(st->cr0 & CR0_PG) || !(st->cr0 & CR0_PE) || !(st->cr4 & CR4_PAE) || !(st->efer & EFER_LMA))
		bad_firmware_state("control registers", "not in 64-bit mode with paging");
	one_segment(st, "CS", st->cs, SEG_CODE, &segs.cs);
	one_segment(st, "SS", st->ss, SEG_DATA, &segs.ss);
	one_segment(st, "DS", st->ds, SEG_DATA, &segs.ds);
	one_segment(st, "ES", st->es, SEG_DATA, &segs.es);
	one_segment(st, "FS", st->fs, SEG_DATA, &segs.fs);
	one_segment(st, "GS", st->gs, SEG_DATA, &segs.gs);
	one_segment(st, "TR", st->tr, SEG_TR, &segs.tr);
	one_segment(st, "LDTR", st->ldtr, SEG_LDTR, &segs.ldtr);
	segs.fs.base = st->fs_base; /* in 64-bit mode the MSRs hold the bases */
	segs.gs.base = st->gs_base;
	printf("XMHF: UEFI guest state: 64-bit at RIP 0x%llx RSP 0x%llx; CR0 0x%llx CR3 0x%llx CR4 0x%llx "
	       "EFER 0x%llx\n",
	       (unsigned long long)st->resume_rip, (unsigned long long)st->rsp, (unsigned long long)st->cr0,
	       (unsigned long long)st->cr3, (unsigned long long)st->cr4, (unsigned long long)st->efer);
	printf("XMHF: UEFI guest segments: CS 0x%x/0x%x SS 0x%x/0x%x DS 0x%x/0x%x TR 0x%x/0x%x%s LDTR 0x%x/0x%x; "
	       "GDT 0x%llx+0x%x IDT 0x%llx+0x%x\n",
	       segs.cs.sel, segs.cs.ar, segs.ss.sel, segs.ss.ar, segs.ds.sel, segs.ds.ar, segs.tr.sel, segs.tr.ar,
	       st->tr ? "" : " (none loaded: a stand-in TSS)", segs.ldtr.sel, segs.ldtr.ar,
	       (unsigned long long)st->gdtr.base, st->gdtr.limit, (unsigned long long)st->idtr.base, st->idtr.limit);
}

/* The BSP's guest state in VMCS01: the firmware where the loader called the runtime (SDM 25.4). The
 * loader's uefi_resume reloads RSP, RFLAGS and the callee-saved registers itself, so only the control
 * and segment state matters here. The rest (DR7, DEBUGCTL, SYSENTER, interruptibility, activity) is
 * as after reset: guest_state_real_mode() writes it first. */
void uefi_guest_state(struct vcpu *v)
{
	struct uefi_fw_state *st = fw_state();

	for (int i = 0; i < 16; i++)
		v->regs.gpr[i] = 0;
	guest_state_real_mode(0, 0, 0);
	vmcs_write(VMCS_CR0_READ_SHADOW, st->cr0);
	vmcs_write(VMCS_GUEST_CR0, (st->cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1);
	guest_cr0_sync_cache_bits(st->cr0);
	vmcs_write(VMCS_GUEST_CR3, st->cr3);
	vmcs_write(VMCS_CR4_READ_SHADOW, st->cr4);
	vmcs_write(VMCS_GUEST_CR4, (st->cr4 | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1);
	guest_set_segment(VMCS_GUEST_CS_SELECTOR, segs.cs.sel, segs.cs.base, segs.cs.limit, segs.cs.ar);
	guest_set_segment(VMCS_GUEST_SS_SELECTOR, segs.ss.sel, segs.ss.base, segs.ss.limit, segs.ss.ar);
	guest_set_segment(VMCS_GUEST_DS_SELECTOR, segs.ds.sel, segs.ds.base, segs.ds.limit, segs.ds.ar);
	guest_set_segment(VMCS_GUEST_ES_SELECTOR, segs.es.sel, segs.es.base, segs.es.limit, segs.es.ar);
	guest_set_segment(VMCS_GUEST_FS_SELECTOR, segs.fs.sel, segs.fs.base, segs.fs.limit, segs.fs.ar);
	guest_set_segment(VMCS_GUEST_GS_SELECTOR, segs.gs.sel, segs.gs.base, segs.gs.limit, segs.gs.ar);
	guest_set_segment(VMCS_GUEST_LDTR_SELECTOR, segs.ldtr.sel, segs.ldtr.base, segs.ldtr.limit, segs.ldtr.ar);
	guest_set_segment(VMCS_GUEST_TR_SELECTOR, segs.tr.sel, segs.tr.base, segs.tr.limit, segs.tr.ar);
	vmcs_write(VMCS_GUEST_GDTR_BASE, st->gdtr.base);
	vmcs_write(VMCS_GUEST_GDTR_LIMIT, st->gdtr.limit);
	vmcs_write(VMCS_GUEST_IDTR_BASE, st->idtr.base);
	vmcs_write(VMCS_GUEST_IDTR_LIMIT, st->idtr.limit);
	vmcs_write(VMCS_GUEST_RIP, st->resume_rip);
	vmcs_write(VMCS_GUEST_RSP, st->rsp);
	vmcs_write(VMCS_GUEST_RFLAGS, 0x2); /* interrupts off until uefi_resume's POPF */
	vmcs_write(VMCS_GUEST_IA32_EFER, st->efer);
	vmcs_write(VMCS_GUEST_IA32_PAT, st->pat);
	vmcs_set_bits(VMCS_ENTRY_CONTROLS, ENTRY_IA32E_MODE_GUEST);
	st->outcome = UEFI_OUTCOME_LAUNCHED;
}

/* dryrun=1: everything but VMX, then back to the firmware. */
NORETURN void uefi_dryrun(void)
{
	struct uefi_fw_state *st = fw_state();

	/* INIT puts each AP back where the firmware's MP services expect to find it: waiting for SIPI
	 * (its HLT-loop mode wakes APs with INIT-SIPI-SIPI; SDM Vol. 3, 9.4.4). */
	for (u32 i = 1; i < ncpus; i++)
		lapic_send_ipi(cpu_table[i]->apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
	printf("XMHF: dry run: no VMX; %u AP%s back in wait-for-SIPI; returning to the firmware at 0x%llx\n",
	       ncpus - 1, ncpus == 2 ? "" : "s", (unsigned long long)st->resume_dryrun_rip);
	st->outcome = UEFI_OUTCOME_DRYRUN;
	console_flush();
	uefi_return_to_firmware(st);
}
