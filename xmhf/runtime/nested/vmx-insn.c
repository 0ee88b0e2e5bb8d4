/* L1's VMX instructions (SDM Vol. 3, chapter 31 "VMX instruction reference"): operand decoding from the
 * VM-exit instruction information (SDM 28.2.5), the #UD/#GP conditions in L1's view (its CR4.VMXE is
 * the read shadow's), and the VMsucceed / VMfailInvalid / VMfailValid results with the SDM's error
 * numbers (31.4). VMCS12s live in L1's memory in this hypervisor's layout (vmcs12.c).
 * VMLAUNCH/VMRESUME go to entry.c. VMFUNC is not emulated: the hypervisor stops with a clear report. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/vmcs-fields.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include "nested.h"


/* VM-instruction error numbers (SDM 31.4). */
#define VMXERR_VMCLEAR_INVALID_ADDR 2
#define VMXERR_VMCLEAR_VMXON_PTR 3
#define VMXERR_VMPTRLD_INVALID_ADDR 9
#define VMXERR_VMPTRLD_VMXON_PTR 10
#define VMXERR_VMPTRLD_BAD_REVISION 11
#define VMXERR_UNSUPPORTED_FIELD 12
#define VMXERR_WRITE_READ_ONLY 13
#define VMXERR_VMXON_IN_ROOT 15
#define VMXERR_INVALID_INVEPT_INVVPID 28

static void set_result_flags(u64 set)
{
	vmcs_write(VMCS_GUEST_RFLAGS, (vmcs_read(VMCS_GUEST_RFLAGS) & ~RFLAGS_ARITH) | set);
	guest_skip_instruction();
}

void nested_vm_succeed(void)
{
	set_result_flags(0);
}

void nested_vm_fail_invalid(void)
{
	set_result_flags(RFLAGS_CF);
}

/* VMfail for an entry the CPU refused, L1's RIP moved past VMLAUNCH/VMRESUME by the caller. */
void nested_vm_fail_noskip(struct vcpu *v, u32 error)
{
	u64 set = RFLAGS_CF;

	if (v->l1_current_vmcs != ~0ULL && error) {
		vmcs12_write_field(v, VMCS_VM_INSTRUCTION_ERROR, error);
		shadow_write_field(v, VMCS_VM_INSTRUCTION_ERROR, error);
		set = RFLAGS_ZF;
	}
	vmcs_write(VMCS_GUEST_RFLAGS, (vmcs_read(VMCS_GUEST_RFLAGS) & ~RFLAGS_ARITH) | set);
}

void nested_vm_fail(struct vcpu *v, u32 error)
{
	if (v->l1_current_vmcs == ~0ULL) {
		nested_vm_fail_invalid();
		return;
	}
	vmcs12_write_field(v, VMCS_VM_INSTRUCTION_ERROR, error);
	shadow_write_field(v, VMCS_VM_INSTRUCTION_ERROR, error);
	set_result_flags(RFLAGS_ZF);
}

static bool in_64bit_mode(void)
{
	return (vmcs_read(VMCS_GUEST_IA32_EFER) & EFER_LMA) && (vmcs_read(VMCS_GUEST_CS_ACCESS_RIGHTS) & (1 << 13));
}

/* #UD and #GP conditions shared by the VMX instructions (the first lines of each one's operation
 * section) that are L0's to check. CR0.PE = 0, RFLAGS.VM = 1 and IA32_EFER.LMA = 1 with CS.L = 0 raise
 * #UD before the VM exit ("IF ... THEN #UD; ELSIF in VMX non-root operation THEN VM exit", SDM Vol. 3
 * chapter 31; Bochs 2.7's cpu/vmx.cc checks them first too), so no exit comes with them; L1's
 * CR4.VMXE (its read shadow: L0 keeps the bit set), its VMX operation and its CPL (#GP, after the
 * VM exit) are left. In VMX operation CR4.VMXE is set (MOV to CR4 cannot clear it then: cr.c), so
 * only VMXON looks at it. Returns false if an exception was injected. */
static bool checks(struct vcpu *v, bool need_vmx_operation)
{
	if (need_vmx_operation ? !v->l1_vmx_on : !(guest_cr4() & CR4_VMXE)) {
		guest_inject_ud();
		return false;
	}
	/* In protected mode outside virtual-8086 mode (above), the CPL is SS.DPL (SDM 5.5). */
	if ((vmcs_read(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3) {
		guest_inject_gp();
		return false;
	}
	return true;
}

/* The memory operand's effective address (the offset in its segment, address-size masked) from the
 * instruction information and the qualification (SDM 28.2.5, table 28-13). */
static u64 operand_offset(struct vcpu *v, u32 info)
{
	u64 addr = vmcs_read(VMCS_EXIT_QUALIFICATION); /* displacement */
	u32 scale = info & 3, asize = (info >> 7) & 7;
	u32 index = (info >> 18) & 15, base = (info >> 23) & 15;

	if (!(info & (1U << 22)))
		addr += (index == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[index]) << scale;
	if (!(info & (1U << 27)))
		addr += base == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[base];
	if (asize == 0)
		addr &= 0xffff;
	else if (asize == 1)
		addr &= 0xffffffffULL;
	return addr;
}

static bool canonical(u64 a)
{
	return (u64)((s64)(a << 16) >> 16) == a;
}

/* The memory operand's linear address, checked as the CPU checks a data access (the "Protected Mode
 * Exceptions" and "64-Bit Mode Exceptions" of each instruction in SDM Vol. 3 31.3): in 64-bit mode every
 * byte must be canonical (SDM Vol. 1 3.3.7.1) and only FS and GS have bases (3.4.4); otherwise the
 * segment must be usable, of the right type, and hold every byte within its limit (seg_access_ok).
 * A fault is #SS(0) through SS and #GP(0) otherwise. False if a fault was injected. */
static bool operand_address(struct vcpu *v, u32 info, u32 size, bool write, u64 *linear)
{
	u32 seg = (info >> 15) & 7;
	u64 off = operand_offset(v, info), a;
	u32 vec = seg == 2 ? 12 : 13;

	if (seg > 5)
		seg = 3; /* reserved encodings: the CPU reports 0-5 */
	if (in_64bit_mode()) {
		a = off + (seg >= 4 ? vmcs_read(VMCS_GUEST_ES_BASE + 2 * seg) : 0);
		if (!canonical(a) || !canonical(a + size - 1)) {
			guest_inject_exception(vec, true, 0);
			return false;
		}
	} else {
		struct vmx_segment s;

		vmcs_read_guest_segment(seg, &s);
		if (!seg_access_ok(&s, (u32)off, size, write)) {
			guest_inject_exception(vec, true, 0);
			return false;
		}
		a = (off + s.base) & 0xffffffffULL;
	}
	*linear = a;
	return true;
}

/* L1's operand through L1's paging, or L2's (VMREAD/VMWRITE through VMCS shadowing, shadow12.c)
 * through L2's paging and EPT12. */
static bool operand_copy(struct vcpu *v, u32 info, void *buf, u32 size, bool write)
{
	u64 a;

	if (!operand_address(v, info, size, write, &a))
		return false;
	if (!v->in_l2)
		return write ? guest_linear_write(a, buf, size) : guest_linear_read(a, buf, size);
	return guest_l2_linear_copy(v, a, buf, size, write) == GUEST_COPY_OK;
}

static bool operand_read(struct vcpu *v, u32 info, void *buf, u32 size)
{
	return operand_copy(v, info, buf, size, false);
}

static bool operand_write(struct vcpu *v, u32 info, const void *buf, u32 size)
{
	return operand_copy(v, info, (void *)(uintptr_t)buf, size, true);
}

/* Reads the 64-bit memory operand (VMXON, VMCLEAR, VMPTRLD). False if a fault was injected. */
static bool read_m64(struct vcpu *v, u64 *value)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);

	if (info & (1U << 10)) { /* register operand: #UD (these instructions take only memory) */
		guest_inject_ud();
		return false;
	}
	return operand_read(v, info, value, 8);
}

static bool bad_address(u64 pa)
{
	return (pa & 0xfff) || (pa >> vmx_caps.maxphyaddr) || !guestmem_ptr(pa, PAGE_SIZE_4K);
}

static void emulate_vmxon(struct vcpu *v)
{
	u64 ptr;
	u32 rev;

	if (!checks(v, false))
		return;
	if (v->l1_vmx_on) {
		nested_vm_fail(v, VMXERR_VMXON_IN_ROOT);
		return;
	}
	/* #GP if L1's CR0/CR4 break the fixed bits, or its IA32_FEATURE_CONTROL forbids VMX (it never
	 * does: we show it locked with VMX enabled). */
	if ((guest_cr0() & vmx_caps.cr0_fixed0) != vmx_caps.cr0_fixed0 ||
	    (guest_cr4() & vmx_caps.cr4_fixed0) != vmx_caps.cr4_fixed0) {
		guest_inject_gp();
		return;
	}
	if (!read_m64(v, &ptr))
		return;
	if (bad_address(ptr)) {
		nested_vm_fail_invalid();
		return;
	}
	rev = *(const u32 *)guestmem_ptr(ptr, 4);
	if (rev != nested_vmcs_revision()) {
		nested_vm_fail_invalid();
		return;
	}
	v->l1_vmx_on = 1;
	v->l1_vmxon_ptr = ptr;
	v->l1_current_vmcs = ~0ULL;
	nested_vm_succeed();
}

static void emulate_vmxoff(struct vcpu *v)
{
	if (!checks(v, true))
		return;
	shadow_flush(v, true);
	vmcs12_release(v);
	v->l1_vmx_on = 0;
	v->vmcs02_of = ~0ULL;
	ipi_vmxoff(v);
	nested_vm_succeed();
}

static void emulate_vmclear(struct vcpu *v)
{
	u64 ptr;

	if (!checks(v, true) || !read_m64(v, &ptr))
		return;
	if (bad_address(ptr)) {
		nested_vm_fail(v, VMXERR_VMCLEAR_INVALID_ADDR);
		return;
	}
	if (ptr == v->l1_vmxon_ptr) {
		nested_vm_fail(v, VMXERR_VMCLEAR_VMXON_PTR);
		return;
	}
	/* The current VMCS12's data goes back to L1's region (the shadow's first); VMCLEAR makes the
	 * launch state in the region "clear" (SDM 31.3 VMCLEAR). */
	if (ptr == v->l1_current_vmcs) {
		shadow_flush(v, true);
		vmcs12_release(v);
	}
	vmcs12_clear_in_l1(ptr);
	if (ptr == v->vmcs02_of)
		v->vmcs02_of = ~0ULL;
	nested_vm_succeed();
}

static void emulate_vmptrld(struct vcpu *v)
{
	u64 ptr;

	if (!checks(v, true) || !read_m64(v, &ptr))
		return;
	if (bad_address(ptr)) {
		nested_vm_fail(v, VMXERR_VMPTRLD_INVALID_ADDR);
		return;
	}
	if (ptr == v->l1_vmxon_ptr) {
		nested_vm_fail(v, VMXERR_VMPTRLD_VMXON_PTR);
		return;
	}
	/* Bit 31, the shadow-VMCS indicator, only where VMCS shadowing is offered (SDM 31.3 VMPTRLD). */
	u32 rev = *(const u32 *)guestmem_ptr(ptr, 4);
	if (nested_offered_caps()->proc2_1 & PROC2_VMCS_SHADOWING)
		rev &= 0x7fffffff;
	if (rev != nested_vmcs_revision()) {
		nested_vm_fail(v, VMXERR_VMPTRLD_BAD_REVISION);
		return;
	}
	if (ptr != v->l1_current_vmcs) {
		shadow_flush(v, true);
		vmcs12_release(v);
		vmcs12_load(v, ptr);
		v->vmcs02_of = ~0ULL; /* the cached VMCS02 belongs to another VMCS12 (dirty bits are per VMCS12) */
	}
	shadow_load(v);
	nested_vm_succeed();
}

static void emulate_vmptrst(struct vcpu *v)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);

	if (!checks(v, true))
		return;
	if (info & (1U << 10)) {
		guest_inject_ud();
		return;
	}
	if (!operand_write(v, info, &v->l1_current_vmcs, 8))
		return;
	nested_vm_succeed();
}

/* VMREAD and VMWRITE: the field encoding is in reg2; the other operand is a register (reg1, bits
 * 6:3) or memory; operands are 64 bits in 64-bit mode, else 32 (SDM 31.3 VMREAD/VMWRITE).
 * For L1 the VMCS is the current VMCS12. For L2 (`l2`: VMCS02 is current and holds L2's state) it is
 * the shadow VMCS VMCS12's link pointer names, the access one VMCS12's bitmaps let through
 * (shadow12.c): the #UD conditions were the CPU's before the exit; CPL > 0 is #GP(0); VMfailValid
 * writes its error into VMCS12, the current VMCS (SDM 31.2). */
static void emulate_vmread_vmwrite(struct vcpu *v, bool write, bool l2)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);
	u32 reg2 = (info >> 28) & 15, reg1 = (info >> 3) & 15;
	bool mem = !(info & (1U << 10));
	u32 opsize = in_64bit_mode() ? 8 : 4;
	u64 enc = reg2 == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg2];
	u64 value = 0, vmcs;
	int idx;

	if (l2 && guest_cpl() != 0) {
		guest_inject_gp();
		return;
	}
	if (!l2 && !checks(v, true))
		return;
	if (opsize == 4)
		enc = (u32)enc;
	if (!l2) /* the fields L1 touches outside the shadow VMCS (the event logger's table) */
		event_log_key(v, write ? EXIT_REASON_VMWRITE : EXIT_REASON_VMREAD, (u32)enc);
	vmcs = l2 ? vmcs12_read(v, VMCS_VMCS_LINK_POINTER) : v->l1_current_vmcs;
	if (vmcs == ~0ULL) {
		nested_vm_fail_invalid();
		return;
	}
	/* VMWRITE reads its source before it looks at the field (SDM 31.3 VMWRITE): a faulting memory
	 * operand faults even with an unsupported field. */
	if (write && mem && !operand_read(v, info, &value, opsize))
		return;
	idx = vmcs_field_index((u32)enc);
	if ((enc >> 32) || idx < 0 || !nested_field_supported((u32)idx)) {
		nested_vm_fail(v, VMXERR_UNSUPPORTED_FIELD);
		return;
	}
	if (write) {
		if (!mem)
			value = reg1 == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg1];
		if (opsize == 4)
			value = (u32)value;
		/* With IA32_VMX_MISC bit 29 (caps.c) every supported field is writable (SDM A.6). */
		if (vmcs_field_read_only((u32)enc) && !(nested_vmx_misc() & (1ULL << 29))) {
			nested_vm_fail(v, VMXERR_WRITE_READ_ONLY);
			return;
		}
		if (l2) {
			vmcs12_region_write(vmcs, (u32)enc, value);
		} else {
			vmcs12_write_field(v, (u32)enc, value);
			shadow_write_field(v, (u32)enc, value); /* a read-only field the shadow VMCS holds */
			nested_vmcs12_dirty(v, (u32)idx);
		}
	} else {
		value = l2 ? vmcs12_region_read(vmcs, (u32)enc) : vmcs12_read(v, (u32)enc);
		if (opsize == 4)
			value = (u32)value;
		if (mem) {
			if (!operand_write(v, info, &value, opsize))
				return;
		} else if (reg1 == REG_RSP) {
			vmcs_write(VMCS_GUEST_RSP, value);
		} else {
			v->regs.gpr[reg1] = value; /* 32-bit results zero-extend (outside 64-bit mode RAX's top is unused) */
		}
	}
	nested_vm_succeed();
}

/* L2's VMREAD/VMWRITE exit (VMCS02 never shadows, entry.c): with VMCS shadowing in VMCS12 and the
 * field's bitmap bit 0, L0 performs it on L1's shadow VMCS and L2 resumes (true); otherwise it is
 * L1's exit (false). An exception it raises is L2's or L1's exit (nested_l2_exception). */
bool nested_l2_vmread_vmwrite(struct vcpu *v, bool write)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);
	u32 reg2 = (info >> 28) & 15;
	u64 enc = reg2 == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg2];

	if (!in_64bit_mode())
		enc = (u32)enc;
	if (nested_shadow12_exits_to_l1(v, write, enc))
		return false;
	emulate_vmread_vmwrite(v, write, true);
	return v->in_l2; /* an exception L1 intercepts went to L1 (guest_inject_exception) */
}

/* INVEPT and INVVPID (SDM 31.3): the type is in reg2 (64 bits in 64-bit mode, else 32), the 128-bit
 * descriptor in memory. After the checks, what L0 cached for L2 on L1's behalf is invalidated: EPT02s
 * (ept02.c) and the translations tagged with VPID02 (vpid02.c). */
static void emulate_invept_invvpid(struct vcpu *v, bool ept)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);
	u32 reg2 = (info >> 28) & 15;
	u64 type = reg2 == REG_RSP ? vmcs_read(VMCS_GUEST_RSP) : v->regs.gpr[reg2];
	u64 cap = vmx_caps.ept_vpid;
	u64 desc[2];

	if (!checks(v, true))
		return;
	/* Not offered to L1 (caps.c: no EPT, no VPID yet): #UD as on a CPU without them. */
	if (!(ept ? nested_offers_ept() : nested_offers_vpid())) {
		guest_inject_ud();
		return;
	}
	if (!in_64bit_mode())
		type = (u32)type;
	if (info & (1U << 10)) {
		guest_inject_ud();
		return;
	}
	if (!operand_read(v, info, desc, 16))
		return;
	if (ept) {
		/* Types 1 (single-context) and 2 (all-context), if supported (EPT_VPID_CAP bits 25, 26). */
		if ((type != 1 && type != 2) || !(cap & (1ULL << (24 + type)))) {
			nested_vm_fail(v, VMXERR_INVALID_INVEPT_INVVPID);
			return;
		}
		if (type == 1) {
			u64 eptp = desc[0];
			u32 memtype = eptp & 7;
			bool type_ok = (memtype == 0 && (cap & (1ULL << 8))) || (memtype == 6 && (cap & (1ULL << 14)));
			if (!type_ok || ((eptp >> 3) & 7) != 3 || (eptp & (0x1fULL << 7)) ||
			    ((eptp & (1ULL << 6)) && !(cap & (1ULL << 21))) || (eptp >> vmx_caps.maxphyaddr)) {
				nested_vm_fail(v, VMXERR_INVALID_INVEPT_INVVPID);
				return;
			}
		}
	} else {
		/* Types 0-3 (individual-address, single-context, all-context, single-context retaining
		 * globals), if supported (EPT_VPID_CAP bits 40-43). */
		u64 vpid = desc[0] & 0xffff, linear = desc[1];
		if (type > 3 || !(cap & (1ULL << (40 + type))) || (desc[0] >> 16) || (type != 2 && vpid == 0)) {
			nested_vm_fail(v, VMXERR_INVALID_INVEPT_INVVPID);
			return;
		}
		/* Individual-address: the address must be canonical (48-bit linear addresses). */
		if (type == 0 && !canonical(linear)) {
			nested_vm_fail(v, VMXERR_INVALID_INVEPT_INVVPID);
			return;
		}
	}
	/* EPT02s derive from EPT12s: drop the one of that EPTP, or all of this CPU's. */
	if (ept)
		ept02_invept(v, type == 2, desc[0]);
	else
		vpid02_invvpid(v, (u32)type, (u16)desc[0], desc[1]);
	nested_vm_succeed();
}

void nested_handle_vmx_instruction(struct vcpu *v)
{
	switch (v->exit_reason & 0xffff) {
	case EXIT_REASON_VMXON:
		emulate_vmxon(v);
		break;
	case EXIT_REASON_VMXOFF:
		emulate_vmxoff(v);
		break;
	case EXIT_REASON_VMCLEAR:
		emulate_vmclear(v);
		break;
	case EXIT_REASON_VMPTRLD:
		emulate_vmptrld(v);
		break;
	case EXIT_REASON_VMPTRST:
		emulate_vmptrst(v);
		break;
	case EXIT_REASON_VMREAD:
		emulate_vmread_vmwrite(v, false, false);
		break;
	case EXIT_REASON_VMWRITE:
		emulate_vmread_vmwrite(v, true, false);
		break;
	case EXIT_REASON_INVEPT:
		emulate_invept_invvpid(v, true);
		break;
	case EXIT_REASON_INVVPID:
		emulate_invept_invvpid(v, false);
		break;
	case EXIT_REASON_VMLAUNCH:
	case EXIT_REASON_VMRESUME:
		if (checks(v, true)) {
			shadow_flush(v, false); /* VMCS12 complete in memory for the entry */
			nested_vmentry(v, (v->exit_reason & 0xffff) == EXIT_REASON_VMLAUNCH);
			if (!v->in_l2)
				shadow_load(v); /* VMfail: L1 goes on with the same VMCS */
		}
		break;
	default:
		/* VMFUNC: VMCS01 does not enable VM functions, so L1's VMFUNC is #UD in the CPU and never
		 * exits (L2's VMFUNC exits go to vmfunc.c); #UD all the same if one ever comes. */
		guest_inject_ud();
	}
}
