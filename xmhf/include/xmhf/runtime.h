/* Runtime-wide services: fatal stops, the page heap, platform timing and power. */
#ifndef XMHF_RUNTIME_H
#define XMHF_RUNTIME_H
#include <xmhf/types.h>
#include <xmhf/bootinfo.h>
#include <xmhf/console.h>
#include <xmhf/percpu.h>

extern const struct bootinfo *boot_info;

/* A hypervisor bug or an unrecoverable platform state: prints CPU, file, line and the message, then
 * stops this CPU. */
NORETURN void panic_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define panic(...) panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define BUG_ON(cond)                                              \
	do {                                                      \
		if (cond)                                         \
			panic("assertion failed: %s", #cond);     \
	} while (0)

/* Page heap over the free part of the hypervisor region. Pages come zeroed. Thread-safe. */
void heap_init(u64 base, u64 end);
void *page_alloc(u64 npages);
void *page_alloc_aligned(u64 npages, u64 align_bytes);
void *page_try_alloc(u64 npages); /* NULL when the heap is exhausted (for caches that can shrink) */
void page_free(void *p, u64 npages);
u64 heap_free_bytes(void);
u64 heap_total_bytes(void);
/* Table callbacks for the page-table builders of lib/ (EPT, VT-d): a zeroed heap page by its physical
 * address, and the pointer to a table at a physical address (the heap is identity-mapped). */
u64 heap_table_alloc(void *ctx);
u64 *heap_table_at(void *ctx, u64 pa);

/* Identity map of physical memory for the runtime's own page tables. */
void pagetables_init(u64 phys_top);
u32 pagetables_efer_bits(void); /* EFER bits the APs need for these tables (NXE) */
/* The runtime's second map of physical memory (pagetables.c), used for guest memory (guestmem_ptr):
 * virtual GUESTMEM_ALIAS + pa maps pa for pa < guestmem_top. */
#define GUESTMEM_ALIAS 0xffff800000000000ULL
extern u64 guestmem_top;

/* Busy-wait using the PIT (channel 2): usable before any calibration, on any CPU. */
void udelay(u32 us);

/* Platform power control. */
NORETURN void platform_poweroff(void);

/* Interrupt descriptor table shared by all CPUs. */
void idt_init(void);
void idt_load(void);

/* Application processors. */
void smp_start_aps(void);
NORETURN void ap_main(struct cpu *c);

/* Local APIC. */
void lapic_init_bsp(u64 base);
u32 lapic_read_id(void);
void lapic_send_ipi(u32 apic_id, u32 icr_low);
bool lapic_wait_idle(void);

#endif
