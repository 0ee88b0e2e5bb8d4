/* x86 instructions as small inline functions: CPUID, MSRs, control registers, TSC, interrupts.
 * Work in 32-bit (init) and 64-bit (runtime) code. */
#ifndef X86_CPU_H
#define X86_CPU_H
#include <xmhf/types.h>

#define CR0_PE (1UL << 0)
#define CR0_MP (1UL << 1)
#define CR0_ET (1UL << 4)
#define CR0_TS (1UL << 3)
#define CR0_NE (1UL << 5)
#define CR0_WP (1UL << 16)
#define CR0_NW (1UL << 29)
#define CR0_CD (1UL << 30)
#define CR0_PG (1UL << 31)

#define CR4_PAE (1UL << 5)
#define CR4_PGE (1UL << 7)
#define CR4_OSFXSR (1UL << 9)
#define CR4_VMXE (1UL << 13)
#define CR4_SMAP (1UL << 21)

#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

#define RFLAGS_CF (1ULL << 0)
#define RFLAGS_PF (1ULL << 2)
#define RFLAGS_AF (1ULL << 4)
#define RFLAGS_ZF (1ULL << 6)
#define RFLAGS_SF (1ULL << 7)
#define RFLAGS_IF (1UL << 9)
#define RFLAGS_DF (1UL << 10)
#define RFLAGS_OF (1ULL << 11)
#define RFLAGS_VM (1ULL << 17)
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

struct cpuid_regs {
	u32 eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(u32 leaf, u32 subleaf)
{
	struct cpuid_regs r;
	__asm__ volatile("cpuid"
			 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
			 : "a"(leaf), "c"(subleaf));
	return r;
}

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline unsigned long read_cr0(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}
static inline void write_cr0(unsigned long v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline unsigned long read_cr2(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline unsigned long read_cr3(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline void write_cr3(unsigned long v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline unsigned long read_cr4(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}
static inline void write_cr4(unsigned long v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cpu_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* Stops this CPU for good: interrupts off, HLT forever (an NMI or SMI only re-enters the loop). */
static inline NORETURN void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

/* CPUID feature bits used by the boot path. */
#define CPUID1_ECX_VMX (1U << 5)
#define CPUID1_ECX_SMX (1U << 6)
#define CPUID1_ECX_X2APIC (1U << 21)
#define CPUID1_ECX_HYPERVISOR (1U << 31)
#define CPUID1_EDX_APIC (1U << 9)
#define CPUID1_EDX_MSR (1U << 5)
#define CPUID1_EDX_PAE (1U << 6)
#define CPUIDX1_EDX_PDPE1GB (1U << 26)
#define CPUIDX1_EDX_LM (1U << 29)

#endif
