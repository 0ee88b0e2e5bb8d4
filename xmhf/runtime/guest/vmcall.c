/* VMCALL: the INT 15h hook, else a hypercall; no hypapp is linked, so it is #UD as without VMX. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>

void handle_vmcall(struct vcpu *v)
{
	if (e820_hook_handle(v))
		return;
	guest_inject_ud();
}
