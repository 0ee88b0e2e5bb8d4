/* xmhf-bsgone.efi: XMHF's EFI loader (its objects, linked in) called the way no firmware should call it,
 * to check that it refuses with one clear message and an error status instead of crashing:
 *   uefi-loader-no-system-table      efi_main(image, NULL)
 *   uefi-loader-boot-services-gone   a system table whose BootServices is NULL, as after ExitBootServices
 * Prints "TEST name: PASS|FAIL" on COM1 and returns to GRUB; the runner checks the loader's FATAL lines. */
#include <xmhf/types.h>
#include <xmhf/console.h>
#include "../../../xmhf/boot/uefi/efi.h"

efi_status EFIAPI efi_main(efi_handle image, struct efi_system_table *st);
efi_status EFIAPI bsgone_main(efi_handle image, struct efi_system_table *st);
void efi_relocate(u8 *base);
extern u8 __image_base[];

static void result(const char *name, efi_status got)
{
	if (got == EFI_LOAD_ERROR)
		printf("TEST %s: PASS\n", name);
	else
		printf("TEST %s: FAIL (status 0x%llx, want EFI_LOAD_ERROR)\n", name, (unsigned long long)got);
}

efi_status EFIAPI bsgone_main(efi_handle image, struct efi_system_table *st)
{
	static struct efi_system_table fake;

	efi_relocate(__image_base);
	console_init(0x3f8, 115200, 8, 'n', 1);
	printf("\nxmhf-bsgone: calling XMHF's EFI loader without a system table\n");
	result("uefi-loader-no-system-table", efi_main(image, NULL));
	fake = *st;
	fake.boot_services = NULL;
	printf("xmhf-bsgone: calling XMHF's EFI loader with BootServices = NULL\n");
	result("uefi-loader-boot-services-gone", efi_main(image, &fake));
	return EFI_SUCCESS;
}
