/* pageprot: a guest asks, by hypercall, to make one of its pages read-only; the hypapp enforces it with
 * EPT01 and reports every write that the protection stops (the write does not happen; the guest goes
 * on after the instruction).
 *   VMCALL EAX = 0x50524f54 ("PROT"), RBX = guest-physical address -> EAX = 0, or -1 if refused
 *   VMCALL EAX = 0x554e5052 ("UNPR"), RBX = guest-physical address -> EAX = 0, or -1 if not protected
 *   VMCALL EAX = 0x434e5442 ("CNTB")                               -> EAX = writes blocked so far
 * Protections are shared by all CPUs (EPT01 is); the table of pages is the hypapp's own, bounded. */
#include <xmhf/runtime.h>
#include <xmhf/app.h>
#include <xmhf/spinlock.h>

#define HC_PROTECT 0x50524f54
#define HC_UNPROTECT 0x554e5052
#define HC_COUNT 0x434e5442
#define MAX_PAGES 64

static u64 pages[MAX_PAGES]; /* page addresses, 0 = free slot */
static spinlock_t lock;
static volatile u64 blocked;

static int find(u64 page)
{
	for (int i = 0; i < MAX_PAGES; i++)
		if (pages[i] == page)
			return i;
	return -1;
}

static u64 protect(VCPU *vcpu, u64 gpa)
{
	u64 page = gpa & ~0xfffULL;
	int slot;

	spin_lock(&lock);
	slot = page ? find(page) : -1;
	if (slot < 0 && page)
		slot = find(0);
	if (slot < 0 || !page ||
	    xmhf_memprot_setprot(vcpu, page, MEMP_PROT_PRESENT | MEMP_PROT_READONLY | MEMP_PROT_EXECUTE)) {
		spin_unlock(&lock);
		return (u64)-1;
	}
	pages[slot] = page;
	spin_unlock(&lock);
	printf("pageprot: CPU %u: GPA 0x%llx is now read-only\n", xmhf_cpu_index(vcpu), (unsigned long long)page);
	return 0;
}

static u64 unprotect(VCPU *vcpu, u64 gpa)
{
	u64 page = gpa & ~0xfffULL;
	int slot;

	spin_lock(&lock);
	slot = page ? find(page) : -1;
	if (slot < 0) {
		spin_unlock(&lock);
		return (u64)-1;
	}
	xmhf_memprot_setprot(vcpu, page, MEMP_PROT_PRESENT | MEMP_PROT_READWRITE | MEMP_PROT_EXECUTE);
	pages[slot] = 0;
	spin_unlock(&lock);
	return 0;
}

u32 xmhf_app_handlehypercall(VCPU *vcpu, xmhf_regs_t *r)
{
	switch ((u32)r->gpr[REG_RAX]) {
	case HC_PROTECT:
		r->gpr[REG_RAX] = protect(vcpu, r->gpr[REG_RBX]);
		return APP_SUCCESS;
	case HC_UNPROTECT:
		r->gpr[REG_RAX] = unprotect(vcpu, r->gpr[REG_RBX]);
		return APP_SUCCESS;
	case HC_COUNT:
		r->gpr[REG_RAX] = blocked;
		return APP_SUCCESS;
	default:
		return APP_ERROR;
	}
}

u32 xmhf_app_handleintercept_hwpgtblviolation(VCPU *vcpu, xmhf_regs_t *r, u64 gpa, u64 gva, u64 code)
{
	u64 rip = xmhf_guest_get_rip(vcpu);
	int slot;

	(void)r;
	(void)gva;
	spin_lock(&lock);
	slot = find(gpa & ~0xfffULL);
	spin_unlock(&lock);
	if (slot < 0 || !(code & 2))
		return APP_ERROR; /* not a write to a page of ours */
	if (xmhf_guest_skip_faulting_store(vcpu, gpa))
		return APP_ERROR; /* cannot step over it: let the hypervisor report it */
	__atomic_add_fetch(&blocked, 1, __ATOMIC_SEQ_CST);
	printf("pageprot: CPU %u blocked a write to read-only GPA 0x%llx at RIP 0x%llx\n", xmhf_cpu_index(vcpu),
	       (unsigned long long)gpa, (unsigned long long)rip);
	return APP_SUCCESS;
}
