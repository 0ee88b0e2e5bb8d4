/* The event hub: every VM exit comes to vmexit_dispatch(), which calls the one handler for its exit
 * reason from a table. A reason without a handler is a hypervisor bug or an unexpected guest event:
 * it is reported with the guest state and the machine stops. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>

static const exit_handler_t exit_handlers[EXIT_REASON_MAX] = {
	[EXIT_REASON_EXCEPTION_NMI] = handle_exception_nmi,
	[EXIT_REASON_TRIPLE_FAULT] = handle_triple_fault,
	[EXIT_REASON_INIT] = handle_init,
	[EXIT_REASON_SIPI] = handle_sipi,
	[EXIT_REASON_NMI_WINDOW] = handle_nmi_window,
	[EXIT_REASON_TASK_SWITCH] = handle_task_switch,
	[EXIT_REASON_CPUID] = handle_cpuid,
	[EXIT_REASON_GETSEC] = handle_getsec,
	[EXIT_REASON_INVD] = handle_invd,
	[EXIT_REASON_VMCALL] = handle_vmcall,
	[EXIT_REASON_VMCLEAR] = handle_vmx_instruction,
	[EXIT_REASON_VMLAUNCH] = handle_vmx_instruction,
	[EXIT_REASON_VMPTRLD] = handle_vmx_instruction,
	[EXIT_REASON_VMPTRST] = handle_vmx_instruction,
	[EXIT_REASON_VMREAD] = handle_vmx_instruction,
	[EXIT_REASON_VMRESUME] = handle_vmx_instruction,
	[EXIT_REASON_VMWRITE] = handle_vmx_instruction,
	[EXIT_REASON_VMXOFF] = handle_vmx_instruction,
	[EXIT_REASON_VMXON] = handle_vmx_instruction,
	[EXIT_REASON_INVEPT] = handle_vmx_instruction,
	[EXIT_REASON_INVVPID] = handle_vmx_instruction,
	[EXIT_REASON_VMFUNC] = handle_vmx_instruction,
	[EXIT_REASON_CR_ACCESS] = handle_cr_access,
	[EXIT_REASON_IO] = handle_io,
	[EXIT_REASON_RDMSR] = handle_rdmsr,
	[EXIT_REASON_WRMSR] = handle_wrmsr,
	[EXIT_REASON_EPT_VIOLATION] = handle_ept_violation,
	[EXIT_REASON_EPT_MISCONFIG] = handle_ept_misconfig,
	[EXIT_REASON_XSETBV] = handle_xsetbv,
};

struct field_desc {
	u32 enc;
	const char *name;
};
static const struct field_desc guest_fields[] = {
#define GUEST_FIELD_GUEST(name, enc) { enc, #name },
#define GUEST_FIELD_CTRL(name, enc)
#define GUEST_FIELD_RO(name, enc) { enc, #name },
#define GUEST_FIELD_HOST(name, enc)
#define VMCS_FIELD(name, enc, class, nested, exists) GUEST_FIELD_##class(name, enc)
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
};

/* Prints the exit information and every guest-state field this CPU has. */
static void dump_guest(struct vcpu *v)
{
	printf("  exit reason 0x%x, qualification 0x%llx\n", v->exit_reason,
	       (unsigned long long)vmcs_read(VMCS_EXIT_QUALIFICATION));
	for (int i = 0; i < 16; i += 4)
		printf("  R%-2d..: %016llx %016llx %016llx %016llx\n", i, (unsigned long long)v->regs.gpr[i],
		       (unsigned long long)v->regs.gpr[i + 1], (unsigned long long)v->regs.gpr[i + 2],
		       (unsigned long long)v->regs.gpr[i + 3]);
	for (u32 i = 0; i < ARRAY_SIZE(guest_fields); i++) {
		u64 val;
		/* Fields the CPU lacks fail VMREAD; skip them. */
		u8 fail;
		__asm__ volatile("vmread %2, %0; setna %1" : "=r"(val), "=qm"(fail) : "r"((u64)guest_fields[i].enc) : "cc");
		if (!fail)
			printf("  %-32s %016llx\n", guest_fields[i].name, (unsigned long long)val);
	}
}

static NORETURN void unexpected_exit(struct vcpu *v)
{
	printf("XMHF: FATAL: CPU %u: unexpected VM exit %u from the guest\n", v->cpu->index, v->exit_reason & 0xffff);
	dump_guest(v);
	panic("unhandled VM exit reason %u", v->exit_reason & 0xffff);
}

/* An exit in the middle of delivering an event (IDT-vectoring information valid, SDM 28.2.4) must
 * deliver that event again at the next entry, unless the handler injects something itself. */
void reinject_interrupted_event(void)
{
	u32 idt = (u32)vmcs_read(VMCS_IDT_VECTORING_INFO);
	u32 type = idt & INTR_TYPE_MASK;

	if (!(idt & INTR_INFO_VALID) || (vmcs_read(VMCS_ENTRY_INTR_INFO) & INTR_INFO_VALID))
		return;
	vmcs_write(VMCS_ENTRY_INTR_INFO, idt & ~INTR_INFO_NMI_UNBLOCKED_BY_IRET);
	if (idt & INTR_INFO_DELIVER_ERROR_CODE)
		vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR_CODE, vmcs_read(VMCS_IDT_VECTORING_ERROR_CODE));
	if (type == INTR_TYPE_SW_INTERRUPT || type == INTR_TYPE_SW_EXCEPTION || type == INTR_TYPE_PRIV_SW_EXCEPTION)
		vmcs_write(VMCS_ENTRY_INSTRUCTION_LENGTH, vmcs_read(VMCS_EXIT_INSTRUCTION_LENGTH));
}

/* Before entering L2 (VMCS02 current): EPT02 rights derive from EPT01's, so an EPT01 change takes
 * a fresh EPT02; an INIT or guest NMIs pending go to L1 or L2 (nested_pending_events); the event
 * injected is noted for the next exit (nested_apicv_entering). */
static void l2_entry_checks(struct vcpu *v)
{
	if (ept01_check_generation())
		nested_ept01_changed(v);
	nested_pending_events(v);
	if (v->l2_vid)
		nested_apicv_entering(v);
}

static void dispatch(struct vcpu *v, u32 reason);

void vmexit_dispatch(struct vcpu *v);
void vmexit_dispatch(struct vcpu *v)
{
	u32 reason = (u32)vmcs_read(VMCS_EXIT_REASON);
	bool l2 = v->in_l2;
	u64 t0 = EVENT_LOGGER ? rdtsc() : 0;

	v->exit_reason = reason;
	v->exits++;
	/* L2's port I/O, by port: the exits a nested guest (a PVH dom0 under Xen) takes most. */
	if (EVENT_LOGGER && l2 && (reason & 0xffff) == EXIT_REASON_IO)
		event_log_key(v, EXIT_REASON_IO, (u32)(vmcs_read(VMCS_EXIT_QUALIFICATION) >> 16) & 0xffff);
	dispatch(v, reason);
	if (EVENT_LOGGER)
		event_log_exit(v, reason & 0xffff, l2, rdtsc() - t0);
}

static void dispatch(struct vcpu *v, u32 reason)
{
	u32 basic = reason & 0xffff;

	if (v->in_l2) {
		if (nested_l2_exit(v))
			reinject_interrupted_event();
		if (v->in_l2)
			l2_entry_checks(v);
		return;
	}
	if (reason & EXIT_REASON_ENTRY_FAILURE) {
		printf("XMHF: FATAL: CPU %u: VM entry failed (exit reason 0x%x: %s)\n", v->cpu->index, reason,
		       basic == EXIT_REASON_INVALID_GUEST_STATE ? "invalid guest state" :
		       basic == EXIT_REASON_MSR_LOADING     ? "MSR loading" :
							      "machine check");
		dump_guest(v);
		panic("VM entry failure");
	}
	if (basic >= EXIT_REASON_MAX || !exit_handlers[basic])
		unexpected_exit(v);
	exit_handlers[basic](v);
	if (v->in_l2) {
		/* L1's VMLAUNCH/VMRESUME made VMCS02 current: what follows is VMCS01's business (its
		 * IDT-vectoring information is not L2's to re-inject: an event L2's last exit interrupted
		 * is L1's to re-inject, through VMCS12). */
		l2_entry_checks(v);
		return;
	}
	/* A task switch through a task gate completed the event delivery it interrupted (task-switch.c). */
	if (basic != EXIT_REASON_TASK_SWITCH)
		reinject_interrupted_event();
	ipi_check_init(v);
	ept01_check_generation();
	/* Guest NMIs that arrived while the hypervisor ran: ask for an NMI-window exit. */
	if (v->nmi_pending)
		vmcs_set_bits(VMCS_PROC_BASED_CONTROLS, PROC_NMI_WINDOW_EXITING);
	if (v->l1_vmx_aborted)
		nested_hold_aborted(v);
}

void vmx_entry_failed(struct vcpu *v, u32 error);
void vmx_entry_failed(struct vcpu *v, u32 error)
{
	if (v->in_l2 && nested_entry_failed(v, error))
		return; /* back to L1, which sees the failure of its VMLAUNCH/VMRESUME */
	printf("XMHF: FATAL: CPU %u: VM entry failed, VM-instruction error %u (0: VMfailInvalid)\n",
	       v->cpu->index, error);
	dump_guest(v);
	panic("VM entry failed");
}

/* The event into the current VMCS's entry-interruption fields. */
static void inject_exception(u32 vector, bool has_error, u32 error_code)
{
	vmcs_write(VMCS_ENTRY_INTR_INFO, INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | vector |
						 (has_error ? INTR_INFO_DELIVER_ERROR_CODE : 0));
	if (has_error)
		vmcs_write(VMCS_ENTRY_EXCEPTION_ERROR_CODE, error_code);
}

void guest_inject_exception(u32 vector, bool has_error, u32 error_code)
{
	/* Real mode has no error codes (SDM 27.2.1.3: deliver-error-code must be 0 when CR0.PE = 0). */
	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		has_error = false;
	/* Raised in L2 by L0's emulation: L1's exception bitmap decides first. */
	if (nested_l2_exception(this_vcpu(), vector, has_error, error_code, 0))
		return;
	inject_exception(vector, has_error, error_code);
}

void guest_inject_pf(u64 linear, u32 error_code)
{
	/* An exception exit to L1 leaves CR2 alone and gives the address in the qualification. */
	if (nested_l2_exception(this_vcpu(), 14, true, error_code, linear))
		return;
	/* CR2 is not part of the VMCS: the guest's CR2 is the CPU's while the hypervisor runs. */
	__asm__ volatile("mov %0, %%cr2" : : "r"(linear));
	inject_exception(14, true, error_code);
}

void guest_skip_instruction(void)
{
	guest_advance_rip(vmcs_read(VMCS_EXIT_INSTRUCTION_LENGTH));
}

/* Moves RIP past an emulated instruction of the given length. */
void guest_advance_rip(u64 length)
{
	u64 interruptibility = vmcs_read(VMCS_GUEST_INTERRUPTIBILITY);

	vmcs_write(VMCS_GUEST_RIP, vmcs_read(VMCS_GUEST_RIP) + length);
	/* Completing an instruction ends STI / MOV SS blocking (SDM 26.3.1.5 expectations on resume). */
	if (interruptibility & (INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS))
		vmcs_write(VMCS_GUEST_INTERRUPTIBILITY,
			   interruptibility & ~(u64)(INTERRUPTIBILITY_STI | INTERRUPTIBILITY_MOV_SS));
}

u32 guest_cpl(void)
{
	/* SS.DPL is the CPL (SDM 5.5); in real mode it is 0. */
	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		return 0;
	if (vmcs_read(VMCS_GUEST_RFLAGS) & (1ULL << 17)) /* virtual-8086 */
		return 3;
	return (u32)(vmcs_read(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3;
}

void handle_vmx_instruction(struct vcpu *v)
{
	if (nested_enabled()) {
		nested_handle_vmx_instruction(v);
		return;
	}
	/* VMX is not offered to the guest (CPUID hides it, CR4.VMXE cannot be set): #UD as on a CPU
	 * without VMX (SDM Vol. 3, 31.3: VMX instructions #UD outside VMX operation). */
	guest_inject_ud();
}

void handle_invd(struct vcpu *v)
{
	(void)v;
	/* INVD would drop the hypervisor's dirty cache lines too: write them back instead. */
	__asm__ volatile("wbinvd" ::: "memory");
	guest_skip_instruction();
}

void handle_getsec(struct vcpu *v)
{
	(void)v;
	guest_inject_ud(); /* SMX is hidden (CPUID.1:ECX.SMX = 0, CR4.SMXE cannot be set) */
}

void handle_triple_fault(struct vcpu *v)
{
	printf("XMHF: CPU %u: the guest triple-faulted (shutdown)\n", v->cpu->index);
	dump_guest(v);
	xmhf_stop("guest triple fault");
}

void handle_ept_misconfig(struct vcpu *v)
{
	printf("XMHF: FATAL: CPU %u: EPT misconfiguration at GPA 0x%llx\n", v->cpu->index,
	       (unsigned long long)vmcs_read(VMCS_GUEST_PHYSICAL_ADDRESS));
	dump_guest(v);
	panic("EPT misconfiguration");
}
