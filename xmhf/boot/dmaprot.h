/* Early DMA protection: from before init measures and copies the runtime until the runtime installs
 * its real VT-d tables, every device's DMA is refused (an empty root table; XMHF's SL does the same). */
#ifndef BOOT_DMAPROT_H
#define BOOT_DMAPROT_H
#include <xmhf/types.h>

/* Does nothing under vtd=off, without an RSDP or DMAR, or with a malformed DMAR (the runtime reports
 * those). Prints one line when the units block DMA, or what failed. */
void dmaprot_block_all(u64 rsdp_pa, u8 policy);

#endif
