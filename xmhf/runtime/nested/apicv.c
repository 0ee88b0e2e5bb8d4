/* TPR shadow and APIC-access virtualization for L2 (SDM Vol. 3, 25.6.8 and chapter 29), run by the
 * CPU on VMCS02: the virtual-APIC and APIC-access addresses are L1 guest-physical addresses, which are
 * host-physical (EPT01 is an identity map), so VMCS02 takes them as they are once checked to be L1's
 * memory. CR8 accesses then go to L1's virtual-APIC page without exits, and the CPU's
 * TPR-below-threshold (43) and APIC-access (44) exits are reflected to L1 like any other. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/mmio-store.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include "nested.h"

#define APIC_OFFSET_TPR 0x80

static u64 r12(struct vcpu *v, u32 enc)
{
	return vmcs12_read(v, enc);
}

/* A page address the CPU will use (SDM 27.2.1.1): 4 KiB aligned, within the physical-address width;
 * and, for L0, L1's own memory, never the hypervisor's. */
static bool page_ok(u64 pa)
{
	return !(pa & 0xfff) && !(pa >> vmx_caps.maxphyaddr) && guestmem_ptr(pa, PAGE_SIZE_4K);
}

/* The address checks of SDM 27.2.1.1 (with the other controls, when they changed). Virtualizing APIC
 * accesses needs no TPR shadow. */
bool nested_apicv_controls_ok(struct vcpu *v)
{
	u32 proc = (u32)r12(v, VMCS_PROC_BASED_CONTROLS), proc2 = nested_proc2_12(v);

	if ((proc & PROC_TPR_SHADOW) && !page_ok(r12(v, VMCS_VIRTUAL_APIC_ADDR)))
		return false;
	if ((proc2 & PROC2_VIRTUALIZE_APIC) && !page_ok(r12(v, VMCS_APIC_ACCESS_ADDR)))
		return false;
	return true;
}

/* The TPR threshold (SDM 27.2.1.1), at every entry: it is a field a VMRESUME copies without the
 * other checks, and L1 may write its virtual-APIC page between entries. Bits 31:4 must be 0 (no
 * virtual-interrupt delivery is offered); without APIC-access virtualization, bits 3:0 must not
 * exceed VTPR[7:4]. */
bool nested_apicv_tpr_ok(struct vcpu *v)
{
	const u8 *vapic;

	/* On every entry: the slot directly, not a lookup by encoding (the nested round trip's cost). */
	if (!(vmcs12_slots(v)[VMCS_IDX_PROC_BASED_CONTROLS] & PROC_TPR_SHADOW))
		return true;
	if (r12(v, VMCS_TPR_THRESHOLD) & ~0xfULL)
		return false;
	if (nested_proc2_12(v) & PROC2_VIRTUALIZE_APIC)
		return true;
	vapic = guestmem_ptr(r12(v, VMCS_VIRTUAL_APIC_ADDR), PAGE_SIZE_4K);
	return vapic && (r12(v, VMCS_TPR_THRESHOLD) & 0xf) <= (u64)(vapic[APIC_OFFSET_TPR] >> 4);
}

/* VMCS02's TPR-shadow and APIC-access fields, as checked (VMCS02 current; its controls already hold
 * L1's "use TPR shadow" and "virtualize APIC accesses"). */
void nested_apicv_setup02(struct vcpu *v)
{
	if (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) {
		vmcs_write(VMCS_VIRTUAL_APIC_ADDR, r12(v, VMCS_VIRTUAL_APIC_ADDR));
		vmcs_write(VMCS_TPR_THRESHOLD, r12(v, VMCS_TPR_THRESHOLD));
	}
	if (nested_proc2_12(v) & PROC2_VIRTUALIZE_APIC)
		vmcs_write(VMCS_APIC_ACCESS_ADDR, r12(v, VMCS_APIC_ACCESS_ADDR));
}

/* The old value for a read-modify-write store to offset 080H: VTPR. */
static u64 read_vtpr(void *ctx, u32 size)
{
	u64 v = *(const volatile u32 *)((const u8 *)ctx + APIC_OFFSET_TPR);

	return size >= 4 ? v : v & ((1ULL << (8 * size)) - 1);
}

/* A store of at most 32 bits to offset 080H with the TPR shadow is virtualized (SDM 29.4.3): it writes
 * VTPR (bytes 081H-083H cleared, as Bochs 2.7 does), then TPR virtualization may give the trap-like
 * TPR-below-threshold exit (SDM 29.1.2). Here the CPU could not do it (EPT01 write-protects the page),
 * so the store is emulated from the instruction as the APIC trap does (lib/mmio-store.c). False if
 * this store is not one the emulator knows: then it is an APIC-access exit. */
static bool virtualize_tpr_write(struct vcpu *v)
{
	u8 bytes[15];
	u8 *vapic = guestmem_ptr(r12(v, VMCS_VIRTUAL_APIC_ADDR), PAGE_SIZE_4K);
	struct mmio_cpu cpu;
	struct mmio_store st;
	u32 n;

	if (!vapic)
		return false;
	if (guest_store_decode(v, read_vtpr, vapic, &cpu, &st, bytes, &n) || st.size > 4 || !st.length)
		return false;
	if (st.write)
		*(volatile u32 *)(vapic + APIC_OFFSET_TPR) = (u8)st.value;
	guest_store_commit(v, &cpu, &st);
	if ((vapic[APIC_OFFSET_TPR] >> 4) < (r12(v, VMCS_TPR_THRESHOLD) & 0xf))
		nested_reflect_with(v, EXIT_REASON_TPR_BELOW_THRESHOLD, 0);
	return true;
}

/* An EPT violation of L2 at L1 guest-physical address gpa1, which EPT01 forbids (L0's read-only
 * xAPIC page): if it is on the APIC-access page L1 virtualizes, it is L1's APIC-access exit, not
 * L0's APIC write (SDM 29.4: the access never reaches the APIC): a virtualized TPR write, or an
 * APIC-access exit reflected with the qualification of SDM 28.2.1 (Table 28-6: page offset in bits
 * 11:0, access type in bits 15:12). Returns true if it was L1's (L2 may have resumed or exited). */
bool nested_apicv_access_exit(struct vcpu *v, u64 gpa1, u64 qual)
{
	bool vectoring = vmcs_read(VMCS_IDT_VECTORING_INFO) & INTR_INFO_VALID;
	u64 type;

	if (!(nested_proc2_12(v) & PROC2_VIRTUALIZE_APIC) || (gpa1 & ~0xfffULL) != r12(v, VMCS_APIC_ACCESS_ADDR))
		return false;
	if ((qual & (1ULL << 7)) && (qual & (1ULL << 8))) /* a linear access */
		type = vectoring ? 3 : (qual & 2) ? 1 : (qual & 4) ? 2 : 0;
	else /* a guest-physical access (a paging-structure entry on the page) */
		type = vectoring ? 10 : 15;
	if (type == 1 && (gpa1 & 0xfff) == APIC_OFFSET_TPR && (r12(v, VMCS_PROC_BASED_CONTROLS) & PROC_TPR_SHADOW) &&
	    virtualize_tpr_write(v))
		return true;
	nested_reflect_with(v, EXIT_REASON_APIC_ACCESS, (type << 12) | (type < 10 ? (gpa1 & 0xfff) : 0));
	return true;
}
