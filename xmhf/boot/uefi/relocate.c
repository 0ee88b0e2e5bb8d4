/* Self-relocation of an EFI image linked at 0 (start.S calls it before anything else): adds the load
 * address to every R_X86_64_RELATIVE slot. Only PC-relative references may run before this, which is
 * all a -fPIE build with hidden symbols emits here. */
#include <xmhf/types.h>

extern const u8 __rela_start[], __rela_end[];

void efi_relocate(u8 *base);
void efi_relocate(u8 *base)
{
	for (const u8 *r = __rela_start; r + 24 <= __rela_end; r += 24) {
		const u64 *rela = (const u64 *)r; /* r_offset, r_info, r_addend */

		if ((u32)rela[1] == 8) /* R_X86_64_RELATIVE */
			*(u64 *)(base + rela[0]) = (u64)(uintptr_t)base + rela[2];
	}
}
