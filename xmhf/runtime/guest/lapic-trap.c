/* The guest's local APIC writes. x2APIC: WRMSR to the ICR (MSR 830h) exits. xAPIC: the APIC page is
 * read-only in EPT01, so every write to it exits with an EPT violation; the guest's instruction is
 * emulated (lib/mmio-store.c: every MOV, XCHG, STOS, read-modify-write ALU and MOVNTI form) and its
 * store either emulated (ICR INIT/SIPI: ipi.c) or performed on the real APIC. Reads go to the real
 * APIC without exits. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/apic-dest.h>
#include <lib/mmio-store.h>
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

/* The old value of a read-modify-write or XCHG operand: the register dword holding its first byte.
 * Only the first dword of each 16-byte slot is a register (SDM Vol. 3, Table 11-1); the other bytes,
 * and any beyond the register, read as 0, so the hypervisor itself only makes defined accesses. */
static u64 read_old(void *ctx, u32 size)
{
	u32 offset = *(const u32 *)ctx;
	u64 v = 0;

	if ((offset & 0xf) < 4)
		v = apic_read(offset & ~0xfU) >> (8 * (offset & 3));
	return size >= 8 ? v : v & ((1ULL << (8 * size)) - 1);
}

/* Says once per kind of event that a guest's APIC store was refused or dropped. */
static void warn_once(u32 *done, const char *fmt, u32 a, u32 b, const u8 *bytes)
{
	if (__atomic_exchange_n(done, 1, __ATOMIC_RELAXED))
		return;
	printf("XMHF: WARNING: ");
	printf(fmt, a, b);
	printf(" (instruction %02x %02x %02x %02x %02x %02x; reported once)\n", bytes[0], bytes[1], bytes[2], bytes[3],
	       bytes[4], bytes[5]);
}

/* This CPU's LDR and DFR as the firmware left them (xAPIC mode), before the guest's writes trap. */
void lapic_trap_cpu_init(struct vcpu *v)
{
	u64 base = rdmsr(MSR_IA32_APIC_BASE);
	volatile u32 *regs = (volatile u32 *)(uintptr_t)(base & 0xffffff000ULL);

	v->apic_ldr = 0;
	v->apic_dfr = APIC_DFR_RESET;
	if (!(base & APIC_BASE_EXTD)) {
		v->apic_ldr = regs[APIC_LDR / 4];
		v->apic_dfr = regs[APIC_DFR / 4];
	}
}

bool lapic_trap_handle_ept(struct vcpu *v, u64 gpa)
{
	static u32 warned_insn, warned_size;
	u8 bytes[15];
	struct mmio_cpu cpu;
	struct mmio_store st;
	u32 offset = (u32)(gpa & 0xfff), n;

	if ((gpa & ~0xfffULL) != apic_page)
		return false;
	if (guest_store_decode(v, read_old, &offset, &cpu, &st, bytes, &n)) {
		/* A store we cannot emulate (an SSE or x87 store, a string move, CMPXCHG, or code that
		 * changed since it faulted): #GP(0), an architectural fault the guest can handle, never
		 * a stop. Nothing has been written or changed. */
		warn_once(&warned_insn, "unsupported guest store to the local APIC at offset 0x%x (%u bytes "
			  "readable): #GP(0) injected", offset, n, bytes);
		guest_inject_gp();
		return true;
	}
	if (st.write) {
		if (st.size != 4 || (offset & 0xf)) {
			/* SDM Vol. 3, 11.4.1: only 32-bit stores to 16-byte aligned registers are defined
			 * (others model-specific); bare Bochs 2.7 stops the emulator on them. Dropped, as
			 * KVM does; the instruction otherwise completes. */
			warn_once(&warned_size, "guest %u-byte store to the local APIC at offset 0x%x dropped "
				  "(only aligned 32-bit stores are defined)", st.size, offset, bytes);
		} else if (offset == LAPIC_ICR_LO &&
			   (((st.value >> 8) & 7) == 5 || ((st.value >> 8) & 7) == 6)) {
			ipi_emulate(v, apic_read(LAPIC_ICR_HI) >> 24, (u32)st.value, false);
		} else {
			apic_write(offset, (u32)st.value);
			if (offset == APIC_LDR)
				v->apic_ldr = (u32)st.value;
			else if (offset == APIC_DFR)
				v->apic_dfr = (u32)st.value;
		}
	}
	guest_store_commit(v, &cpu, &st);
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
