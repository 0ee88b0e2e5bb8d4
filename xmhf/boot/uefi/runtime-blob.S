/* The runtime image inside the EFI loader: one file to copy to the ESP, and no gunzip in the loader
 * (GRUB gunzips the BIOS module; chainloader does not). */
	.section .data.runtime, "aw"
	.balign 4096
	.globl uefi_runtime_image, uefi_runtime_image_end
uefi_runtime_image:
	.incbin RUNTIME_BIN
uefi_runtime_image_end:
