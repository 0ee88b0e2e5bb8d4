/* Per-CPU structures: each CPU has its own GDT and TSS, a main stack and separate IST stacks for NMI,
 * double fault and machine check (so those run even on a corrupt stack). The IDT is shared. */
#include <xmhf/runtime.h>
#include <xmhf/percpu.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/msr.h>

struct cpu **cpu_table;
u32 ncpus;

static u64 alloc_stack(u64 bytes)
{
	return (u64)(uintptr_t)page_alloc(bytes / PAGE_SIZE_4K) + bytes;
}

static void fill_gdt(struct cpu *c)
{
	u64 tss = (u64)(uintptr_t)&c->tss;
	u64 limit = sizeof(c->tss) - 1;

	c->gdt[0] = 0;
	c->gdt[1] = GDT_CODE64;
	c->gdt[2] = GDT_DATA64;
	/* 64-bit available TSS descriptor (type 9), 16 bytes. */
	c->gdt[3] = (limit & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
		    (((tss >> 24) & 0xff) << 56);
	c->gdt[4] = tss >> 32;
	c->tss.iomap_base = sizeof(c->tss); /* no I/O permission bitmap */
	for (int i = 0; i < 3; i++)
		c->tss.ist[i] = c->ist_top[i];
}

void percpu_alloc_all(const u32 *apic_ids, u32 n, u32 bsp_apic_id)
{
	u32 next = 1;

	cpu_table = page_alloc(ALIGN_UP((u64)n * sizeof(*cpu_table), PAGE_SIZE_4K) / PAGE_SIZE_4K);
	ncpus = n;
	for (u32 i = 0; i < n; i++) {
		struct cpu *c = page_alloc(ALIGN_UP(sizeof(struct cpu), PAGE_SIZE_4K) / PAGE_SIZE_4K);
		/* The BSP is CPU 0 wherever the firmware lists it. */
		u32 idx = apic_ids[i] == bsp_apic_id ? 0 : next++;

		BUG_ON(idx >= n);
		c->self = c;
		c->index = idx;
		c->apic_id = apic_ids[i];
		c->stack_top = alloc_stack(STACK_BYTES);
		for (int k = 0; k < 3; k++)
			c->ist_top[k] = alloc_stack(IST_STACK_BYTES);
		fill_gdt(c);
		cpu_table[idx] = c;
	}
}

void percpu_load(struct cpu *c)
{
	struct desc_ptr gdtr = { .limit = sizeof(c->gdt) - 1, .base = (unsigned long)c->gdt };

	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movl %2, %%eax\n\t"
			 "movl %%eax, %%ds\n\t"
			 "movl %%eax, %%es\n\t"
			 "movl %%eax, %%ss\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "movl %%eax, %%fs\n\t"
			 "movl %%eax, %%gs\n\t"
			 :
			 : "m"(gdtr), "i"((u64)GDT_SEL_CODE64), "i"(GDT_SEL_DATA)
			 : "rax", "memory");
	__asm__ volatile("ltr %w0" : : "r"((u16)GDT_SEL_TSS));
	wrmsr(MSR_IA32_GS_BASE, (u64)(uintptr_t)c);
	idt_load();
}
