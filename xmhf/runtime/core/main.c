/* The runtime's BSP path: console, heap, page tables, per-CPU state, the APs, then ready. */
#include <xmhf/runtime.h>
#include <xmhf/percpu.h>
#include <xmhf/uefi.h>
#include <xmhf/vcpu.h>
#include <lib/printf.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <xmhf/iommu.h>

const struct bootinfo *boot_info;

NORETURN void runtime_main(u64 bootinfo_pa);

static u64 phys_top_of(const struct e820_map *m)
{
	u64 top = 1ULL << 32;

	for (u32 i = 0; i < m->count; i++)
		top = MAX(top, m->e[i].base + m->e[i].length);
	return top;
}

extern volatile u32 smp_go;

/* selftest=: a fault the runtime must catch and dump (the exception path; page 0 absent, text
 * read-only, heap non-executable: pagetables.c). */
static void selftest(u32 which)
{
	u64 zero = 0;
	u8 *heap_code;

	__asm__("" : "+r"(zero)); /* a NULL the compiler cannot see, so it emits the load */
	switch (which) {
	case SELFTEST_EXCEPTION:
		printf("XMHF: selftest: executing UD2 in the hypervisor\n");
		__asm__ volatile("ud2");
		break;
	case SELFTEST_NULL:
		printf("XMHF: selftest: reading address 0\n");
		printf("XMHF: selftest: read 0x%x\n", *(volatile u8 *)(uintptr_t)zero);
		break;
	case SELFTEST_WRITE_TEXT:
		printf("XMHF: selftest: writing the hypervisor's text at %p\n", (void *)selftest);
		*(volatile u8 *)(uintptr_t)selftest = 0xc3;
		printf("XMHF: selftest: text written\n");
		break;
	case SELFTEST_EXEC_HEAP:
		heap_code = page_alloc(1);
		heap_code[0] = 0xc3; /* RET */
		printf("XMHF: selftest: calling heap page %p\n", (void *)heap_code);
		((void (*)(void))(uintptr_t)heap_code)();
		printf("XMHF: selftest: heap code ran\n");
		break;
	case SELFTEST_DMA:
		iommu_selftest_dma(false);
		break;
	}
}

static NORETURN void on_ready(void)
{
	const struct bootinfo *bi = boot_info;

	printf("XMHF: runtime ready (%u CPUs)\n", ncpus);
	printf("XMHF: boot took %llu TSC ticks from the boot loader's hand-off; heap %llu of %llu KiB free\n",
	       (unsigned long long)(rdtsc() - bi->tsc_at_entry), (unsigned long long)(heap_free_bytes() >> 10),
	       (unsigned long long)(heap_total_bytes() >> 10));
	selftest(bi->cmdline.selftest);
	if (bi->cmdline.on_ready == ON_READY_POWEROFF)
		platform_poweroff();
	if (bi->cmdline.on_ready == ON_READY_HALT) {
		printf("XMHF: on_ready=halt: not starting the guest\n");
		cpu_halt_forever();
	}
	if (bi->uefi_fw_pa) {
		uefi_check_firmware_state();
		if (bi->cmdline.dryrun)
			uefi_dryrun();
	} else if (bi->cmdline.dryrun) {
		printf("XMHF: dryrun=1 is for UEFI boot only; ignored\n");
	}
	vmx_check_and_read_caps();
	guest_cpu_errata_init();
	ept01_init();
	iommu_protect_registers();
	lapic_trap_init();
	io_intercept_init();
	vmcs01_global_init();
	__atomic_store_n(&smp_go, 1, __ATOMIC_RELEASE);
	vmx_start_guest_on_this_cpu();
}

NORETURN void runtime_main(u64 bootinfo_pa)
{
	const struct bootinfo *bi = (const struct bootinfo *)(uintptr_t)bootinfo_pa;

	boot_info = bi;
	console_init(bi->cmdline.serial_port, bi->cmdline.baud, bi->cmdline.data_bits, bi->cmdline.parity,
		     bi->cmdline.stop_bits);
	if (bi->magic != BOOTINFO_MAGIC)
		panic("bad boot-info block at 0x%llx", (unsigned long long)bootinfo_pa);
	printf("XMHF %s (amd64): runtime at 0x%llx, %llu KiB with bss\n", XMHF_VERSION,
	       (unsigned long long)bi->region_base, (unsigned long long)(bi->runtime_mem >> 10));

	heap_init(bi->free_base, bi->region_base + bi->region_size);
	pagetables_init(phys_top_of(&bi->e820_firmware));
	idt_init();
	percpu_alloc_all(bootinfo_apic_ids(bi), bi->ncpus, bi->bsp_apic_id);
	percpu_load(cpu_table[0]);
	lapic_init_bsp(bi->lapic_base);
	cpu_table[0]->online = 1;
	printf("XMHF: CPU 0 (APIC id %u) online\n", cpu_table[0]->apic_id);
	iommu_init(); /* DMA protection as early as the runtime can print and stop */

	smp_start_aps();
	on_ready();
}

NORETURN void panic_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char msg[256];
	struct cpu *c = NULL;

	/* GS is valid once percpu_load ran; before that, report CPU "?". */
	if (cpu_table && rdmsr(0xc0000101))
		c = this_cpu();
	va_start(ap, fmt);
	lib_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c)
		printf("XMHF: FATAL: CPU %u (APIC id %u): %s at %s:%d\n", c->index, c->apic_id, msg, file, line);
	else
		printf("XMHF: FATAL: CPU ?: %s at %s:%d\n", msg, file, line);
	xmhf_stop("hypervisor error");
}
