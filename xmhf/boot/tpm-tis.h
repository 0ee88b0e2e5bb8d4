/* init's access to the TPM's FIFO registers at 0xFED40000 (locality 0) for lib/tis.c: paging is off,
 * so the registers are read at their physical address. */
#ifndef BOOT_TPM_TIS_H
#define BOOT_TPM_TIS_H
#include <lib/tis.h>

#define TIS_BASE 0xfed40000u

extern const struct tis_io tis_mmio;

#endif
