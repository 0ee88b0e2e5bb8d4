/* Per-CPU state of the runtime. GS base points at the CPU's struct cpu (first field: self). */
#ifndef XMHF_PERCPU_H
#define XMHF_PERCPU_H
#include <xmhf/types.h>
#include <x86/segment.h>

#define GDT_SEL_CODE64 0x08
#define GDT_SEL_DATA 0x10
#define GDT_SEL_TSS 0x18
#define GDT_ENTRIES 5 /* null, code, data, TSS (2 slots) */

/* IST slots (TSS.IST1..3) for the exceptions that must not run on a possibly broken stack. */
#define IST_NMI 1
#define IST_DF 2
#define IST_MC 3

#define STACK_BYTES (32 * 1024)
#define IST_STACK_BYTES (8 * 1024)

struct cpu {
	struct cpu *self;        /* %gs:0 */
	u32 index;               /* 0 = BSP, then in firmware table order */
	u32 apic_id;
	u64 stack_top;
	u64 ist_top[3];          /* NMI, #DF, #MC */
	volatile u32 online;     /* set by the CPU itself once it runs 64-bit runtime code */
	u32 nmi_count;
	void *vcpu;              /* struct vcpu of this CPU (VMX core) */
	u32 ept_generation;      /* EPT01 generation this CPU last flushed for */
	void *event_log;         /* build.sh --event-logger counters */
	u64 gdt[GDT_ENTRIES] __attribute__((aligned(16)));
	struct tss64 tss __attribute__((aligned(16)));
};

extern struct cpu **cpu_table; /* ncpus entries, index order */
extern u32 ncpus;

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;
	__asm__ volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* Allocates and fills the per-CPU structures of all CPUs (BSP first). */
void percpu_alloc_all(const u32 *apic_ids, u32 n, u32 bsp_apic_id);
/* Loads this CPU's GDT, TSS, the IDT and GS base. */
void percpu_load(struct cpu *c);

#endif
