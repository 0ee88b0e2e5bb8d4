/* Reading the guest's current instruction: CS:RIP through the guest's page tables (lib/insn.c) to
 * guest-physical memory, for the few instructions the hypervisor emulates. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/insn.h>
#include <lib/mmio-store.h>
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

int guest_store_decode(struct vcpu *v, u64 (*read_old)(void *ctx, u32 size), void *ctx, struct mmio_cpu *cpu,
		       struct mmio_store *st, u8 *bytes, u32 *n)
{
	*cpu = (struct mmio_cpu){ .cs_bits = guest_code_bits(), .rflags = vmcs_read(VMCS_GUEST_RFLAGS) };
	memset(bytes, 0, 15);
	*n = guest_fetch_instruction(v, bytes);
	memcpy(cpu->gpr, v->regs.gpr, sizeof(cpu->gpr));
	cpu->gpr[REG_RSP] = vmcs_read(VMCS_GUEST_RSP);
	return mmio_store_emulate(bytes, *n, cpu, read_old, ctx, st);
}

void guest_store_commit(struct vcpu *v, const struct mmio_cpu *cpu, const struct mmio_store *st)
{
	memcpy(v->regs.gpr, cpu->gpr, sizeof(cpu->gpr));
	vmcs_write(VMCS_GUEST_RSP, cpu->gpr[REG_RSP]);
	vmcs_write(VMCS_GUEST_RFLAGS, cpu->rflags);
	guest_advance_rip(st->length);
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


/* A supervisor-mode data access (the only kind the hypervisor emulates: VMX instructions run at CPL
 * 0) to linear: 0 and the guest-physical address, or the #PF error code (SDM 4.6, 4.7): not present
 * (P = 0); a write to a page some paging entry makes read-only with CR0.WP set; a user-mode page
 * with CR4.SMAP set and RFLAGS.AC clear. */
#define PF_P 1u
#define PF_W 2u
#define NOT_MAPPED 0x80000000u

static u32 linear_to_gpa(struct vcpu *l2, u64 linear, bool write, u64 *gpa, struct guest_walk *w)
{
	u64 pdpte[4], cr4 = vmcs_read(VMCS_GUEST_CR4);

	for (int i = 0; i < 4; i++)
		pdpte[i] = vmcs_read(VMCS_GUEST_PDPTE0 + 2 * i);
	if (guest_linear_walk(paging_mode(), vmcs_read(VMCS_GUEST_CR3), pdpte, (cr4 >> 4) & 1, linear, read_phys,
			      l2, gpa, w))
		return NOT_MAPPED | (write ? PF_W : 0);
	if (!(vmcs_read(VMCS_GUEST_CR0) & CR0_PG))
		return 0;
	if (write && (vmcs_read(VMCS_GUEST_CR0) & CR0_WP) && !(w->rights & GUEST_PAGE_WRITE))
		return PF_P | PF_W;
	if ((cr4 & CR4_SMAP) && (w->rights & GUEST_PAGE_USER) && !(vmcs_read(VMCS_GUEST_RFLAGS) & (1ULL << 18)))
		return PF_P | (write ? PF_W : 0);
	return 0;
}

/* The accessed flag in every paging entry the access used and, for a write, the dirty flag in the
 * leaf, as the CPU sets them (SDM 4.8); atomically, since L1's other CPUs may update them too. */
static void set_accessed_dirty(struct vcpu *l2, const struct guest_walk *w, bool write)
{
	for (u32 i = 0; i < w->nentries; i++) {
		u64 bits = 1ULL << 5 | ((write && i == w->nentries - 1) ? 1ULL << 6 : 0);
		u64 gpa = w->entry[i];
		void *e = (!l2 || nested_l2_gpa_to_l1(l2, gpa, &gpa)) ? guestmem_ptr(gpa, w->entry_bytes) : NULL;

		if (!e)
			continue;
		if (w->entry_bytes == 4)
			__atomic_fetch_or((u32 *)e, (u32)bits, __ATOMIC_SEQ_CST);
		else
			__atomic_fetch_or((u64 *)e, bits, __ATOMIC_SEQ_CST);
	}
}

/* Copies n bytes from or to guest linear memory; a page the access may not use is a #PF at the first
 * byte on it (linear_to_gpa). Every page is translated before anything is copied, so a store that
 * faults on its second page writes nothing on the first, as the CPU's. With `l2` (L2 runs, VMCS02 is
 * current) the guest-physical addresses of L2's paging structures and of the data are L2's, taken
 * through EPT12 (nested_l2_gpa_to_l1, nested_l2_operand_gpa); data EPT12 does not let the access
 * reach is L1's EPT violation or misconfiguration (GUEST_COPY_EXIT: reflected, nothing copied). */
static int linear_copy(struct vcpu *l2, u64 linear, u8 *buf, u32 n, bool write)
{
	for (int pass = 0; pass < 2; pass++) {
		u64 a = linear;
		u8 *b = buf;
		for (u32 left = n; left;) {
			u64 gpa;
			u32 chunk = (u32)MIN(left, PAGE_SIZE_4K - (a & 0xfff));
			u8 *p;

			struct guest_walk w;
			u32 pf = linear_to_gpa(l2, a, write, &gpa, &w);
			if (l2 && !pf && !nested_l2_operand_gpa(l2, gpa, a, write, &gpa))
				return GUEST_COPY_EXIT;
			if (!pf && !(p = guestmem_ptr(gpa, chunk)))
				pf = NOT_MAPPED | (write ? PF_W : 0);
			if (pf) {
				guest_inject_pf(a, pf & ~NOT_MAPPED);
				return GUEST_COPY_FAULT;
			}
			if (pass == 1)
				set_accessed_dirty(l2, &w, write);
			if (pass == 1 && write)
				memcpy(p, b, chunk);
			else if (pass == 1)
				memcpy(b, p, chunk);
			a += chunk;
			b += chunk;
			left -= chunk;
		}
	}
	return GUEST_COPY_OK;
}

bool guest_linear_read(u64 linear, void *buf, u32 n)
{
	return linear_copy(NULL, linear, buf, n, false) == GUEST_COPY_OK;
}

bool guest_linear_write(u64 linear, const void *buf, u32 n)
{
	return linear_copy(NULL, linear, (u8 *)(uintptr_t)buf, n, true) == GUEST_COPY_OK;
}

int guest_l2_linear_copy(struct vcpu *v, u64 linear, void *buf, u32 n, bool write)
{
	return linear_copy(v, linear, buf, n, write);
}
