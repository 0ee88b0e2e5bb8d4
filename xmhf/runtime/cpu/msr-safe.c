/* RDMSR/WRMSR that survive a #GP: the faulting instruction is listed in .extable with the address to
 * resume at, and the exception handler (idt.c) jumps there instead of stopping. Entries hold offsets
 * relative to themselves, so the position-independent runtime needs no relocation for them. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>

int rdmsr_safe(u32 msr, u64 *value)
{
	u32 lo = 0, hi = 0, fault = 1;

	__asm__ volatile("1: rdmsr\n\t"
			 "xorl %2, %2\n"
			 "2:\n\t"
			 ".pushsection .extable, \"a\"\n\t"
			 ".balign 4\n\t"
			 ".long 1b - ., 2b - .\n\t"
			 ".popsection"
			 : "=a"(lo), "=d"(hi), "+r"(fault)
			 : "c"(msr));
	*value = ((u64)hi << 32) | lo;
	return fault ? 13 : 0;
}

int wrmsr_safe(u32 msr, u64 value)
{
	u32 fault = 1;

	__asm__ volatile("1: wrmsr\n\t"
			 "xorl %0, %0\n"
			 "2:\n\t"
			 ".pushsection .extable, \"a\"\n\t"
			 ".balign 4\n\t"
			 ".long 1b - ., 2b - .\n\t"
			 ".popsection"
			 : "+r"(fault)
			 : "c"(msr), "a"((u32)value), "d"((u32)(value >> 32))
			 : "memory");
	return fault ? 13 : 0;
}
