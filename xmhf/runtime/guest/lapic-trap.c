/* The guest's local APIC writes. x2APIC: WRMSR to the ICR (MSR 830h) exits. xAPIC: the APIC page is
 * read-only in EPT01, so every write to it exits with an EPT violation; the store is decoded from the
 * guest's instruction (lib/insn.c) and either emulated (ICR INIT/SIPI: ipi.c) or performed on the real
 * APIC. Reads go to the real APIC without exits. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/insn.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <x86/msr.h>

static u64 apic_page; /* guest-physical = host-physical address of the xAPIC page */

void lapic_trap_init(void)
{
	apic_page = rdmsr(MSR_IA32_APIC_BASE) & 0xffffff000ULL;
	ept01_set_page_rights(apic_page, EPT_READ);
}

static void apic_write(u32 offset, u32 value)
{
	*(volatile u32 *)(uintptr_t)(apic_page + offset) = value;
}

static u32 apic_read(u32 offset)
{
	return *(volatile u32 *)(uintptr_t)(apic_page + offset);
}

bool lapic_trap_handle_ept(struct vcpu *v, u64 gpa)
{
	u8 bytes[15];
	struct insn_store insn;
	u32 offset = (u32)(gpa & 0xfff), n;
	u64 value;

	if ((gpa & ~0xfffULL) != apic_page)
		return false;
	n = guest_fetch_instruction(bytes);
	if (insn_decode_store(bytes, n, guest_code_bits(), &insn) || !insn.mem || insn.size != 4 || (offset & 3))
		panic("unsupported guest write to the local APIC at offset 0x%x (instruction %02x %02x %02x %02x, "
		      "%u bytes readable)",
		      offset, bytes[0], bytes[1], bytes[2], bytes[3], n);
	if (insn.kind == INSN_MOV_STORE_IMM)
		value = insn.imm;
	else
		value = insn.reg == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[insn.reg];
	value = (u32)value;
	if (insn.kind == INSN_XCHG_REG) {
		u32 old = apic_read(offset);
		/* A 32-bit register write zero-extends in 64-bit mode. */
		if (insn.reg == REG_RSP)
			vmcs_write(VMCS_GUEST_RSP, old);
		else
			v->regs.gpr[insn.reg] = old;
	}
	if (offset == LAPIC_ICR_LO &&
	    (((value >> 8) & 7) == 5 || ((value >> 8) & 7) == 6))
		ipi_emulate(v, apic_read(LAPIC_ICR_HI) >> 24, (u32)value, false);
	else
		apic_write(offset, (u32)value);
	guest_advance_rip(insn.length);
	return true;
}

bool lapic_trap_handle_wrmsr(struct vcpu *v, u32 msr, u64 value)
{
	u32 delivery = (value >> 8) & 7;

	if (msr != MSR_X2APIC_BASE + (LAPIC_ICR_LO >> 4))
		return false;
	if (!(rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EXTD)) {
		guest_inject_gp(); /* x2APIC MSRs fault in xAPIC mode */
		return true;
	}
	if (delivery == 5 || delivery == 6) {
		ipi_emulate(v, (u32)(value >> 32), (u32)value, true);
		guest_skip_instruction();
		return true;
	}
	if (wrmsr_safe(msr, value))
		guest_inject_gp();
	else
		guest_skip_instruction();
	return true;
}
