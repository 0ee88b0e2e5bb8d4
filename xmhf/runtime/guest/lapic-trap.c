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

static bool read_phys(void *ctx, u64 gpa, u64 *value)
{
	const u64 *p = guestmem_ptr(gpa, 8);

	(void)ctx;
	if (!p)
		return false;
	memcpy(value, p, 8);
	return true;
}

static enum guest_paging paging_mode(void)
{
	u64 cr0 = vmcs_read(VMCS_GUEST_CR0), cr4 = vmcs_read(VMCS_GUEST_CR4);

	if (!(cr0 & CR0_PG))
		return GUEST_PAGING_NONE;
	if (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA)
		return GUEST_PAGING_4LEVEL;
	return (cr4 & CR4_PAE) ? GUEST_PAGING_PAE : GUEST_PAGING_32;
}

/* Copies up to 15 instruction bytes at the guest's CS:RIP; returns how many could be read. */
static u32 fetch_instruction(u8 *buf)
{
	u64 pdpte[4];
	u64 linear = vmcs_read(VMCS_GUEST_CS_BASE) + vmcs_read(VMCS_GUEST_RIP);
	enum guest_paging mode = paging_mode();
	u32 n = 0;

	for (int i = 0; i < 4; i++)
		pdpte[i] = vmcs_read(VMCS_GUEST_PDPTE0 + 2 * i);
	if (!(vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS) & (1 << 13)))
		linear &= 0xffffffffULL; /* outside 64-bit mode linear addresses are 32 bits */
	while (n < 15) {
		u64 gpa;
		if (guest_linear_to_phys(mode, vmcs_read(VMCS_GUEST_CR3), pdpte, (vmcs_read(VMCS_GUEST_CR4) >> 4) & 1,
					 linear + n, read_phys, NULL, &gpa))
			break;
		u32 chunk = (u32)MIN(15 - n, PAGE_SIZE_4K - (gpa & 0xfff));
		const u8 *p = guestmem_ptr(gpa, chunk);
		if (!p)
			break;
		memcpy(buf + n, p, chunk);
		n += chunk;
	}
	return n;
}

static u32 cs_bits(void)
{
	u64 ar = vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS);

	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		return 16;
	if ((ar & (1 << 13)) && (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA))
		return 64;
	return (ar & (1 << 14)) ? 32 : 16;
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
	n = fetch_instruction(bytes);
	if (insn_decode_store(bytes, n, cs_bits(), &insn) || !insn.mem || insn.size != 4 || (offset & 3))
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
