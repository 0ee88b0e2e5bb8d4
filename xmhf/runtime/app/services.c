/* Services for hypapps (xmhf/app.h). */
#include <xmhf/runtime.h>
#include <xmhf/app.h>
#include <lib/mmio-store.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>

int xmhf_memprot_setprot(VCPU *vcpu, u64 gpa, u32 prot)
{
	u64 rights = 0;

	(void)vcpu;
	if (!guestmem_ptr(gpa & ~0xfffULL, PAGE_SIZE_4K))
		return -1; /* the hypervisor's own memory is never the guest's to protect */
	if (prot & MEMP_PROT_PRESENT) {
		rights = EPT_READ;
		if (prot & MEMP_PROT_READWRITE)
			rights |= EPT_WRITE;
		if (prot & MEMP_PROT_EXECUTE)
			rights |= EPT_EXEC;
	} else if (!(prot & MEMP_PROT_NOTPRESENT)) {
		return -1;
	}
	nested_bitmap_unwatch(gpa); /* an L1 bitmap page VMCS02 merged is the hypapp's now */
	ept01_change_page_rights(gpa, rights);
	return 0;
}

u32 xmhf_memprot_getprot(VCPU *vcpu, u64 gpa)
{
	u64 rights = ept01_page_rights(gpa);
	u32 prot;

	(void)vcpu;
	if (!(rights & EPT_RWX))
		return MEMP_PROT_NOTPRESENT;
	prot = MEMP_PROT_PRESENT;
	prot |= (rights & EPT_WRITE) ? MEMP_PROT_READWRITE : MEMP_PROT_READONLY;
	prot |= (rights & EPT_EXEC) ? MEMP_PROT_EXECUTE : MEMP_PROT_NOEXECUTE;
	return prot;
}

int xmhf_guestmem_copy_from_guest(VCPU *vcpu, void *dst, u64 gpa, u64 size)
{
	const void *src = guestmem_ptr(gpa, size);

	(void)vcpu;
	if (!src)
		return -1;
	memcpy(dst, src, size);
	return 0;
}

int xmhf_guestmem_copy_to_guest(VCPU *vcpu, u64 gpa, const void *src, u64 size)
{
	void *dst = guestmem_ptr(gpa, size);

	(void)vcpu;
	if (!dst)
		return -1;
	memcpy(dst, src, size);
	return 0;
}

void xmhf_quiesce(VCPU *vcpu)
{
	(void)vcpu;
	quiesce_begin();
}

void xmhf_endquiesce(VCPU *vcpu)
{
	(void)vcpu;
	quiesce_end();
}

void xmhf_iointercept_set(u32 port, u32 count, bool intercept)
{
	io_bitmap_set(port, count, intercept);
}

u64 xmhf_guest_get_rip(VCPU *vcpu)
{
	(void)vcpu;
	return vmcs_read(VMCS_GUEST_RIP);
}

void xmhf_guest_set_rip(VCPU *vcpu, u64 rip)
{
	(void)vcpu;
	vmcs_write(VMCS_GUEST_RIP, rip);
}

u64 xmhf_guest_get_rsp(VCPU *vcpu)
{
	(void)vcpu;
	return vmcs_read(VMCS_GUEST_RSP);
}

void xmhf_guest_set_rsp(VCPU *vcpu, u64 rsp)
{
	(void)vcpu;
	vmcs_write(VMCS_GUEST_RSP, rsp);
}

u32 xmhf_cpu_index(VCPU *vcpu)
{
	return vcpu->cpu->index;
}

/* The old value of the operand the dropped store would have written (read-modify-write forms and XCHG
 * compute with it): the guest-physical bytes at the faulting address. */
static u64 read_operand(void *ctx, u32 size)
{
	const void *p = guestmem_ptr(*(const u64 *)ctx, size);
	u64 v = 0;

	if (p)
		memcpy(&v, p, size);
	return v;
}

int xmhf_guest_skip_faulting_store(VCPU *vcpu, u64 gpa)
{
	struct mmio_cpu cpu;
	struct mmio_store st;
	u8 bytes[15];
	u32 n;

	/* The decoder of the xAPIC trap (lib/mmio-store.c) knows every store form; the instruction
	 * completes (registers, RFLAGS, RIP; one iteration of a REP STOS) without its store. */
	if (guest_store_decode(vcpu, read_operand, &gpa, &cpu, &st, bytes, &n))
		return -1;
	guest_store_commit(vcpu, &cpu, &st);
	return 0;
}
