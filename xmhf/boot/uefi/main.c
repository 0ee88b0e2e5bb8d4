/* The EFI loader (init-x86-amd64.efi): what GRUB's chainloader (or the firmware's boot manager, or the
 * UEFI shell) starts on a UEFI machine. It does what the BIOS init does, with boot services: checks the
 * CPU and the command line, takes the hypervisor region out of the UEFI memory map (AllocatePages of
 * EfiReservedMemoryType, so the OS sees it reserved in the UEFI map and in the E820 map it derives
 * from it), copies the runtime there and enters it with the firmware's CPU state recorded. The runtime
 * starts every CPU and then runs the firmware as its guest from where it left: this function returns
 * EFI_SUCCESS to its caller in VMX non-root, and the caller starts the next loader. With dryrun=1 the
 * runtime does everything but VMX and hands the CPU back instead.
 * A failure before the runtime runs prints one "XMHF: FATAL:" line and returns an error to the caller,
 * with nothing left allocated: the machine boots on without XMHF. */
#include <xmhf/types.h>
#include <xmhf/bootinfo.h>
#include <xmhf/console.h>
#include <xmhf/uefi.h>
#include <lib/acpi.h>
#include <lib/cmdline.h>
#include <lib/e820.h>
#include <lib/efi-memmap.h>
#include <lib/region.h>
#include <lib/runtime-image.h>
#include <lib/sha1.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include "efi.h"

#define MIN_GUEST_RAM (16ULL << 20)
#define FOUR_GIB (1ULL << 32)

struct uefi_fw_state uefi_fw; /* start.S fills it; the runtime reads it (boot-info uefi_fw_pa) */
extern const u8 uefi_runtime_image[], uefi_runtime_image_end[];
u64 uefi_enter_runtime(u64 entry, u64 bootinfo);
efi_status EFIAPI efi_main(efi_handle image, struct efi_system_table *systab);

static struct efi_boot_services *bs;
static void *fail_jump[5];
static u64 region_base, region_pages, tramp_pa;
static char cmdline_copy[BOOTINFO_CMDLINE_MAX];
static struct e820_map fw_map, free_map, guest_map;

/* The bridge page tables: the first 4 GiB identity-mapped with 2 MiB pages, all executable, so that code
 * in the runtime's region and in this image both run while CR3 changes hands. */
static u64 bridge_pml4[512] __attribute__((aligned(4096)));
static u64 bridge_pdpt[512] __attribute__((aligned(4096)));
static u64 bridge_pd[4][512] __attribute__((aligned(4096)));

static NORETURN void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static NORETURN void fatal(const char *fmt, ...)
{
	va_list ap;

	printf("XMHF: FATAL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nXMHF: the EFI loader gives up; the firmware boots on without XMHF.\n");
	__builtin_longjmp(fail_jump, 1);
}

static const void *phys_map(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	if (pa == 0 || len > FOUR_GIB || pa > ~0ULL - len)
		return NULL;
	return (const void *)(uintptr_t)pa; /* the firmware identity-maps memory (UEFI 2.10, 2.3.4) */
}

/* The load options as ASCII: GRUB's chainloader passes the words after the file name as UTF-16; the UEFI
 * shell passes the whole command line (its first word, the program, has no '=' and is skipped by the
 * parser). Anything else becomes '?'. */
static void read_cmdline(efi_handle image)
{
	static const struct efi_guid loaded_image_guid = EFI_LOADED_IMAGE_GUID;
	struct efi_loaded_image *li = NULL;
	u32 n = 0;

	cmdline_copy[0] = 0;
	if (bs->handle_protocol(image, &loaded_image_guid, (void **)&li) != EFI_SUCCESS || !li || !li->load_options)
		return;
	const char16 *w = li->load_options;
	for (u32 i = 0; i < li->load_options_size / 2 && w[i] && n + 1 < sizeof(cmdline_copy); i++)
		cmdline_copy[n++] = (w[i] >= 0x20 && w[i] < 0x7f) ? (char)w[i] : '?';
	cmdline_copy[n] = 0;
}

static void read_memory_map(void)
{
	u64 size = 0, key, desc_size = 0;
	u32 version;
	void *buf = NULL;
	efi_status s = bs->get_memory_map(&size, NULL, &key, &desc_size, &version);

	if (s != EFI_BUFFER_TOO_SMALL)
		fatal("GetMemoryMap failed (status 0x%llx)", (unsigned long long)s);
	size += 8 * desc_size; /* the pool allocation below may split a range */
	if (bs->allocate_pool(EfiLoaderData, size, &buf) != EFI_SUCCESS)
		fatal("no pool memory for the UEFI memory map (%llu bytes)", (unsigned long long)size);
	s = bs->get_memory_map(&size, buf, &key, &desc_size, &version);
	if (s == EFI_SUCCESS) {
		if (e820_from_efi_map(buf, size, desc_size, false, &fw_map) ||
		    e820_from_efi_map(buf, size, desc_size, true, &free_map))
			s = EFI_ABORTED;
	}
	bs->free_pool(buf);
	if (s != EFI_SUCCESS)
		fatal("the UEFI memory map is unreadable or malformed (status 0x%llx, descriptor size %llu)",
		      (unsigned long long)s, (unsigned long long)desc_size);
}

static void print_map(const char *title, const struct e820_map *m)
{
	printf("XMHF: memory map (%s):\n", title);
	for (u32 i = 0; i < m->count; i++)
		printf("  0x%016llx-0x%016llx %s\n", (unsigned long long)m->e[i].base,
		       (unsigned long long)(m->e[i].base + m->e[i].length - 1), e820_type_name(m->e[i].type));
}

static u64 find_rsdp(struct efi_system_table *systab)
{
	static const struct efi_guid acpi20 = EFI_ACPI_20_TABLE_GUID, acpi10 = EFI_ACPI_10_TABLE_GUID;
	u64 rsdp = 0;

	for (u64 i = 0; i < systab->number_of_table_entries; i++)
		if (efi_guid_eq(&systab->configuration_table[i].guid, &acpi20))
			return (u64)(uintptr_t)systab->configuration_table[i].table;
	for (u64 i = 0; i < systab->number_of_table_entries; i++)
		if (efi_guid_eq(&systab->configuration_table[i].guid, &acpi10))
			return (u64)(uintptr_t)systab->configuration_table[i].table;
	if (acpi_find_rsdp(phys_map, NULL, &rsdp) == 0)
		return rsdp;
	return 0;
}

/* The CPUs from the MADT (UEFI machines have ACPI; no MP-table fallback). */
static u32 list_cpus(u64 rsdp, struct cpu_list *cl)
{
	u64 madt;

	if (rsdp && acpi_find_table(phys_map, NULL, rsdp, "APIC", &madt) == 0 &&
	    madt_enum_cpus(phys_map, NULL, madt, cl) == 0 && cl->count > 0)
		return cl->count;
	cl->count = 0;
	return 0;
}

static u32 bsp_apic_id(void)
{
	if (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EXTD)
		return cpuid(0xb, 0).edx;
	return cpuid(1, 0).ebx >> 24;
}

static void install_region_table(u64 base, u64 size, struct xmhf_efi_region_table **out)
{
	static const struct efi_guid guid = XMHF_REGION_TABLE_GUID;
	struct xmhf_efi_region_table *t = NULL;

	*out = NULL;
	if (bs->allocate_pool(EfiBootServicesData, sizeof(*t), (void **)&t) != EFI_SUCCESS)
		return;
	t->magic = XMHF_REGION_TABLE_MAGIC;
	t->base = base;
	t->size = size;
	t->launched = 0;
	if (bs->install_configuration_table(&guid, t) != EFI_SUCCESS) {
		bs->free_pool(t);
		return;
	}
	*out = t;
}

static void build_bridge_tables(void)
{
	for (u32 i = 0; i < 4; i++) {
		bridge_pdpt[i] = (u64)(uintptr_t)bridge_pd[i] | 0x3;
		for (u32 j = 0; j < 512; j++)
			bridge_pd[i][j] = ((u64)i << 30) | ((u64)j << 21) | 0x83; /* present, writable, 2 MiB */
	}
	bridge_pml4[0] = (u64)(uintptr_t)bridge_pdpt | 0x3;
}

static efi_status load_and_enter(efi_handle image, struct efi_system_table *systab)
{
	struct boot_cmdline cl;
	char err[96];
	const struct runtime_header *rt = (const struct runtime_header *)uefi_runtime_image;
	u64 rt_file = (u64)(uefi_runtime_image_end - uefi_runtime_image);
	struct cpu_list cpus = { 0 };
	struct xmhf_efi_region_table *table;
	u8 digest[20];

	read_cmdline(image);
	if (cmdline_parse(cmdline_copy, &cl, err, sizeof(err)) != 0)
		fatal("bad command line '%s': %s", cmdline_copy, err);
	console_init(cl.serial_port, cl.baud, cl.data_bits, cl.parity, cl.stop_bits);
	printf("\nXMHF %s (amd64): EFI loader, eXtensible Modular Hypervisor Framework\n", XMHF_VERSION);
	printf("XMHF: command line: %s\n", cmdline_copy);
	printf("XMHF: CPU: VMX %s; firmware revision 0x%x, UEFI %u.%u\n",
	       (cpuid(1, 0).ecx & CPUID1_ECX_VMX) ? "yes" : "no", systab->firmware_revision,
	       systab->hdr.revision >> 16, (systab->hdr.revision & 0xffff) / 10);

	read_memory_map();
	print_map("firmware", &fw_map); /* UEFI types as an OS reads them */
#ifdef XMHF_MEM_LIMIT
	if (e820_ram_top(&fw_map) > XMHF_MEM_LIMIT)
		fatal("the machine has RAM up to 0x%llx, above this build's --mem 0x%llx; rebuild with a larger --mem",
		      (unsigned long long)e820_ram_top(&fw_map), (unsigned long long)XMHF_MEM_LIMIT);
#endif

	if (rt_file < sizeof(*rt) || rt->magic != RUNTIME_HEADER_MAGIC || runtime_header_check(rt, rt_file))
		fatal("the runtime built into this loader is damaged (bad header)");
#ifndef XMHF_FAST
	sha1(rt, rt->file_size, digest);
	printf("XMHF: runtime SHA-1 (UNTRUSTED) ");
	for (u32 i = 0; i < 20; i++)
		printf("%02x", digest[i]);
	printf("\n");
#else
	(void)digest;
#endif

	u64 rsdp = find_rsdp(systab);
	u32 bsp = bsp_apic_id();
	u32 ncpus = list_cpus(rsdp, &cpus);
	if (ncpus == 0) {
		printf("XMHF: warning: no ACPI MADT lists the CPUs; using the BSP only\n");
		ncpus = 1;
	}
	printf("XMHF: %u CPU%s listed by the %s, BSP APIC id %u\n", ncpus, ncpus == 1 ? "" : "s",
	       cpus.count ? "ACPI MADT" : "firmware", bsp);

	/* The region, sized as on BIOS machines, taken from free memory below 4 GiB. */
	u64 bi_bytes = ALIGN_UP(sizeof(struct bootinfo) + (u64)ncpus * 4, PAGE_SIZE_4K);
	u64 rt_mem = ALIGN_UP(rt->mem_size, PAGE_SIZE_4K);
	u64 phys_top = MAX(FOUR_GIB, fw_map.e[fw_map.count - 1].base + fw_map.e[fw_map.count - 1].length);
	u64 ram = e820_ram_bytes(&fw_map);
	u64 size = region_size(rt_mem, bi_bytes, ncpus, phys_top, ram);
	u64 base;

	if (e820_find_highest(&free_map, size, PAGE_SIZE_2M, 1ULL << 20, FOUR_GIB, NULL, 0, &base))
		fatal("not enough memory: the hypervisor needs a free %llu MiB range (2 MiB aligned, below 4 GiB) "
		      "in the UEFI memory map; the machine has %llu MiB of RAM, %llu MiB of it free now",
		      (unsigned long long)(size >> 20), (unsigned long long)(ram >> 20),
		      (unsigned long long)(e820_ram_bytes(&free_map) >> 20));
	guest_map = fw_map;
	if (e820_reserve(&guest_map, base, size, E820_RESERVED))
		fatal("the memory map has too many entries to reserve the hypervisor region");
	if (e820_ram_bytes(&guest_map) < MIN_GUEST_RAM)
		fatal("not enough memory: %llu MiB of RAM would be left for the guest, at least %llu MiB needed",
		      (unsigned long long)(e820_ram_bytes(&guest_map) >> 20),
		      (unsigned long long)(MIN_GUEST_RAM >> 20));
	efi_status s = bs->allocate_pages(AllocateAddress, EfiReservedMemoryType, size / PAGE_SIZE_4K, &base);
	if (s != EFI_SUCCESS)
		fatal("AllocatePages of the region 0x%llx (%llu MiB) as reserved memory failed (status 0x%llx)",
		      (unsigned long long)base, (unsigned long long)(size >> 20), (unsigned long long)s);
	region_base = base;
	region_pages = size / PAGE_SIZE_4K;

	/* The AP start-up page below 640 KiB: the runtime's only while it starts the APs (it clears it). */
	u64 tramp = 0x9ffff;
	s = bs->allocate_pages(AllocateMaxAddress, EfiLoaderData, 1, &tramp);
	if (s != EFI_SUCCESS)
		fatal("no free page below 640 KiB for the AP start-up code (status 0x%llx)", (unsigned long long)s);
	tramp_pa = tramp;
	if (tramp < 0x1000)
		fatal("the firmware gave page 0x%llx for the AP start-up code; SIPI cannot start there",
		      (unsigned long long)tramp);
	printf("XMHF: hypervisor region 0x%llx-0x%llx (%llu MiB), EfiReservedMemoryType\n",
	       (unsigned long long)base, (unsigned long long)(base + size - 1), (unsigned long long)(size >> 20));
	print_map("guest", &guest_map);

	/* The runtime; the boot-info block follows it, as on BIOS machines. */
	u32 bad;
	struct bootinfo *bi = runtime_install(base, rt, rt_mem, size, bi_bytes, ncpus, &bad);
	if (!bi)
		fatal("runtime relocation %u is not R_X86_64_RELATIVE or lies outside the image", bad);
	bi->tsc_at_entry = rdtsc();
	bi->rsdp_pa = rsdp;
	bi->lapic_base = cpus.lapic_base ? cpus.lapic_base : (rdmsr(MSR_IA32_APIC_BASE) & ~0xfffULL);
	bi->ap_trampoline_pa = tramp;
	bi->bsp_apic_id = bsp;
	bi->cpu_source = cpus.count ? CPU_SOURCE_MADT : CPU_SOURCE_NONE;
	bi->cmdline = cl;
	memcpy(bi->cmdline_str, cmdline_copy, sizeof(bi->cmdline_str));
	bi->e820_firmware = fw_map;
	bi->e820_guest = guest_map;
	bi->uefi_fw_pa = (u64)(uintptr_t)&uefi_fw;
	u32 *ids = (u32 *)((u8 *)bi + bi->cpus_offset);
	if (cpus.count == 0) {
		ids[0] = bsp;
	} else {
		struct cpu_list again = { .max = ncpus, .apic_ids = ids };
		if (list_cpus(rsdp, &again) != ncpus)
			fatal("the CPU list changed between two reads of the MADT");
	}
	bool bsp_listed = false;
	for (u32 i = 0; i < ncpus; i++)
		bsp_listed |= ids[i] == bsp;
	if (!bsp_listed)
		fatal("the MADT does not list the BSP (APIC id %u)", bsp);

	/* The runtime and the way back must be reachable through the bridge map. */
	u64 here = (u64)(uintptr_t)&cl;
	if ((u64)(uintptr_t)&uefi_fw >= FOUR_GIB || (u64)(uintptr_t)efi_main >= FOUR_GIB || here >= FOUR_GIB)
		fatal("the loader (0x%llx) or the firmware's stack (0x%llx) lies above 4 GiB",
		      (unsigned long long)(uintptr_t)efi_main, (unsigned long long)here);
	build_bridge_tables();
	memset(&uefi_fw, 0, sizeof(uefi_fw));
	uefi_fw.bridge_cr3 = (u64)(uintptr_t)bridge_pml4;
	install_region_table(base, size, &table);

	u64 entry = base + rt->entry_offset;
	printf("XMHF: entering the runtime at 0x%llx; the firmware continues as its guest%s\n",
	       (unsigned long long)entry, cl.dryrun ? " (dry run: no VMX, it hands the CPU back)" : "");
	console_flush();
	u64 outcome = uefi_enter_runtime(entry, (u64)(uintptr_t)bi);

	/* Back in the firmware: as its guest, or after a dry run. */
	bs->free_pages(tramp_pa, 1);
	if (table)
		table->launched = outcome == UEFI_OUTCOME_LAUNCHED;
	if (outcome == UEFI_OUTCOME_LAUNCHED)
		printf("XMHF: back in the firmware, now in VMX non-root; returning to the boot loader\n");
	else
		printf("XMHF: dry run: back in the firmware (outcome %llu); the region stays reserved; returning to "
		       "the boot loader\n",
		       (unsigned long long)outcome);
	return EFI_SUCCESS;
}

efi_status EFIAPI efi_main(efi_handle image, struct efi_system_table *systab)
{
	struct boot_cmdline def;
	char none[1];

	/* Until the command line is read, the default port (the one it names may be wrong). */
	cmdline_parse(NULL, &def, none, sizeof(none));
	console_init(def.serial_port, def.baud, def.data_bits, def.parity, def.stop_bits);
	if (__builtin_setjmp(fail_jump)) {
		if (region_pages && bs)
			bs->free_pages(region_base, region_pages);
		if (tramp_pa && bs)
			bs->free_pages(tramp_pa, 1);
		return EFI_LOAD_ERROR;
	}
	if (!systab || systab->hdr.signature != EFI_SYSTEM_TABLE_SIGNATURE)
		fatal("not started by UEFI firmware (no EFI system table); boot init-x86-amd64.efi with GRUB's "
		      "chainloader, the UEFI boot manager or the UEFI shell");
	bs = systab->boot_services;
	if (!bs || bs->hdr.signature != EFI_BOOT_SERVICES_SIGNATURE) {
		bs = NULL;
		fatal("UEFI boot services have already exited (ExitBootServices ran); start init-x86-amd64.efi "
		      "before the OS loader, from GRUB's chainloader or the boot manager");
	}
	return load_and_enter(image, systab);
}
