/* The guest's local APIC writes. x2APIC: WRMSR to the ICR (MSR 830h) exits. xAPIC: the APIC page is
 * read-only in EPT01, so every write to it exits with an EPT violation; the guest's instruction is
 * emulated (lib/mmio-store.c: every MOV, XCHG, STOS, read-modify-write ALU and MOVNTI form) and its
 * store either emulated (ICR INIT/SIPI: ipi.c) or performed on the real APIC. Reads go to the real
 * APIC without exits.
 *
 * With apic=init-exit (docs/decisions.md) this lasts only until every guest AP has taken its first
 * SIPI: then the page becomes writable ("delinked") and the guest's INIT/SIPI reach the CPUs, where
 * an INIT is an INIT VM exit and a SIPI to a CPU in the wait-for-SIPI activity state a SIPI VM exit
 * (SDM Vol. 3, 26.2; sipi.c): no INIT resets a CPU in VMX operation, and EOIs and timer writes no
 * longer exit. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/apic-dest.h>
#include <lib/cmdline.h>
#include <lib/mmio-store.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <x86/msr.h>

static u64 apic_page;      /* guest-physical = host-physical address of the xAPIC page */
static u64 apic_rights;    /* its EPT01 rights before the trap */
static u32 policy;         /* APIC_TRAP or APIC_INIT_EXIT */
static volatile u32 delinked;  /* the page is writable: INIT/SIPI exits catch the guest's INIT/SIPI */
static volatile u32 aps_started; /* guest APs that have taken their first SIPI */

/* apic=auto: INIT exits where the CPU is known to take them architecturally (the INIT consumed by
 * its exit, SDM 26.2): a real CPU (no hypervisor bit), or this hypervisor or KVM as L0, which emulate
 * INIT and SIPI exits for their L1. Another hypervisor underneath keeps the trap. Bochs 2.7 looks
 * like a real CPU but keeps the INIT pending after its exit: its runs choose apic=trap where the
 * guest sends INIT after boot (docs/known-bugs.md). */
static u32 resolve_policy(u32 asked)
{
	struct cpuid_regs r;
	char sig[12];

	if (asked != APIC_AUTO)
		return asked;
	if (!(cpuid(1, 0).ecx & (1U << 31)))
		return APIC_INIT_EXIT;
	r = cpuid(0x40000000, 0);
	memcpy(sig, &r.ebx, 4);
	memcpy(sig + 4, &r.ecx, 4);
	memcpy(sig + 8, &r.edx, 4);
	if (!memcmp(sig, "XMHFXMHFXMHF", 12) || !memcmp(sig, "KVMKVMKVM\0\0\0", 12))
		return APIC_INIT_EXIT;
	return APIC_TRAP;
}

/* The page writable again: the stale read-only translations of other CPUs go at their next entry
 * (the EPT01 generation), and an EPT02 built on the old rights is rebuilt. */
static void delink(void)
{
	if (__atomic_exchange_n(&delinked, 1, __ATOMIC_SEQ_CST))
		return;
	ept01_set_page_rights(apic_page, apic_rights);
	printf("XMHF: the guest's APs are up: xAPIC writes no longer trapped, INIT/SIPI taken as VM exits\n");
}

void lapic_trap_init(void)
{
	policy = resolve_policy(boot_info->cmdline.apic);
	apic_page = rdmsr(MSR_IA32_APIC_BASE) & 0xffffff000ULL;
	printf("XMHF: guest INIT/SIPI: %s\n", policy == APIC_TRAP ? "trapped and emulated (apic=trap)" :
				"trapped until the APs are up, then INIT/SIPI VM exits (apic=init-exit)");
	if (policy == APIC_INIT_EXIT && ncpus == 1) {
		delinked = 1; /* no AP to start: nothing to trap */
		return;
	}
	apic_rights = ept01_page_rights(apic_page);
	ept01_set_page_rights(apic_page, EPT_READ);
}

bool lapic_trap_delinked(void)
{
	return __atomic_load_n(&delinked, __ATOMIC_ACQUIRE) != 0;
}

/* An AP left its first wait for a SIPI (ipi.c): once every AP has, apic=init-exit stops trapping. */
void lapic_trap_ap_started(struct vcpu *v)
{
	if (v->guest_started)
		return;
	v->guest_started = 1;
	if (__atomic_add_fetch(&aps_started, 1, __ATOMIC_SEQ_CST) == ncpus - 1 && policy == APIC_INIT_EXIT)
		delink();
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
	/* Delinked: a read-only translation from before, flushed before the store is retried. A page
	 * never trapped (one CPU) beyond EPT01's boot map is not present yet: not the trap's, EPT01's
	 * on-demand mapping takes it (ept-violation.c). */
	if (lapic_trap_delinked())
		return ept01_page_rights(apic_page) != 0;
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
	if ((delivery == 5 || delivery == 6) && !lapic_trap_delinked()) {
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
