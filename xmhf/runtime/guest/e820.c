/* INT 15h E820 for the guest (ACPI spec, "INT 15H, E820H - Query System Address Map"): IVT entry 15h
 * points at a stub in the BIOS data area (0040:00AC: VMCALL; IRET) so every INT 15h exits; E820 calls
 * are answered from the guest map (the hypervisor region reserved), all others continue at the BIOS's
 * own handler, saved after the stub. The same place XMHF uses, so an XMHF inside the guest sees the hook
 * is taken and leaves it alone. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <x86/cpu.h>

#define HOOK_SEG 0x40
#define HOOK_OFF 0xac
#define HOOK_LIN (HOOK_SEG * 16 + HOOK_OFF)
#define SMAP 0x534d4150

void e820_hook_install(void)
{
	u16 *ivt15 = guestmem_ptr(0x15 * 4, 4);
	u8 *stub = guestmem_ptr(HOOK_LIN, 8);

	BUG_ON(!ivt15 || !stub);
	if (ivt15[0] == HOOK_OFF && ivt15[1] == HOOK_SEG)
		return; /* already hooked (a nested XMHF) */
	stub[0] = 0x0f; /* VMCALL */
	stub[1] = 0x01;
	stub[2] = 0xc1;
	stub[3] = 0xcf; /* IRET */
	memcpy(stub + 4, ivt15, 4);  /* the BIOS handler's IP:CS */
	ivt15[0] = HOOK_OFF;
	ivt15[1] = HOOK_SEG;
}

static u64 linear(u32 seg_base_field, u64 off)
{
	return vmcs_read(seg_base_field) + (off & 0xffff);
}

/* Sets or clears CF in the FLAGS image INT pushed (SS:SP+4), which the stub's IRET restores. */
static bool set_carry(bool cf)
{
	u16 *flags = guestmem_ptr(linear(VMCS_GUEST_SS_BASE, vmcs_read(VMCS_GUEST_RSP) + 4), 2);

	if (!flags)
		return false;
	*flags = cf ? (*flags | 1) : (*flags & ~1);
	return true;
}

bool e820_hook_handle(struct vcpu *v)
{
	const struct e820_map *m = &boot_info->e820_guest;
	u64 *r = v->regs.gpr;

	if (vmcs_read(VMCS_GUEST_CS_BASE) != HOOK_SEG * 16 || vmcs_read(VMCS_GUEST_RIP) != HOOK_OFF ||
	    (vmcs_read(VMCS_GUEST_CR0) & CR0_PE && !(vmcs_read(VMCS_GUEST_RFLAGS) & (1ULL << 17))))
		return false;
	if ((u16)r[REG_RAX] == 0xe820 && (u32)r[REG_RDX] == SMAP && (u32)r[REG_RCX] >= 20) {
		u32 idx = (u32)r[REG_RBX];
		if (idx >= m->count) {
			set_carry(true);
		} else {
			u32 len = (u32)r[REG_RCX] >= 24 ? 24 : 20;
			u8 *dst = guestmem_ptr(linear(VMCS_GUEST_ES_BASE, r[REG_RDI]), len);
			if (!dst) {
				set_carry(true);
			} else {
				struct { u64 base, length; u32 type, ext; } PACKED e = {
					m->e[idx].base, m->e[idx].length, m->e[idx].type, 1 /* enabled */
				};
				memcpy(dst, &e, len);
				r[REG_RAX] = SMAP;
				r[REG_RCX] = len;
				r[REG_RBX] = idx + 1 < m->count ? idx + 1 : 0;
				set_carry(false);
			}
		}
		guest_skip_instruction(); /* on to the IRET */
		return true;
	}
	/* Not E820: continue in the BIOS's handler; its IRET returns to the caller. */
	u16 *orig = guestmem_ptr(HOOK_LIN + 4, 4);
	vmcs_write(VMCS_GUEST_CS_SELECTOR, orig[1]);
	vmcs_write(VMCS_GUEST_CS_BASE, (u64)orig[1] << 4);
	vmcs_write(VMCS_GUEST_RIP, orig[0]);
	return true;
}
