/* Task-switch VM exits (reason 9). VMX non-root operation cannot switch tasks: a far JMP/CALL to a
 * TSS or task gate, an IRET with NT set, or an event whose IDT entry is a task gate exits after the
 * CPU checked the gate and the new TSS descriptor (SDM Vol. 3, 26.4.2). The switch is emulated
 * (lib/task-switch.c) on the guest state in the VMCS: 32-bit guests use task gates (Linux i386 and
 * Windows x86 for #DF and NMI), and any guest can try one, so this exit must never stop the machine. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/task-switch.h>
#include <x86/cpu.h>

#define DR6_BT (1ULL << 15)

static bool ts_read(void *ctx, u64 linear, void *buf, u32 n)
{
	(void)ctx;
	return guest_linear_read(linear, buf, n);
}

static bool ts_write(void *ctx, u64 linear, const void *buf, u32 n)
{
	(void)ctx;
	return guest_linear_write(linear, buf, n);
}

static bool ts_load_cr3(void *ctx, u64 cr3)
{
	(void)ctx;
	return guest_load_cr3(cr3);
}

static void read_state(struct vcpu *v, struct ts_cpu *c)
{
	for (u32 i = 0; i < TS_NSEG; i++)
		vmcs_read_guest_segment(i, &c->seg[i]);
	c->gdtr_base = vmcs_read(VMCS_GUEST_GDTR_BASE);
	c->gdtr_limit = (u32)vmcs_read(VMCS_GUEST_GDTR_LIMIT);
	for (u32 i = 0; i < 8; i++)
		c->gpr[i] = i == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[i];
	c->rip = vmcs_read(VMCS_GUEST_RIP);
	c->rflags = vmcs_read(VMCS_GUEST_RFLAGS);
	c->cr0 = vmcs_read(VMCS_GUEST_CR0);
	c->cr3 = vmcs_read(VMCS_GUEST_CR3);
	c->dr7 = vmcs_read(VMCS_GUEST_DR7);
}

static void write_state(struct vcpu *v, const struct ts_cpu *c)
{
	for (u32 i = 0; i < TS_NSEG; i++) {
		vmcs_write(VMCS_GUEST_ES_SELECTOR + 2 * i, c->seg[i].sel);
		vmcs_write(VMCS_GUEST_ES_LIMIT + 2 * i, c->seg[i].limit);
		vmcs_write(VMCS_GUEST_ES_ACCESS_RIGHTS + 2 * i, c->seg[i].ar);
		vmcs_write(VMCS_GUEST_ES_BASE + 2 * i, c->seg[i].base);
	}
	for (u32 i = 0; i < 8; i++) {
		if (i == REG_RSP)
			vmcs_write(VMCS_GUEST_RSP, c->gpr[i]);
		else
			v->regs.gpr[i] = c->gpr[i];
	}
	vmcs_write(VMCS_GUEST_RIP, c->rip);
	vmcs_write(VMCS_GUEST_RFLAGS, c->rflags);
	vmcs_write(VMCS_GUEST_CR0, c->cr0);
	/* CR0.TS is not host-owned (vmcs01.c's mask), so the guest reads it from GUEST_CR0; the shadow
	 * follows for tools that print it. */
	vmcs_write(VMCS_CR0_READ_SHADOW, (vmcs_read(VMCS_CR0_READ_SHADOW) & ~CR0_TS) | (c->cr0 & CR0_TS));
	vmcs_write(VMCS_GUEST_DR7, c->dr7);
}

void handle_task_switch(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 idt = (u32)vmcs_read(VMCS_IDT_VECTORING_INFO);
	u32 type = idt & INTR_TYPE_MASK;
	struct ts_request req = { .selector = (u16)q, .source = (enum ts_source)((q >> 30) & 3) };
	struct ts_env env = { ts_read, ts_write, ts_load_cr3, (vmcs_read(VMCS_GUEST_CR0) & CR0_PG) != 0, NULL };
	struct ts_outcome out;
	struct ts_cpu c;
	u64 interruptibility = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);

	/* IA-32e mode has no task switches (the CPU raises #GP before any exit); not expected here. */
	if (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA) {
		guest_inject_exception(13, true, req.selector & 0xfffc);
		return;
	}
	read_state(v, &c);
	/* The old task resumes after a JMP, CALL, IRET or software interrupt/exception (INT n, INT3,
	 * INTO, INT1), and at the interrupted instruction after a fault, NMI or external interrupt. */
	req.return_rip = c.rip;
	if (req.source != TS_FROM_GATE ||
	    ((idt & INTR_INFO_VALID) && (type == INTR_TYPE_SW_INTERRUPT || type == INTR_TYPE_SW_EXCEPTION ||
					  type == INTR_TYPE_PRIV_SW_EXCEPTION)))
		req.return_rip += vmcs_read(VMCS_EXIT_INSTRUCTION_LENGTH);
	if (req.source == TS_FROM_GATE && (idt & INTR_INFO_VALID) && (idt & INTR_INFO_DELIVER_ERROR_CODE)) {
		req.push_error = true;
		req.error_code = (u32)vmcs_read(VMCS_IDT_VECTORING_ERROR_CODE);
	}
	task_switch_emulate(&c, &req, &env, &out);
	if (!out.committed)
		return; /* a fault before the commit point: already raised (#PF) or raised below */
	write_state(v, &c);
	/* The switch completes the instruction or the event delivery: no STI/MOV SS blocking; an NMI
	 * delivered through a task gate blocks NMIs until the next IRET as any NMI does. */
	interruptibility &= ~(u64)(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS);
	if (req.source == TS_FROM_GATE && (idt & INTR_INFO_VALID) && type == INTR_TYPE_NMI)
		interruptibility |= INTERRUPTIBILITY_NMI;
	vmcs_write(VMCS_GUEST_INTERRUPTIBILITY, interruptibility);
	if (out.vector < 0 && !out.mem_fault && out.debug_trap) {
		/* The T flag: a #DB trap before the new task's first instruction, DR6.BT set (SDM 17.2.3). */
		__asm__ volatile("mov %%dr6, %%rax; or %0, %%rax; mov %%rax, %%dr6" : : "r"(DR6_BT) : "rax");
		guest_inject_exception(1, false, 0);
	}
	if (out.vector >= 0)
		guest_inject_exception((u32)out.vector, true, out.error_code);
}
