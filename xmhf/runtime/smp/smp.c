/* Waking the application processors: INIT-SIPI-SIPI to each AP in turn (SDM Vol. 3, 9.4.4.1), each
 * reaching 64-bit runtime code through the trampoline below 1 MiB. One AP at a time keeps the order of
 * the "online" lines fixed and lets one parameter block serve all. */
#include <xmhf/runtime.h>
#include <xmhf/percpu.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/lapic.h>
#include <xmhf/vcpu.h>

extern const u8 tramp_start[], tramp_end[], tramp_params[];
void ap_entry64(void);

struct tramp_params {
	u16 gdt_limit;
	u32 gdt_base;
	u16 pad0;
	u32 far32_offset;
	u16 far32_sel;
	u16 pad1;
	u32 far64_offset;
	u16 far64_sel;
	u16 pad2;
	u32 cr3;
	u32 efer;          /* EFER bits beside LME (pagetables_efer_bits) */
	u64 stack;
	u64 cpu;
	u64 entry;
	u32 off_gdt, off_32, off_64; /* offsets inside the page, from the assembler */
} PACKED;

_Static_assert(sizeof(struct tramp_params) == 68, "trampoline parameter block layout");

#define AP_ONLINE_TIMEOUT_MS 1000

/* Set by the BSP once the VMX set-up every CPU shares (capabilities, EPT01) is done. */
volatile u32 smp_go;

NORETURN void ap_main(struct cpu *c)
{
	percpu_load(c);
	if (lapic_read_id() != c->apic_id)
		panic("AP started as APIC id %u but was expected to be %u", lapic_read_id(), c->apic_id);
	printf("XMHF: CPU %u (APIC id %u) online\n", c->index, c->apic_id);
	__atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&smp_go, __ATOMIC_ACQUIRE))
		cpu_relax();
	vmx_start_guest_on_this_cpu();
}

static bool wait_online(struct cpu *c, u32 ms)
{
	for (u32 i = 0; i < ms * 10; i++) {
		if (__atomic_load_n(&c->online, __ATOMIC_ACQUIRE))
			return true;
		udelay(100);
	}
	return __atomic_load_n(&c->online, __ATOMIC_ACQUIRE) != 0;
}

void smp_start_aps(void)
{
	u64 page = boot_info->ap_trampoline_pa;
	u8 *dst = (u8 *)(uintptr_t)page;
	struct tramp_params *p = (struct tramp_params *)(dst + (tramp_params - tramp_start));
	u32 vector = (u32)(page >> 12);

	if (ncpus == 1)
		return;
	BUG_ON(page == 0 || page >= 0x100000 || page % PAGE_SIZE_4K || (u64)(tramp_end - tramp_start) > PAGE_SIZE_4K);
	memcpy(dst, tramp_start, (size_t)(tramp_end - tramp_start));
	p->gdt_base = (u32)(page + p->off_gdt);
	p->far32_offset = (u32)(page + p->off_32);
	p->far64_offset = (u32)(page + p->off_64);
	p->cr3 = (u32)read_cr3();
	p->efer = pagetables_efer_bits();
	p->entry = (u64)(uintptr_t)ap_entry64;
	BUG_ON(read_cr3() >> 32);

	for (u32 i = 1; i < ncpus; i++) {
		struct cpu *c = cpu_table[i];

		p->stack = c->stack_top;
		p->cpu = (u64)(uintptr_t)c;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		lapic_send_ipi(c->apic_id, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
		udelay(10000);
		lapic_send_ipi(c->apic_id, ICR_DELIVERY_STARTUP | vector);
		if (!wait_online(c, 1)) {
			/* The second SIPI is for CPUs that missed the first; an AP already running ignores it. */
			lapic_send_ipi(c->apic_id, ICR_DELIVERY_STARTUP | vector);
			if (!wait_online(c, AP_ONLINE_TIMEOUT_MS))
				panic("CPU %u (APIC id %u) did not come online after INIT-SIPI-SIPI", i, c->apic_id);
		}
	}
	/* The page belongs to the guest again: leave no hypervisor pointers in it. */
	memset(dst, 0, PAGE_SIZE_4K);
}
