/* Reading the guest's current instruction: CS:RIP through the guest's page tables (lib/insn.c) to
 * guest-physical memory, for the few instructions the hypervisor emulates. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/insn.h>
#include <lib/string.h>
#include <x86/cpu.h>

static bool read_phys(void *ctx, u64 gpa, u64 *value)
{
	const u64 *p = NULL;

	/* ctx: the vCPU whose L2 addresses go through EPT12 (fetches only; NULL: L1 addresses). */
	if (!ctx || nested_l2_gpa_to_l1(ctx, gpa, &gpa))
		p = guestmem_ptr(gpa, 8);
	if (!p)
		return false;
	memcpy(value, p, 8);
	return true;
}

static enum guest_paging paging_mode(void)
{
	u64 cr0 = vmcs_read(VMCS_GUEST_CR0), cr4 = vmcs_read(VMCS_GUEST_CR4);

	if (!(cr0 & CR0_PG))
		return GUEST_PAGING_NONE;
	if (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA)
		return GUEST_PAGING_4LEVEL;
	return (cr4 & CR4_PAE) ? GUEST_PAGING_PAE : GUEST_PAGING_32;
}

/* Copies up to 15 instruction bytes at the guest's CS:RIP; returns how many could be read. */
u32 guest_fetch_instruction(struct vcpu *v, u8 *buf)
{
	u64 pdpte[4];
	u64 linear = vmcs_read(VMCS_GUEST_CS_BASE) + vmcs_read(VMCS_GUEST_RIP);
	enum guest_paging mode = paging_mode();
	u32 n = 0;

	for (int i = 0; i < 4; i++)
		pdpte[i] = vmcs_read(VMCS_GUEST_PDPTE0 + 2 * i);
	if (!(vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS) & (1 << 13)))
		linear &= 0xffffffffULL; /* outside 64-bit mode linear addresses are 32 bits */
	while (n < 15) {
		u64 gpa;
		if (guest_linear_to_phys(mode, vmcs_read(VMCS_GUEST_CR3), pdpte, (vmcs_read(VMCS_GUEST_CR4) >> 4) & 1,
					 linear + n, read_phys, v, &gpa) ||
		    !nested_l2_gpa_to_l1(v, gpa, &gpa))
			break;
		u32 chunk = (u32)MIN(15 - n, PAGE_SIZE_4K - (gpa & 0xfff));
		const u8 *p = guestmem_ptr(gpa, chunk);
		if (!p)
			break;
		memcpy(buf + n, p, chunk);
		n += chunk;
	}
	return n;
}

u32 guest_code_bits(void)
{
	u64 ar = vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS);

	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PE))
		return 16;
	if ((ar & (1 << 13)) && (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA))
		return 64;
	return (ar & (1 << 14)) ? 32 : 16;
}


static int linear_to_gpa(u64 linear, u64 *gpa)
{
	u64 pdpte[4];

	for (int i = 0; i < 4; i++)
		pdpte[i] = vmcs_read(VMCS_GUEST_PDPTE0 + 2 * i);
	return guest_linear_to_phys(paging_mode(), vmcs_read(VMCS_GUEST_CR3), pdpte, (vmcs_read(VMCS_GUEST_CR4) >> 4) & 1,
				    linear, read_phys, NULL, gpa);
}

void guest_inject_pf(u64 linear, u32 error_code)
{
	/* CR2 is not part of the VMCS: the guest's CR2 is the CPU's while the hypervisor runs. */
	__asm__ volatile("mov %0, %%cr2" : : "r"(linear));
	guest_inject_exception(14, true, error_code);
}

static bool linear_copy(u64 linear, u8 *buf, u32 n, bool write)
{
	while (n) {
		u64 gpa;
		u32 chunk = (u32)MIN(n, PAGE_SIZE_4K - (linear & 0xfff));
		u8 *p;

		if (linear_to_gpa(linear, &gpa) || !(p = guestmem_ptr(gpa, chunk))) {
			guest_inject_pf(linear, write ? 2 : 0);
			return false;
		}
		if (write)
			memcpy(p, buf, chunk);
		else
			memcpy(buf, p, chunk);
		linear += chunk;
		buf += chunk;
		n -= chunk;
	}
	return true;
}

bool guest_linear_read(u64 linear, void *buf, u32 n)
{
	return linear_copy(linear, buf, n, false);
}

bool guest_linear_write(u64 linear, const void *buf, u32 n)
{
	return linear_copy(linear, (u8 *)(uintptr_t)buf, n, true);
}
