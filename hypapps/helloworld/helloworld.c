/* helloworld: the smallest hypapp. Greets from every CPU, answers one hypercall with a running count,
 * and says goodbye when the guest powers off.
 *   VMCALL with EAX = 0x48454c4f ("HELO") -> EAX = number of such hypercalls so far (all CPUs),
 *                                           EBX = index of the CPU that took it.
 * Any other VMCALL is not ours: the guest gets #UD. */
#include <xmhf/runtime.h>
#include <xmhf/app.h>

#define HC_HELLO 0x48454c4f

static volatile u64 hypercalls;

u32 xmhf_app_main(VCPU *vcpu, APP_PARAM_BLOCK *apb)
{
	(void)apb;
	printf("helloworld: hello from CPU %u\n", xmhf_cpu_index(vcpu));
	return APP_SUCCESS;
}

u32 xmhf_app_handlehypercall(VCPU *vcpu, xmhf_regs_t *r)
{
	u64 n;

	if ((u32)r->gpr[REG_RAX] != HC_HELLO)
		return APP_ERROR;
	n = __atomic_add_fetch(&hypercalls, 1, __ATOMIC_SEQ_CST);
	r->gpr[REG_RAX] = n;
	r->gpr[REG_RBX] = xmhf_cpu_index(vcpu);
	printf("helloworld: hypercall %llu from CPU %u\n", (unsigned long long)n, xmhf_cpu_index(vcpu));
	return APP_SUCCESS;
}

void xmhf_app_handleshutdown(VCPU *vcpu, xmhf_regs_t *r)
{
	(void)r;
	printf("helloworld: CPU %u: the guest is powering off after %llu hypercalls; goodbye\n",
	       xmhf_cpu_index(vcpu), (unsigned long long)hypercalls);
}
