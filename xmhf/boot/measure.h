/* Measured boot without DRTM: init hashes what it is about to run (its command line, the runtime image,
 * extra modules, the guest's boot sector) with SHA-256, extends TPM 2.0 PCRs 12-14 and keeps a TCG
 * event log in a reserved page of the guest's memory map (docs/trusted-boot.md). */
#ifndef BOOT_MEASURE_H
#define BOOT_MEASURE_H
#include <xmhf/types.h>
#include <xmhf/bootinfo.h>
#include <lib/e820.h>

#define PCR_XMHF_CONFIG 12   /* init's command line */
#define PCR_XMHF_CODE 13     /* the runtime image (with its linked hypapp) and the extra modules */
#define PCR_XMHF_GUEST 14    /* the guest's boot sector */

struct measure_input {
	const char *cmdline;
	const void *runtime;
	u32 runtime_size;
	const u8 *boot_sector;      /* 512 bytes */
	u8 boot_drive;
	const struct bootinfo_module *extra;
	u32 n_extra;
	u8 policy;                  /* TRUST_AUTO, TRUST_OFF, TRUST_REQUIRED */
	bool dump_log;              /* selftest=tpm-log: print the event log in hex */
};

/* Measures and logs; the log page is reserved in *guest_map (found avoiding avoid[0..navoid)).
 * Returns 0 when done or when there is nothing to do (no TPM, tpm=off), -1 when tpm=required and it
 * could not be done (the reason was printed). */
int measure_boot(const struct measure_input *in, struct e820_map *guest_map, const struct phys_range *avoid,
		 u32 navoid);

#endif
