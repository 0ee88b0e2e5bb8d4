/* The IDT (shared by all CPUs) and the exception handler: a fault in the hypervisor is a bug, so it
 * prints CPU, vector, error code, registers and stack, then stops that CPU. NMIs are counted and
 * returned from (the VMX core routes them to quiesce or the guest). */
#include <xmhf/runtime.h>
#include <xmhf/percpu.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include <xmhf/vcpu.h>

struct exception_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error_code;
	u64 rip, cs, rflags, rsp, ss;
};

extern char exception_stubs[];
#define STUB_SIZE 16

static struct idt_gate64 *idt;

void exception_dispatch(struct exception_frame *f);

static const char *const exception_names[32] = {
	"DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "MF(coproc)", "TS", "NP", "SS", "GP", "PF", "15",
	"MF", "AC", "MC", "XM", "VE", "CP", "22", "23", "24", "25", "26", "27", "HV", "VC", "SX", "31",
};

void idt_init(void)
{
	idt = page_alloc(1);
	for (u32 v = 0; v < 256; v++) {
		u64 addr = (u64)(uintptr_t)exception_stubs + (u64)v * STUB_SIZE;
		struct idt_gate64 *g = &idt[v];

		g->offset_lo = (u16)addr;
		g->selector = GDT_SEL_CODE64;
		g->ist = v == 2 ? IST_NMI : v == 8 ? IST_DF : v == 18 ? IST_MC : 0;
		g->type_attr = 0x8e;
		g->offset_mid = (u16)(addr >> 16);
		g->offset_hi = (u32)(addr >> 32);
	}
}

void idt_load(void)
{
	struct desc_ptr idtr = { .limit = 256 * sizeof(struct idt_gate64) - 1, .base = (unsigned long)idt };

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

static void dump_and_halt(struct exception_frame *f)
{
	struct cpu *c = rdmsr(MSR_IA32_GS_BASE) ? this_cpu() : NULL;
	const u64 *stack = (const u64 *)(uintptr_t)f->rsp;

	printf("XMHF: FATAL: CPU %d (APIC id %d): exception %llu (#%s), error code 0x%llx\n",
	       c ? (int)c->index : -1, c ? (int)c->apic_id : -1, (unsigned long long)f->vector,
	       f->vector < 32 ? exception_names[f->vector] : "external interrupt", (unsigned long long)f->error_code);
	printf("  RIP=%016llx CS=%04llx RFLAGS=%016llx RSP=%016llx SS=%04llx\n", (unsigned long long)f->rip,
	       (unsigned long long)f->cs, (unsigned long long)f->rflags, (unsigned long long)f->rsp,
	       (unsigned long long)f->ss);
	printf("  RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n", (unsigned long long)f->rax,
	       (unsigned long long)f->rbx, (unsigned long long)f->rcx, (unsigned long long)f->rdx);
	printf("  RSI=%016llx RDI=%016llx RBP=%016llx R8 =%016llx\n", (unsigned long long)f->rsi,
	       (unsigned long long)f->rdi, (unsigned long long)f->rbp, (unsigned long long)f->r8);
	printf("  R9 =%016llx R10=%016llx R11=%016llx R12=%016llx\n", (unsigned long long)f->r9,
	       (unsigned long long)f->r10, (unsigned long long)f->r11, (unsigned long long)f->r12);
	printf("  R13=%016llx R14=%016llx R15=%016llx\n", (unsigned long long)f->r13, (unsigned long long)f->r14,
	       (unsigned long long)f->r15);
	printf("  CR0=%016lx CR2=%016lx CR3=%016lx CR4=%016lx\n", read_cr0(), read_cr2(), read_cr3(), read_cr4());
	/* The stack, only if it lies in the hypervisor's region (a wild RSP must not fault again). */
	if (boot_info && f->rsp >= boot_info->region_base &&
	    f->rsp + 16 * 8 <= boot_info->region_base + boot_info->region_size)
		for (int i = 0; i < 16; i += 4)
			printf("  stack+%02x: %016llx %016llx %016llx %016llx\n", i * 8, (unsigned long long)stack[i],
			       (unsigned long long)stack[i + 1], (unsigned long long)stack[i + 2],
			       (unsigned long long)stack[i + 3]);
	xmhf_stop("exception in the hypervisor");
}

/* .extable: {fault RIP, resume RIP} as 32-bit offsets from each field (msr-safe.c). */
extern const s32 __extable_start[], __extable_end[];

static bool fixup(struct exception_frame *f)
{
	for (const s32 *e = __extable_start; e < __extable_end; e += 2) {
		u64 insn = (u64)(uintptr_t)e + (s64)e[0];
		u64 resume = (u64)(uintptr_t)(e + 1) + (s64)e[1];
		if (insn == f->rip) {
			f->rip = resume;
			return true;
		}
	}
	return false;
}

void exception_dispatch(struct exception_frame *f)
{
	if (f->vector == 2) {
		this_cpu()->nmi_count++;
		nmi_host();
		return;
	}
	if (f->vector == 13 && fixup(f))
		return;
	dump_and_halt(f);
}
