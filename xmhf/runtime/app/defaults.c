/* Defaults for every hypapp callback: a hypapp overrides the ones it implements (the defaults are
 * weak symbols). Without a hypapp the hypervisor behaves as if none of these were there. */
#include <xmhf/runtime.h>
#include <xmhf/app.h>

#define WEAK __attribute__((weak))

WEAK u32 xmhf_app_main(VCPU *vcpu, APP_PARAM_BLOCK *apb)
{
	(void)vcpu;
	(void)apb;
	return APP_SUCCESS;
}

WEAK u32 xmhf_app_handlehypercall(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_ERROR; /* VMCALL is #UD, as without a hypervisor */
}

WEAK u32 xmhf_app_handleintercept_portaccess(VCPU *vcpu, xmhf_regs_t *r, u32 port, u32 type, u32 size)
{
	(void)vcpu;
	(void)r;
	(void)port;
	(void)type;
	(void)size;
	return APP_IOINTERCEPT_CHAIN;
}

WEAK u32 xmhf_app_handleintercept_hwpgtblviolation(VCPU *vcpu, xmhf_regs_t *r, u64 gpa, u64 gva, u64 code)
{
	(void)vcpu;
	(void)r;
	(void)gpa;
	(void)gva;
	(void)code;
	return APP_ERROR; /* not the hypapp's: the hypervisor reports it */
}

WEAK void xmhf_app_handleshutdown(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
}

WEAK u32 xmhf_app_handlecpuid(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_CPUID_CHAIN;
}

WEAK u32 xmhf_app_handlemtrr(VCPU *vcpu, u32 msr, u64 value)
{
	(void)vcpu;
	(void)msr;
	(void)value;
	return APP_SUCCESS;
}

WEAK u32 xmhf_app_handle_external_interrupt(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_SUCCESS;
}

WEAK u32 xmhf_app_handle_interrupt_window(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_SUCCESS;
}

WEAK u32 xmhf_app_handle_nest_entry(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_SUCCESS;
}

WEAK u32 xmhf_app_handle_nest_exit(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)vcpu;
	(void)r;
	return APP_SUCCESS;
}
