/* VMCALL: the INT 15h hook, else a hypercall for the hypapp; one it does not handle is #UD, as on a
 * CPU without VMX. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>

void handle_vmcall(struct vcpu *v)
{
	if (e820_hook_handle(v))
		return;
	if (xmhf_app_handlehypercall(v, &v->regs) == APP_SUCCESS)
		guest_skip_instruction();
	else
		guest_inject_ud();
}
