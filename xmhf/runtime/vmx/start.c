/* Starting the guest on a CPU: VMXON, VMCS01, then VMLAUNCH. The BSP first puts the guest's boot
 * sector at 0:7C00 and hooks INT 15h; APs enter the guest waiting for its SIPI. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/app.h>
#include <lib/string.h>

NORETURN void vmx_start_guest_on_this_cpu(void)
{
	struct cpu *c = this_cpu();
	struct vcpu *v = page_alloc(ALIGN_UP(sizeof(struct vcpu), PAGE_SIZE_4K) / PAGE_SIZE_4K);

	APP_PARAM_BLOCK apb = { .bootinfo = boot_info, .cmdline = boot_info->cmdline_str };

	v->cpu = c;
	lapic_trap_cpu_init(v);
	vmx_enable_on_this_cpu(v);
	vmcs01_setup(v, c->index == 0);
	if (xmhf_app_main(v, &apb) != APP_SUCCESS)
		panic("the hypapp failed to start on this CPU");
	if (c->index == 0 && boot_info->uefi_fw_pa) {
		printf("XMHF: CPU 0: starting the guest: the UEFI firmware, back in its EFI loader; region %llu KiB, "
		       "%llu KiB free\n",
		       (unsigned long long)(boot_info->region_size >> 10), (unsigned long long)(heap_free_bytes() >> 10));
		c->vcpu = v;
	} else if (c->index == 0) {
		void *bs = guestmem_ptr(0x7c00, 512);
		BUG_ON(!bs);
		memcpy(bs, boot_info->guest_boot_sector, 512);
		e820_hook_install();
		printf("XMHF: CPU 0: starting the guest at 0000:7c00 with DL=0x%02x; region %llu KiB, %llu KiB free\n",
		       boot_info->cmdline.boot_drive, (unsigned long long)(boot_info->region_size >> 10),
		       (unsigned long long)(heap_free_bytes() >> 10));
		c->vcpu = v;
	} else {
		/* An AP enters the guest when the guest's BSP starts it with INIT-SIPI. */
		c->vcpu = v;
		ap_wait_for_sipi(v);
	}
	console_flush(); /* the guest may reprogram the UART at once */
	vmx_launch(v);
}
