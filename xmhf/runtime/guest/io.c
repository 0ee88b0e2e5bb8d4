/* Port I/O exits. VMCS01 uses I/O bitmaps (one pair shared by all CPUs), empty unless a hypapp asks
 * for a port, or the hypervisor watches the guest's power-off: the ACPI PM1a control port from the
 * FADT, and the emulators' power-off ports (Bochs 0x8900, QEMU's isa-debug-exit 0xf4). Those accesses
 * are performed unchanged after the hypapp's and the event logger's shutdown hooks ran. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <lib/acpi.h>
#include <x86/io.h>

#define PM1_SLP_EN (1U << 13)
#define PORT_BOCHS_SHUTDOWN 0x8900
#define PORT_QEMU_EXIT 0xf4

static u8 *bitmap;    /* VMCS01's, 8 KiB: A (ports 0-7fff) then B (8000-ffff); 1 = exit */
static u8 *watched;   /* ports the hypervisor itself watches */
static u8 *app_ports; /* ports a hypapp intercepts; bitmap = watched | app_ports */
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

void io_bitmap_set(u32 port, u32 count, bool intercept)
{
	for (u32 p = port; p < port + count && p < 0x10000; p++) {
		set_bit(app_ports, p, intercept);
		set_bit(bitmap, p, intercept || test_bit(watched, p));
	}
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

static void perform(struct vcpu *v, u32 port, bool out, u32 size)
{
	u64 *rax = &v->regs.gpr[REG_RAX];

	if (out) {
		if (size == 1)
			outb((u16)port, (u8)*rax);
		else if (size == 2)
			outw((u16)port, (u16)*rax);
		else
			outl((u16)port, (u32)*rax);
	} else {
		/* IN writes AL/AX/EAX; a 32-bit IN zero-extends into RAX. */
		if (size == 1)
			*rax = (*rax & ~0xffULL) | inb((u16)port);
		else if (size == 2)
			*rax = (*rax & ~0xffffULL) | inw((u16)port);
		else
			*rax = inl((u16)port);
	}
}

void handle_io(struct vcpu *v)
{
	u64 q = vmcs_read(VMCS_EXIT_QUALIFICATION);
	u32 size = (u32)(q & 7) + 1, port = (u32)(q >> 16) & 0xffff;
	bool in = (q >> 3) & 1, string = (q >> 4) & 1;

	if (string)
		panic("string I/O (INS/OUTS) to intercepted port 0x%x is not supported", port);
	if (test_bit(watched, port) && is_shutdown(port, !in, (u32)v->regs.gpr[REG_RAX])) {
		xmhf_app_handleshutdown(v, &v->regs);
		event_log_print_all();
		console_flush();
	}
	if (test_bit(app_ports, port) &&
	    xmhf_app_handleintercept_portaccess(v, &v->regs, port, in ? IO_TYPE_IN : IO_TYPE_OUT, size) ==
		    APP_IOINTERCEPT_SKIP) {
		guest_skip_instruction();
		return;
	}
	perform(v, port, !in, size);
	guest_skip_instruction();
}
