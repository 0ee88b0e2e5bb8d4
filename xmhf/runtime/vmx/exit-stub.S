/* VM exits land here (HOST_RIP) with RSP = HOST_RSP, where the vcpu pointer is stored. The stub saves
 * the guest GPRs into vcpu->regs (offset 0, SDM register order), calls vmexit_dispatch(vcpu), restores
 * them and enters the guest again: VMRESUME, or VMLAUNCH when vcpu->launch_next says the current VMCS
 * is fresh (a new VMCS02). vmx_launch(vcpu) performs the first entry the same way. A failed entry calls
 * vmx_entry_failed(vcpu, error), which returns only when it arranged another entry (a failed VMCS02
 * entry goes back to L1). */
#define R(n) (8 * (n))
#define LAUNCH_NEXT 128

	.text
	.code64
	.globl vmx_exit_stub, vmx_launch
vmx_exit_stub:
	pushq %rax
	movq 8(%rsp), %rax          /* vcpu */
	movq %rcx, R(1)(%rax)
	movq %rdx, R(2)(%rax)
	movq %rbx, R(3)(%rax)
	movq %rbp, R(5)(%rax)
	movq %rsi, R(6)(%rax)
	movq %rdi, R(7)(%rax)
	movq %r8, R(8)(%rax)
	movq %r9, R(9)(%rax)
	movq %r10, R(10)(%rax)
	movq %r11, R(11)(%rax)
	movq %r12, R(12)(%rax)
	movq %r13, R(13)(%rax)
	movq %r14, R(14)(%rax)
	movq %r15, R(15)(%rax)
	popq %rcx
	movq %rcx, R(0)(%rax)
	movq %rax, %rdi
	cld
	call vmexit_dispatch        /* RSP = HOST_RSP, 16-byte aligned */
enter_guest:
	movq (%rsp), %rax
	cmpl $0, LAUNCH_NEXT(%rax)
	jne 2f
	call restore_guest_regs
	vmresume
	jmp entry_failed
2:	movl $0, LAUNCH_NEXT(%rax)
	call restore_guest_regs
	vmlaunch
entry_failed:
	/* The entry failed with the flags it set: VMfailInvalid (CF) or VMfailValid (ZF, error in the
	 * VMCS). Pass the VM-instruction error (0 for VMfailInvalid). */
	movq (%rsp), %rdi
	movl $0, %esi
	jc 3f
	movq $0x4400, %rax
	vmread %rax, %rsi
3:	call vmx_entry_failed
	jmp enter_guest

/* rax = vcpu; loads every GPR from vcpu->regs, rax last. */
restore_guest_regs:
	movq R(1)(%rax), %rcx
	movq R(2)(%rax), %rdx
	movq R(3)(%rax), %rbx
	movq R(5)(%rax), %rbp
	movq R(6)(%rax), %rsi
	movq R(7)(%rax), %rdi
	movq R(8)(%rax), %r8
	movq R(9)(%rax), %r9
	movq R(10)(%rax), %r10
	movq R(11)(%rax), %r11
	movq R(12)(%rax), %r12
	movq R(13)(%rax), %r13
	movq R(14)(%rax), %r14
	movq R(15)(%rax), %r15
	movq R(0)(%rax), %rax
	ret

/* vmx_launch(vcpu): switch to the VMX stack (HOST_RSP) and VMLAUNCH. */
vmx_launch:
	movq $0x6c14, %rax          /* VMCS_HOST_RSP */
	vmread %rax, %rsp
	movl $1, LAUNCH_NEXT(%rdi)
	jmp enter_guest
