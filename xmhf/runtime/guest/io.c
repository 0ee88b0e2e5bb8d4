/* Port I/O exits. VMCS01 uses I/O bitmaps (one pair shared by all CPUs), empty unless a hypapp asks
 * for a port, or the hypervisor watches the guest's power-off: the ACPI PM1a control port from the
 * FADT, and the emulators' power-off ports (Bochs 0x8900, QEMU's isa-debug-exit 0xf4). Those accesses
 * are performed unchanged after the hypapp's and the event logger's shutdown hooks ran. VMCS02 merges
 * the same bitmaps into L1's (nested/entry.c), so L2 reaches none of these ports behind L0's back.
 * String I/O (INS/OUTS, REP or not) is emulated one element per exit. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <lib/acpi.h>
#include <lib/nested-logic.h>
#include <x86/cpu.h>
#include <x86/io.h>
#include <x86/vmx.h>

#define PM1_SLP_EN (1U << 13)
#define PORT_BOCHS_SHUTDOWN 0x8900
#define PORT_QEMU_EXIT 0xf4

static u8 *bitmap;    /* VMCS01's, 8 KiB: A (ports 0-7fff) then B (8000-ffff); 1 = exit */
static u8 *watched;   /* ports the hypervisor itself watches */
static u8 *app_ports; /* ports a hypapp intercepts; bitmap = watched | app_ports */
static struct sparse_bitmap l0_ports[2]; /* bitmap's pages A and B, indexed for VMCS02's merge */
static u16 pm1a_cnt;

static void set_bit(u8 *b, u32 port, bool on)
{
	if (on)
		b[port / 8] |= (u8)(1 << (port % 8));
	else
		b[port / 8] &= (u8)~(1 << (port % 8));
}

static bool test_bit(const u8 *b, u32 port)
{
	return (b[port / 8] >> (port % 8)) & 1;
}

static void index_l0_ports(void)
{
	for (u32 i = 0; i < 2; i++) {
		l0_ports[i].bits = (const u64 *)(uintptr_t)(bitmap + i * PAGE_SIZE_4K);
		l0_ports[i].nwords = PAGE_SIZE_4K / 8;
		sparse_bitmap_index(&l0_ports[i]);
	}
}

void io_bitmap_set(u32 port, u32 count, bool intercept)
{
	for (u32 p = port; p < port + count && p < 0x10000; p++) {
		set_bit(app_ports, p, intercept);
		set_bit(bitmap, p, intercept || test_bit(watched, p));
	}
	index_l0_ports(); /* VMCS02s take the change at their next entry */
	nested_l0_bitmaps_changed();
}

const struct sparse_bitmap *io_bitmap_l0(u32 page)
{
	return &l0_ports[page];
}

static const void *map_phys(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	return guestmem_ptr(pa, len);
}

void io_intercept_init(void)
{
	u64 fadt;

	bitmap = page_alloc(2);
	watched = page_alloc(2);
	app_ports = page_alloc(2);
	if (boot_info->rsdp_pa && acpi_find_table(map_phys, NULL, boot_info->rsdp_pa, "FACP", &fadt) == 0) {
		const u8 *f = guestmem_ptr(fadt, 68);
		if (f)
			pm1a_cnt = (u16)(f[64] | f[65] << 8);
	}
	u32 ports[] = { PORT_BOCHS_SHUTDOWN, PORT_QEMU_EXIT, pm1a_cnt };
	for (u32 i = 0; i < ARRAY_SIZE(ports); i++)
		if (ports[i]) {
			set_bit(watched, ports[i], true);
			set_bit(bitmap, ports[i], true);
		}
	index_l0_ports();
}

u64 io_bitmap_a(void)
{
	return (u64)(uintptr_t)bitmap;
}

u64 io_bitmap_b(void)
{
	return (u64)(uintptr_t)bitmap + PAGE_SIZE_4K;
}

static bool is_shutdown(u32 port, bool out, u32 value)
{
	if (!out)
		return false;
	if (port == PORT_BOCHS_SHUTDOWN)
		return (value & 0xff) == 'S'; /* the first byte of "Shutdown" */
	if (port == PORT_QEMU_EXIT)
		return true;
	return pm1a_cnt && port == pm1a_cnt && (value & PM1_SLP_EN);
}

static u32 port_in(u32 port, u32 size)
{
	return size == 1 ? inb((u16)port) : size == 2 ? inw((u16)port) : inl((u16)port);
}

static void port_out(u32 port, u32 size, u32 value)
{
	if (size == 1)
		outb((u16)port, (u8)value);
	else if (size == 2)
		outw((u16)port, (u16)value);
	else
		outl((u16)port, value);
}

/* One access as the guest asked it: the shutdown hooks see a power-off write first, a hypapp that
 * intercepts the port may take the access over (r: the registers it sees, RAX holding the data). */
static void access(struct vcpu *v, xmhf_regs_t *r, u32 port, bool in, u32 size)
{
	if (test_bit(watched, port) && is_shutdown(port, !in, (u32)r->gpr[REG_RAX])) {
		xmhf_app_handleshutdown(v, r);
		event_log_print_all();
		console_flush();
	}
	if (test_bit(app_ports, port) &&
	    xmhf_app_handleintercept_portaccess(v, r, port, in ? IO_TYPE_IN : IO_TYPE_OUT, size) == APP_IOINTERCEPT_SKIP)
		return;
	if (!in) {
		port_out(port, size, (u32)r->gpr[REG_RAX]);
		return;
	}
	/* IN writes AL/AX/EAX; a 32-bit IN zero-extends into RAX. */
	u64 mask = size == 4 ? ~0ULL : (1ULL << (8 * size)) - 1;
	r->gpr[REG_RAX] = (r->gpr[REG_RAX] & ~mask) | port_in(port, size);
}

/* reg += delta in the instruction's address size (16: the low word only; 32: zero-extended). */
static u64 add_addr(u64 reg, s64 delta, u32 asize)
{
	if (asize == 2)
		return reg + (u64)delta;
	if (asize == 1)
		return (u32)(reg + (u64)delta);
	return (reg & ~0xffffULL) | ((reg + (u64)delta) & 0xffff);
}

/* INS/OUTS (SDM Vol. 2, INS/OUTS; Vol. 3, 28.2.1 and 28.2.5): one element per exit, from or to the
 * linear address the exit reports; a REP with elements left does not advance RIP, so the instruction
 * exits again for the next one, and interrupts can arrive in between as on hardware. A hypapp sees
 * each element as an IN/OUT with the data in RAX. */
static void string_io(struct vcpu *v, u32 port, bool in, u32 size, bool rep)
{
	u32 info = (u32)vmcs_read(VMCS_EXIT_INSTRUCTION_INFO);
	u32 asize = (info >> 7) & 7; /* 0: 16-bit, 1: 32-bit, 2: 64-bit */
	u64 linear = vmcs_read(VMCS_GUEST_LINEAR_ADDRESS);
	u64 *count = &v->regs.gpr[REG_RCX], *index = &v->regs.gpr[in ? REG_RDI : REG_RSI];
	u64 cmask = asize == 2 ? ~0ULL : asize == 1 ? 0xffffffffULL : 0xffffULL;
	s64 delta = (vmcs_read(VMCS_GUEST_RFLAGS) & RFLAGS_DF) ? -(s64)size : (s64)size;
	xmhf_regs_t r = v->regs;
	u32 data = 0;

	if (!(vmx_caps.basic & VMX_BASIC_INSOUTS_INFO))
		asize = guest_code_bits() == 64 ? 2 : guest_code_bits() == 32 ? 1 : 0; /* no 67h seen */
	if (rep && !(*count & cmask)) {
		guest_skip_instruction();
		return;
	}
	if (!in && !guest_linear_read(linear, &data, size))
		return; /* #PF injected, nothing done */
	r.gpr[REG_RAX] = data;
	access(v, &r, port, in, size);
	if (in) {
		data = (u32)r.gpr[REG_RAX];
		if (!guest_linear_write(linear, &data, size))
			return;
	}
	*index = add_addr(*index, delta, asize);
	if (rep) {
		*count = add_addr(*count, -1, asize);
		if (*count & cmask)
			return; /* again for the next element */
	}
	guest_skip_instruction();
}

void handle_io(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 size = (u32)(q & 7) + 1, port = (u32)(q >> 16) & 0xffff;
	bool in = (q >> 3) & 1, string = (q >> 4) & 1, rep = (q >> 5) & 1;

	if (string) {
		string_io(v, port, in, size, rep);
		return;
	}
	access(v, &v->regs, port, in, size);
	guest_skip_instruction();
}
