/* xmhf-memcheck.efi: the "next boot entry" of the UEFI tests. GRUB starts it after XMHF's EFI loader
 * returned; it checks, with the firmware's own services, what the OS loader would find:
 *   uefi-region-table          XMHF's configuration table names the region
 *   uefi-region-reserved       every UEFI memory-map descriptor over the region is EfiReservedMemoryType
 *                              and together they cover it
 *   uefi-region-e820-reserved  the E820 view an OS derives from that map has no usable byte in it
 *   uefi-region-not-allocatable AllocatePages(AllocateAddress) of its first and last page fails
 *   uefi-aps-run-firmware-code the firmware's MP services still run a procedure on every AP (with 2+ CPUs)
 * Each prints "TEST name: PASS" or "TEST name: FAIL (why)" on COM1, then the machine powers off. */
#include <xmhf/types.h>
#include <xmhf/console.h>
#include <lib/e820.h>
#include <lib/efi-memmap.h>
#include "../../../xmhf/boot/uefi/efi.h"

efi_status EFIAPI efi_main(efi_handle image, struct efi_system_table *st);

static u32 passed, failed;
static volatile u32 ap_hits;

static void result(const char *name, const char *why)
{
	if (why) {
		printf("TEST %s: FAIL (%s)\n", name, why);
		failed++;
	} else {
		printf("TEST %s: PASS\n", name);
		passed++;
	}
}

static void EFIAPI ap_procedure(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&ap_hits, 1, __ATOMIC_SEQ_CST);
}

static const struct xmhf_efi_region_table *find_table(struct efi_system_table *st)
{
	static const struct efi_guid guid = XMHF_REGION_TABLE_GUID;

	for (u64 i = 0; i < st->number_of_table_entries; i++)
		if (efi_guid_eq(&st->configuration_table[i].guid, &guid))
			return st->configuration_table[i].table;
	return NULL;
}

static void check_map(struct efi_boot_services *bs, u64 base, u64 size)
{
	static u8 buf[64 * 1024];
	static struct e820_map e;
	u64 msize = sizeof(buf), key, dsize;
	u32 dver;
	u64 covered = 0;
	const char *why = NULL;

	if (bs->get_memory_map(&msize, buf, &key, &dsize, &dver) != EFI_SUCCESS) {
		result("uefi-region-reserved", "GetMemoryMap failed");
		return;
	}
	for (u64 off = 0; off + dsize <= msize; off += dsize) {
		const struct efi_memdesc *d = (const void *)(buf + off);
		u64 lo = d->physical_start, hi = lo + (d->number_of_pages << 12);

		if (hi <= base || lo >= base + size)
			continue;
		if (d->type != EfiReservedMemoryType) {
			printf("memcheck: descriptor 0x%llx-0x%llx type %u overlaps the region\n", (unsigned long long)lo,
			       (unsigned long long)hi - 1, d->type);
			why = "a descriptor of another type overlaps the region";
		}
		covered += MIN(hi, base + size) - MAX(lo, base);
	}
	if (!why && covered != size)
		why = "the descriptors do not cover the whole region";
	result("uefi-region-reserved", why);

	why = NULL;
	if (e820_from_efi_map(buf, msize, dsize, false, &e) != 0) {
		why = "the map does not convert";
	} else {
		for (u32 i = 0; i < e.count; i++)
			if (e.e[i].type == E820_RAM && e.e[i].base < base + size && base < e.e[i].base + e.e[i].length)
				why = "usable E820 RAM overlaps the region";
	}
	result("uefi-region-e820-reserved", why);
}

efi_status EFIAPI efi_main(efi_handle image, struct efi_system_table *st)
{
	static const struct efi_guid mp_guid = EFI_MP_SERVICES_GUID;
	struct efi_boot_services *bs = st->boot_services;
	const struct xmhf_efi_region_table *t;
	struct efi_mp_services *mp = NULL;

	(void)image;
	console_init(0x3f8, 115200, 8, 'n', 1);
	printf("\nxmhf-memcheck: the next EFI program after XMHF's loader\n");
	t = find_table(st);
	if (!t || t->magic != XMHF_REGION_TABLE_MAGIC || !t->size) {
		result("uefi-region-table", "no XMHF configuration table");
	} else {
		printf("memcheck: region 0x%llx-0x%llx, launched %llu\n", (unsigned long long)t->base,
		       (unsigned long long)(t->base + t->size - 1), (unsigned long long)t->launched);
		result("uefi-region-table", NULL);
		check_map(bs, t->base, t->size);
		u64 first = t->base, last = t->base + t->size - 0x1000;
		bool got = bs->allocate_pages(AllocateAddress, EfiLoaderData, 1, &first) == EFI_SUCCESS;
		got |= bs->allocate_pages(AllocateAddress, EfiLoaderData, 1, &last) == EFI_SUCCESS;
		result("uefi-region-not-allocatable", got ? "AllocatePages gave a page of the region" : NULL);
	}

	if (bs->locate_protocol(&mp_guid, NULL, (void **)&mp) != EFI_SUCCESS || !mp) {
		result("uefi-aps-run-firmware-code", "no MP services protocol");
	} else {
		u64 n = 0, enabled = 0;
		efi_status s;

		mp->get_number_of_processors(mp, &n, &enabled);
		if (n < 2) {
			printf("memcheck: %llu CPU: no AP to run (no uefi-aps-run-firmware-code check)\n",
			       (unsigned long long)n);
		} else {
			s = mp->startup_all_aps(mp, ap_procedure, 0, NULL, 2000000, NULL, NULL);
			printf("memcheck: StartupAllAPs status 0x%llx, %u of %llu APs ran the procedure\n",
			       (unsigned long long)s, ap_hits, (unsigned long long)(n - 1));
			result("uefi-aps-run-firmware-code",
			       s == EFI_SUCCESS && ap_hits == n - 1 ? NULL : "not every AP ran the procedure");
		}
	}
	printf("xmhf-memcheck: %u passed, %u failed; powering off\n", passed, failed);
	console_flush();
	st->runtime_services->reset_system(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
	return EFI_SUCCESS;
}
