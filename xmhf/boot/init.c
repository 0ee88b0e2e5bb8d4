/* init: the 32-bit multiboot kernel GRUB starts. It checks what it was given (command line, memory
 * map, modules, CPU), picks the hypervisor's physical region, loads the runtime there, and enters the
 * runtime in 64-bit mode with a boot-info block. Every failure ends in one "XMHF: FATAL:" line on the
 * serial console and a halt: never silence or a triple fault. */
#include <xmhf/types.h>
#include <xmhf/bootinfo.h>
#include <xmhf/console.h>
#include <lib/acpi.h>
#include <lib/cmdline.h>
#include <lib/e820.h>
#include <lib/region.h>
#include <lib/runtime-image.h>
#include <lib/sha1.h>
#include <lib/string.h>
#include <x86/cpu.h>
#include <x86/msr.h>
#include <x86/multiboot.h>
#include "dmaprot.h"
#include "measure.h"

/* The guest must keep at least this much RAM, or booting it is pointless. */
#define MIN_GUEST_RAM (16ULL << 20)
#define FOUR_GIB (1ULL << 32)

u64 init_tsc_at_entry;
extern char __init_start[], __init_end[];
void init_enter_longmode(u32 pml4, u32 entry_lo, u32 entry_hi, u32 bootinfo) NORETURN;

static struct e820_map fw_map, guest_map;
static char cmdline_copy[BOOTINFO_CMDLINE_MAX];
static u8 boot_sector[512];
static struct bootinfo_module extra[BOOTINFO_MAX_EXTRA_MODULES];
static u32 n_extra;

/* Identity map of the first 4 GiB with 2 MiB pages: enough to reach the runtime, which builds its own. */
static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 pd[4][512] __attribute__((aligned(4096)));

static NORETURN void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static NORETURN void fatal(const char *fmt, ...)
{
	va_list ap;

	printf("XMHF: FATAL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nXMHF: init halted.\n");
	cpu_halt_forever();
}

/* Physical memory below 4 GiB is directly addressable: paging is off. */
static const void *phys_map(void *ctx, u64 pa, u64 len)
{
	(void)ctx;
	if (pa == 0 || pa >= FOUR_GIB || len > FOUR_GIB - pa)
		return NULL;
	return (const void *)(uintptr_t)pa;
}

static void copy_string(char *dst, size_t size, u32 pa)
{
	const char *src = phys_map(NULL, pa, 1);
	size_t i = 0;

	if (src)
		for (; i + 1 < size && src[i]; i++)
			dst[i] = src[i];
	dst[i] = 0;
}

static void print_map(const char *title, const struct e820_map *m)
{
	printf("XMHF: memory map (%s):\n", title);
	for (u32 i = 0; i < m->count; i++)
		printf("  0x%016llx-0x%016llx %s\n", (unsigned long long)m->e[i].base,
		       (unsigned long long)(m->e[i].base + m->e[i].length - 1), e820_type_name(m->e[i].type));
}

static void check_cpu(void)
{
	struct cpuid_regs r = cpuid(0x80000000, 0);

	if (r.eax < 0x80000001 || !(cpuid(0x80000001, 0).edx & CPUIDX1_EDX_LM))
		fatal("the CPU has no 64-bit mode (long mode); XMHF amd64 needs it");
	r = cpuid(1, 0);
	if (!(r.edx & CPUID1_EDX_PAE) || !(r.edx & CPUID1_EDX_MSR) || !(r.edx & CPUID1_EDX_APIC))
		fatal("the CPU lacks PAE, MSRs or a local APIC");
	printf("XMHF: CPU: VMX %s, x2APIC %s\n", (r.ecx & CPUID1_ECX_VMX) ? "yes" : "no",
	       (r.ecx & CPUID1_ECX_X2APIC) ? "yes" : "no");
}

static u32 bsp_apic_id(void)
{
	if (rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_EXTD)
		return cpuid(0xb, 0).edx;
	return cpuid(1, 0).ebx >> 24;
}

/* GRUB EFI loads this multiboot kernel too, but the guest it would start is a BIOS boot sector, which
 * needs a PC BIOS to read its disk: UEFI firmware without a CSM leaves the real-mode IVT's INT 13h
 * vector at 0000:0000 (OVMF fills only INT 10h, for old Windows video). */
static void check_pc_bios(void)
{
	uintptr_t ivt = 0;

	__asm__("" : "+r"(ivt)); /* physical address 0 is the IVT here, not a null pointer */
	if (((const volatile u32 *)ivt)[0x13] == 0)
		fatal("no PC BIOS (the INT 13h vector is 0000:0000), as on a UEFI machine; there, boot "
		      "init-x86-amd64.efi with GRUB's chainloader (README, UEFI)");
}

struct modules {
	const struct runtime_header *rt;
	u64 rt_base, rt_size;
	u64 bs_base;
	struct phys_range avoid[2 + BOOTINFO_MAX_EXTRA_MODULES + 1];
	u32 navoid;
};

static void check_modules(const struct multiboot_info *mbi, struct modules *m)
{
	const struct multiboot_module *mods;
	char name[64];

	if (!(mbi->flags & MULTIBOOT_INFO_MODS) || mbi->mods_count < 1)
		fatal("missing module 0: the runtime (GRUB: module /boot/hypervisor-x86-amd64.bin.gz)");
	mods = phys_map(NULL, mbi->mods_addr, (u64)mbi->mods_count * sizeof(*mods));
	if (!mods)
		fatal("the module list at 0x%x is unreadable", mbi->mods_addr);
	for (u32 i = 0; i < mbi->mods_count; i++) {
		if (mods[i].mod_end < mods[i].mod_start)
			fatal("module %u has its end 0x%x before its start 0x%x", i, mods[i].mod_end,
			      mods[i].mod_start);
		if (m->navoid < ARRAY_SIZE(m->avoid)) {
			m->avoid[m->navoid].base = mods[i].mod_start;
			m->avoid[m->navoid].length = (u64)mods[i].mod_end - mods[i].mod_start;
			m->navoid++;
		}
	}

	/* Module 0: the runtime. GRUB gunzips it unless told --nounzip. */
	copy_string(name, sizeof(name), mods[0].string);
	m->rt_base = mods[0].mod_start;
	m->rt_size = (u64)mods[0].mod_end - mods[0].mod_start;
	m->rt = phys_map(NULL, m->rt_base, sizeof(struct runtime_header));
	if (!m->rt || m->rt_size < sizeof(struct runtime_header))
		fatal("module 0 (%s) is too small (%llu bytes) to be the XMHF runtime", name,
		      (unsigned long long)m->rt_size);
	if (m->rt->magic != RUNTIME_HEADER_MAGIC) {
		const u8 *b = (const u8 *)m->rt;
		if (b[0] == 0x1f && b[1] == 0x8b)
			fatal("module 0 (%s) is still gzip-compressed: load it without --nounzip", name);
		fatal("module 0 (%s) is not the XMHF runtime (bad magic); the runtime must be the first module",
		      name);
	}
	if (runtime_header_check(m->rt, m->rt_size))
		fatal("module 0 (%s): the runtime header is inconsistent", name);

	/* Module 1: the guest's boot sector (module --nounzip (hdN)+1). */
	if (mbi->mods_count < 2)
		fatal("missing module 1: the guest's boot sector (GRUB: module --nounzip (hd1)+1)");
	copy_string(name, sizeof(name), mods[1].string);
	{
		const u8 *bs = phys_map(NULL, mods[1].mod_start, 512);
		if (!bs || mods[1].mod_end - mods[1].mod_start < 512)
			fatal("module 1 (%s) is shorter than a 512-byte boot sector", name);
		if (bs[510] != 0x55 || bs[511] != 0xaa)
			fatal("module 1 (%s) is not a boot sector (no 0x55AA signature at byte 510)", name);
		memcpy(boot_sector, bs, 512);
		m->bs_base = mods[1].mod_start;
	}

	for (u32 i = 2; i < mbi->mods_count; i++) {
		if (n_extra == BOOTINFO_MAX_EXTRA_MODULES) {
			printf("XMHF: warning: modules after the %uth are ignored\n", BOOTINFO_MAX_EXTRA_MODULES + 2);
			break;
		}
		extra[n_extra].base = mods[i].mod_start;
		extra[n_extra].size = (u64)mods[i].mod_end - mods[i].mod_start;
		copy_string(extra[n_extra].string, sizeof(extra[n_extra].string), mods[i].string);
		n_extra++;
	}
	printf("XMHF: modules: runtime %llu bytes, boot sector at 0x%llx, %u extra\n",
	       (unsigned long long)m->rt_size, (unsigned long long)m->bs_base, n_extra);
}

static u32 find_cpus(struct cpu_list *cl, u64 *rsdp_pa, u32 *source)
{
	u64 madt;

	*rsdp_pa = 0;
	if (acpi_find_rsdp(phys_map, NULL, rsdp_pa) == 0 &&
	    acpi_find_table(phys_map, NULL, *rsdp_pa, "APIC", &madt) == 0 &&
	    madt_enum_cpus(phys_map, NULL, madt, cl) == 0 && cl->count > 0) {
		*source = CPU_SOURCE_MADT;
		return cl->count;
	}
	cl->count = 0;
	if (mptable_enum_cpus(phys_map, NULL, cl) == 0 && cl->count > 0) {
		*source = CPU_SOURCE_MPTABLE;
		return cl->count;
	}
	*source = CPU_SOURCE_NONE;
	cl->count = 0;
	return 0;
}

static void build_page_tables(void)
{
	for (u32 i = 0; i < 4; i++) {
		pdpt[i] = (u32)(uintptr_t)pd[i] | 0x3; /* present, writable */
		for (u32 j = 0; j < 512; j++)
			pd[i][j] = (((u64)i << 30) | ((u64)j << 21)) | 0x83; /* present, writable, 2 MiB */
	}
	pml4[0] = (u32)(uintptr_t)pdpt | 0x3;
}

void init_main(u32 magic, u32 mbi_pa);
void init_main(u32 magic, u32 mbi_pa)
{
	const struct multiboot_info *mbi = NULL;
	struct boot_cmdline cl;
	char err[96];
	struct modules mods = { 0 };
	u8 digest[20];
	u32 cpu_source;
	u64 rsdp_pa;

	if (magic == MULTIBOOT_BOOTLOADER_MAGIC)
		mbi = phys_map(NULL, mbi_pa, sizeof(*mbi));
	cmdline_copy[0] = 0;
	if (mbi && (mbi->flags & MULTIBOOT_INFO_CMDLINE))
		copy_string(cmdline_copy, sizeof(cmdline_copy), mbi->cmdline);
	if (cmdline_parse(cmdline_copy, &cl, err, sizeof(err)) != 0) {
		/* Report on the default port: the one asked for is unknown. */
		struct boot_cmdline def;
		cmdline_parse(NULL, &def, err + sizeof(err) - 1, 1);
		console_init(def.serial_port, def.baud, def.data_bits, def.parity, def.stop_bits);
		printf("XMHF %s (amd64): init\n", XMHF_VERSION);
		fatal("bad command line '%s': %s", cmdline_copy, err);
	}
	console_init(cl.serial_port, cl.baud, cl.data_bits, cl.parity, cl.stop_bits);
	printf("\nXMHF %s (amd64): init, eXtensible Modular Hypervisor Framework\n", XMHF_VERSION);
	printf("XMHF: command line: %s\n", cmdline_copy);
	if (!mbi)
		fatal("not started by a multiboot boot loader (EAX=0x%x); boot init-x86-amd64.bin with GRUB's "
		      "multiboot command",
		      magic);
	check_cpu();
	check_pc_bios();

	/* Memory map. */
	if (!(mbi->flags & MULTIBOOT_INFO_MEM_MAP) || mbi->mmap_length == 0)
		fatal("the boot loader gave no memory map");
	{
		const void *mm = phys_map(NULL, mbi->mmap_addr, mbi->mmap_length);
		if (!mm || e820_from_multiboot(mm, mbi->mmap_length, &fw_map) != 0)
			fatal("the boot loader's memory map is malformed (%u bytes at 0x%x)", mbi->mmap_length,
			      mbi->mmap_addr);
	}
	print_map("firmware", &fw_map);
#ifdef XMHF_MEM_LIMIT
	/* build.sh --mem: an upper bound this build was made for, not a size; refuse more. */
	if (e820_ram_top(&fw_map) > XMHF_MEM_LIMIT)
		fatal("the machine has RAM up to 0x%llx, above this build's --mem 0x%llx; rebuild with a larger --mem",
		      (unsigned long long)e820_ram_top(&fw_map), (unsigned long long)XMHF_MEM_LIMIT);
#endif

	check_modules(mbi, &mods);
#ifndef XMHF_FAST
	sha1((const void *)(uintptr_t)mods.rt_base, mods.rt->file_size, digest);
	printf("XMHF: runtime SHA-1 (UNTRUSTED) ");
	for (u32 i = 0; i < 20; i++)
		printf("%02x", digest[i]);
	printf("\n");
#else
	(void)digest;
#endif

	/* CPUs: count first, then store the list in the boot-info block once the region exists. */
	struct cpu_list cpus = { 0 };
	u32 ncpus = find_cpus(&cpus, &rsdp_pa, &cpu_source);
	u32 bsp = bsp_apic_id();
	if (ncpus == 0) {
		printf("XMHF: warning: neither an ACPI MADT nor an MP table lists the CPUs; using the BSP only\n");
		ncpus = 1;
	}
	printf("XMHF: %u CPU%s listed by the %s, BSP APIC id %u\n", ncpus, ncpus == 1 ? "" : "s",
	       cpu_source == CPU_SOURCE_MADT ? "ACPI MADT" : cpu_source == CPU_SOURCE_MPTABLE ? "MP table" : "firmware",
	       bsp);
	/* Before the runtime module is measured and copied, no device may change it or the region. */
	dmaprot_block_all(rsdp_pa, cl.vtd);

	/* The region: sized from the runtime, the CPU count and the memory size. */
	u64 bi_bytes = ALIGN_UP(sizeof(struct bootinfo) + (u64)ncpus * 4, PAGE_SIZE_4K);
	u64 rt_mem = ALIGN_UP(mods.rt->mem_size, PAGE_SIZE_4K);
	u64 phys_top = MAX(FOUR_GIB, fw_map.count ? fw_map.e[fw_map.count - 1].base + fw_map.e[fw_map.count - 1].length : 0);
	u64 ram = e820_ram_bytes(&fw_map);
	u64 size = region_size(rt_mem, bi_bytes, ncpus, phys_top, ram);
	u64 base;

	mods.avoid[mods.navoid].base = (uintptr_t)__init_start;
	mods.avoid[mods.navoid].length = (uintptr_t)__init_end - (uintptr_t)__init_start;
	mods.navoid++;
	if (e820_find_highest(&fw_map, size, PAGE_SIZE_2M, 1ULL << 20, FOUR_GIB, mods.avoid, mods.navoid, &base))
		fatal("not enough memory: the hypervisor needs a free %llu MiB range (2 MiB aligned, below 4 GiB); "
		      "the machine has %llu MiB of RAM",
		      (unsigned long long)(size >> 20), (unsigned long long)(ram >> 20));
	guest_map = fw_map;
	if (e820_reserve(&guest_map, base, size, E820_RESERVED))
		fatal("the memory map has too many entries to reserve the hypervisor region");
	if (e820_ram_bytes(&guest_map) < MIN_GUEST_RAM)
		fatal("not enough memory: %llu MiB of RAM would be left for the guest, at least %llu MiB needed",
		      (unsigned long long)(e820_ram_bytes(&guest_map) >> 20),
		      (unsigned long long)(MIN_GUEST_RAM >> 20));
	u64 tramp;
	if (e820_find_highest(&guest_map, PAGE_SIZE_4K, PAGE_SIZE_4K, 0x1000, 0xa0000, mods.avoid, mods.navoid,
			      &tramp))
		fatal("no free page below 640 KiB for the AP start-up code");
	{
		/* Measured boot (measure.c): before anything of the runtime runs. */
		struct measure_input mi = {
			.cmdline = cmdline_copy, .runtime = (const void *)(uintptr_t)mods.rt_base,
			.runtime_size = (u32)mods.rt->file_size,
			.boot_sector = boot_sector, .boot_drive = cl.boot_drive, .extra = extra, .n_extra = n_extra,
			.policy = cl.tpm, .dump_log = cl.selftest == SELFTEST_TPM_LOG,
		};
		if (measure_boot(&mi, &guest_map, mods.avoid, mods.navoid))
			fatal("tpm=required, and the boot could not be measured into the TPM");
	}
	printf("XMHF: hypervisor region 0x%llx-0x%llx (%llu MiB)\n", (unsigned long long)base,
	       (unsigned long long)(base + size - 1), (unsigned long long)(size >> 20));
	print_map("guest", &guest_map);

	/* Load the runtime; the boot-info block follows it. */
	u32 bad_rela;
	struct bootinfo *bi = runtime_install(base, (const void *)(uintptr_t)mods.rt_base, rt_mem, size, bi_bytes, ncpus,
					      &bad_rela);
	if (!bi)
		fatal("runtime relocation %u is not R_X86_64_RELATIVE or lies outside the image", bad_rela);
	const struct runtime_header *h = (const struct runtime_header *)(uintptr_t)base;
	bi->tsc_at_entry = init_tsc_at_entry;
	bi->rsdp_pa = rsdp_pa;
	bi->lapic_base = cpus.lapic_base ? cpus.lapic_base : (rdmsr(MSR_IA32_APIC_BASE) & ~0xfffULL);
	bi->ap_trampoline_pa = tramp;
	bi->guest_boot_sector_pa = mods.bs_base;
	bi->bsp_apic_id = bsp;
	bi->cpu_source = cpu_source;
	bi->cmdline = cl;
	bi->n_extra_modules = n_extra;
	memcpy(bi->extra_modules, extra, sizeof(extra));
	memcpy(bi->cmdline_str, cmdline_copy, sizeof(bi->cmdline_str));
	memcpy(bi->guest_boot_sector, boot_sector, sizeof(boot_sector));
	bi->e820_firmware = fw_map;
	bi->e820_guest = guest_map;
	u32 *ids = (u32 *)((u8 *)bi + bi->cpus_offset);
	if (cpu_source == CPU_SOURCE_NONE) {
		ids[0] = bsp;
	} else {
		struct cpu_list again = { .max = ncpus, .apic_ids = ids };
		u32 dummy;
		find_cpus(&again, &rsdp_pa, &dummy);
		if (again.count != ncpus)
			fatal("the CPU list changed between two reads of the firmware tables");
	}
	bool bsp_listed = false;
	for (u32 i = 0; i < ncpus; i++)
		bsp_listed |= ids[i] == bsp;
	if (!bsp_listed)
		fatal("the firmware's CPU list does not contain the BSP (APIC id %u)", bsp);

	build_page_tables();
	u64 entry = base + h->entry_offset;
	printf("XMHF: entering the runtime at 0x%llx in 64-bit mode\n", (unsigned long long)entry);
	init_enter_longmode((u32)(uintptr_t)pml4, (u32)entry, (u32)(entry >> 32), (u32)(uintptr_t)bi);
}
