/* The hypapp interface: callbacks a hypapp (hypapps/NAME, linked in with build.sh --app NAME)
 * implements, with XMHF's names, and the services the hypervisor offers it. A hypapp that leaves a
 * callback out gets the default in runtime/app/defaults.c. See docs/hypapps.md. */
#ifndef XMHF_APP_H
#define XMHF_APP_H
#include <xmhf/types.h>
#include <xmhf/vcpu.h>

#define APP_SUCCESS 0x1
#define APP_ERROR 0x0

/* xmhf_app_handleintercept_portaccess results */
#define APP_IOINTERCEPT_CHAIN 0xa0 /* the hypervisor performs the access */
#define APP_IOINTERCEPT_SKIP 0xa1  /* the hypapp emulated it (or dropped it); skip the instruction */
/* xmhf_app_handlecpuid results */
#define APP_CPUID_CHAIN 0xc0       /* the hypervisor answers as usual */
#define APP_CPUID_SKIP 0xc1        /* the hypapp set the registers; skip the instruction */

#define IO_TYPE_IN 0
#define IO_TYPE_OUT 1

/* EPT01 protections of a guest page (xmhf_memprot_setprot/getprot). */
#define MEMP_PROT_NOTPRESENT 0x1
#define MEMP_PROT_PRESENT 0x2
#define MEMP_PROT_READONLY 0x4
#define MEMP_PROT_READWRITE 0x8
#define MEMP_PROT_EXECUTE 0x10
#define MEMP_PROT_NOEXECUTE 0x20

/* What the hypervisor hands xmhf_app_main. */
typedef struct {
	const struct bootinfo *bootinfo;  /* memory maps, modules (extra_modules: hypapp data), cmdline */
	const char *cmdline;
} APP_PARAM_BLOCK;

typedef struct vcpu VCPU;
typedef struct guest_regs xmhf_regs_t; /* gpr[REG_RAX..] as in vcpu.h; RSP/RIP through the services */

/* Callbacks (all run on the CPU the event happened on). */
u32 xmhf_app_main(VCPU *vcpu, APP_PARAM_BLOCK *apb);               /* each CPU, before its guest starts */
u32 xmhf_app_handlehypercall(VCPU *vcpu, xmhf_regs_t *r);          /* VMCALL; APP_ERROR = #UD */
u32 xmhf_app_handleintercept_portaccess(VCPU *vcpu, xmhf_regs_t *r, u32 port, u32 type, u32 size);
u32 xmhf_app_handleintercept_hwpgtblviolation(VCPU *vcpu, xmhf_regs_t *r, u64 gpa, u64 gva, u64 violationcode);
void xmhf_app_handleshutdown(VCPU *vcpu, xmhf_regs_t *r);         /* the guest is powering off */
u32 xmhf_app_handlecpuid(VCPU *vcpu, xmhf_regs_t *r);
u32 xmhf_app_handlemtrr(VCPU *vcpu, u32 msr, u64 value);           /* APP_ERROR refuses the write (#GP) */
u32 xmhf_app_handle_external_interrupt(VCPU *vcpu, xmhf_regs_t *r);
u32 xmhf_app_handle_interrupt_window(VCPU *vcpu, xmhf_regs_t *r);
u32 xmhf_app_handle_nest_entry(VCPU *vcpu, xmhf_regs_t *r);       /* nested VMX: not called yet */
u32 xmhf_app_handle_nest_exit(VCPU *vcpu, xmhf_regs_t *r);        /* nested VMX: not called yet */

/* Services. */
/* Sets the EPT01 protection of the 4 KiB guest page holding gpa on every CPU (stops the other CPUs
 * while it changes). Returns 0, or -1 for a page of the hypervisor or a bad combination. */
int xmhf_memprot_setprot(VCPU *vcpu, u64 gpa, u32 prot);
u32 xmhf_memprot_getprot(VCPU *vcpu, u64 gpa);
/* Guest-physical memory copies; -1 if any byte is outside guest memory (the hypervisor's region). */
int xmhf_guestmem_copy_from_guest(VCPU *vcpu, void *dst, u64 gpa, u64 size);
int xmhf_guestmem_copy_to_guest(VCPU *vcpu, u64 gpa, const void *src, u64 size);
/* Stops every other CPU in the hypervisor (quiesce) until xmhf_endquiesce. */
void xmhf_quiesce(VCPU *vcpu);
void xmhf_endquiesce(VCPU *vcpu);
/* Port intercepts: accesses to [port, port + count) exit to xmhf_app_handleintercept_portaccess. */
void xmhf_iointercept_set(u32 port, u32 count, bool intercept);
/* Guest registers outside xmhf_regs_t. */
u64 xmhf_guest_get_rip(VCPU *vcpu);
void xmhf_guest_set_rip(VCPU *vcpu, u64 rip);
u64 xmhf_guest_get_rsp(VCPU *vcpu);
void xmhf_guest_set_rsp(VCPU *vcpu, u64 rsp);
u32 xmhf_cpu_index(VCPU *vcpu);
/* After a write to gpa that violated an EPT protection: completes the guest's store instruction
 * without its store (every store form: MOV, XCHG, STOS, read-modify-write ALU forms with their flags,
 * one iteration of a REP STOS), so the write does not happen. Returns 0, or -1 if the instruction is
 * not a store the decoder knows. */
int xmhf_guest_skip_faulting_store(VCPU *vcpu, u64 gpa);

#endif
