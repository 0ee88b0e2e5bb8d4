/* XSETBV exits unconditionally (SDM Vol. 3, 26.1.2). Checked as the SDM's XSETBV description says:
 * #UD without CR4.OSXSAVE, #GP(0) for CPL > 0, ECX != 0, or an invalid XCR0 value; then executed. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

#define XCR0_X87 (1ULL << 0)
#define XCR0_SSE (1ULL << 1)
#define XCR0_AVX (1ULL << 2)
#define XCR0_BNDREG (1ULL << 3)
#define XCR0_BNDCSR (1ULL << 4)
#define XCR0_AVX512 (7ULL << 5)

void handle_xsetbv(struct vcpu *v)
{
	u64 val = (v->regs.gpr[REG_RDX] << 32) | (u32)v->regs.gpr[REG_RAX];
	struct cpuid_regs d = cpuid(0xd, 0);
	u64 supported = ((u64)d.edx << 32) | d.eax;

	if (!(guest_cr4() & (1ULL << 18))) {
		guest_inject_ud();
		return;
	}
	if (guest_cpl() != 0 || (u32)v->regs.gpr[REG_RCX] != 0 || (val & ~supported) || !(val & XCR0_X87) ||
	    ((val & XCR0_AVX) && !(val & XCR0_SSE)) || (!(val & XCR0_BNDREG) != !(val & XCR0_BNDCSR)) ||
	    ((val & XCR0_AVX512) && ((val & XCR0_AVX512) != XCR0_AVX512 || !(val & XCR0_AVX)))) {
		guest_inject_gp();
		return;
	}
	__asm__ volatile("xsetbv" : : "c"(0), "a"((u32)val), "d"((u32)(val >> 32)));
	guest_skip_instruction();
}
