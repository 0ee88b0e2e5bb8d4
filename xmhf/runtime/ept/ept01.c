/* EPT01: one identity map of guest-physical memory shared by all CPUs (design.md "Memory"), built from
 * lib/ept.c with large pages where the MTRRs allow; the hypervisor's region is not present. Guest MTRR
 * writes update the memory types; each CPU invalidates its EPT TLB when it sees a new generation. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/spinlock.h>
#include <lib/ept.h>
#include <x86/cpu.h>

static struct mtrr_state mtrrs;
static struct phys_range hole;
static struct ept_env env;
static u64 pml4_pa;
static u64 mapped_top; /* EPT01 maps [0, mapped_top) at boot, higher addresses on demand */
static spinlock_t ept_lock;
static volatile u32 generation;

static void read_mtrrs(void)
{
	u64 cap = rdmsr(MSR_MTRRCAP);

	mtrrs.nvar = (u32)MIN(cap & 0xff, MTRR_MAX_VAR);
	mtrrs.phys_mask = (1ULL << vmx_caps.maxphyaddr) - 1;
	mtrr_state_write(&mtrrs, MSR_MTRR_DEF_TYPE, rdmsr(MSR_MTRR_DEF_TYPE));
	if (!(cap & (1 << 8)))
		mtrrs.fixed_enabled = false;
	else {
		u32 fixed[] = { MSR_MTRR_FIX64K_00000, MSR_MTRR_FIX16K_80000, MSR_MTRR_FIX16K_A0000 };
		for (u32 i = 0; i < 3; i++)
			mtrr_state_write(&mtrrs, fixed[i], rdmsr(fixed[i]));
		for (u32 m = MSR_MTRR_FIX4K_C0000; m < MSR_MTRR_FIX4K_C0000 + 8; m++)
			mtrr_state_write(&mtrrs, m, rdmsr(m));
	}
	for (u32 i = 0; i < mtrrs.nvar; i++) {
		mtrr_state_write(&mtrrs, MSR_MTRR_PHYSBASE0 + 2 * i, rdmsr(MSR_MTRR_PHYSBASE0 + 2 * i));
		mtrr_state_write(&mtrrs, MSR_MTRR_PHYSBASE0 + 2 * i + 1, rdmsr(MSR_MTRR_PHYSBASE0 + 2 * i + 1));
	}
}

bool ept01_is_mtrr_msr(u32 msr)
{
	return mtrr_is_mtrr_msr(&mtrrs, msr);
}

void ept01_init(void)
{
	/* Map the whole physical-address width where 1 GiB pages make that cheap; else up to the top of
	 * the memory map (at least 4 GiB, for MMIO). Capped at 64 TiB to bound the tables. */
	u64 top = 1ULL << MIN(vmx_caps.maxphyaddr, 46);
	u64 before = heap_free_bytes();

	read_mtrrs();
	hole.base = boot_info->region_base;
	hole.length = boot_info->region_size;
	env = (struct ept_env){ .alloc_table = heap_table_alloc, .table = heap_table_at, .ctx = NULL,
				.page_1g = (vmx_caps.ept_vpid & EPT_CAP_1G) != 0,
				.page_2m = (vmx_caps.ept_vpid & EPT_CAP_2M) != 0,
				.mtrr = &mtrrs, .holes = &hole, .nholes = 1 };
	if (!env.page_1g) {
		top = 1ULL << 32;
		for (u32 i = 0; i < boot_info->e820_firmware.count; i++)
			top = MAX(top, boot_info->e820_firmware.e[i].base + boot_info->e820_firmware.e[i].length);
		top = ALIGN_UP(top, PAGE_SIZE_2M);
	}
	if (boot_info->cmdline.ept01_top_gib)
		top = MIN(top, (u64)boot_info->cmdline.ept01_top_gib << 30);
	mapped_top = top;
	pml4_pa = ept_build_identity(&env, top);
	if (!pml4_pa)
		panic("out of memory building EPT01");
	printf("XMHF: EPT01: identity map of %llu GiB, %llu KiB of tables, region 0x%llx-0x%llx not present\n",
	       (unsigned long long)(top >> 30), (unsigned long long)((before - heap_free_bytes()) >> 10),
	       (unsigned long long)hole.base, (unsigned long long)(hole.base + hole.length - 1));
}

/* A guest access beyond the map built at boot: above the memory map without 1 GiB EPT pages (64-bit
 * PCI BARs the firmware put above RAM), or above 64 TiB. The CPU would reach that physical address,
 * so EPT01 maps it as it maps everything else (identity, the MTRR type), 1 GiB (or 2 MiB) at a time,
 * and the access is retried. Addresses beyond the physical-address width never get here (the guest's
 * paging refuses them). Returns true if gpa is beyond the boot map (and mapped now, by this CPU or
 * another); callers ask only for faults on a not-present translation. */
bool ept01_map_on_demand(u64 gpa)
{
	u64 chunk = env.page_1g ? PAGE_SIZE_1G : PAGE_SIZE_2M, lo = gpa & ~(chunk - 1);
	int level, err = 0;
	bool absent;

	if (gpa < mapped_top || gpa >= (1ULL << vmx_caps.maxphyaddr) ||
	    (gpa >= hole.base && gpa < hole.base + hole.length)) /* the region is never mapped */
		return false;
	spin_lock(&ept_lock);
	/* Another CPU may have mapped it since this one faulted. */
	absent = !ept_lookup(&env, pml4_pa, gpa, &level);
	if (absent) {
		err = ept_map_identity(&env, pml4_pa, lo, lo + chunk);
		__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
	}
	spin_unlock(&ept_lock);
	if (err)
		panic("out of memory mapping GPA 0x%llx into EPT01", (unsigned long long)gpa);
	return true;
}

void ept01_set_page_rights(u64 gpa, u64 rights)
{
	u64 *e;

	ept01_map_on_demand(gpa);
	spin_lock(&ept_lock);
	e = ept_leaf(&env, pml4_pa, gpa, true);
	if (!e)
		panic("EPT01 has no leaf for GPA 0x%llx", (unsigned long long)gpa);
	*e = (*e & ~EPT_RWX) | (rights & EPT_RWX);
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
	spin_unlock(&ept_lock);
}

void ept01_change_page_rights(u64 gpa, u64 rights)
{
	u64 *e;

	/* Split first: it keeps every translation as it was, so other CPUs need not stop for it, and
	 * it allocates (a quiesced CPU might hold the heap lock). */
	ept01_map_on_demand(gpa);
	spin_lock(&ept_lock);
	e = ept_leaf(&env, pml4_pa, gpa, true);
	spin_unlock(&ept_lock);
	if (!e)
		panic("EPT01 has no leaf for GPA 0x%llx", (unsigned long long)gpa);
	/* With the EPT lock held before quiescing, no stopped CPU holds it. */
	spin_lock(&ept_lock);
	quiesce_begin();
	*e = (*e & ~EPT_RWX) | (rights & EPT_RWX);
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
	quiesce_end();
	spin_unlock(&ept_lock);
	/* Every CPU, this one included, runs INVEPT before its next VM entry (ept01_check_generation). */
}

u64 ept01_page_rights(u64 gpa)
{
	int level;

	return ept_lookup(&env, pml4_pa, gpa, &level) & EPT_RWX;
}

u64 ept01_leaf(u64 gpa, int *level)
{
	return ept_lookup(&env, pml4_pa, gpa, level);
}

u64 ept01_eptp(void)
{
	return pml4_pa | EPTP_WB | EPTP_WALK_4;
}


/* The guest wrote an MTRR (already written to the CPU): recompute EPT01's memory types. The guest
 * writes the same MTRRs on every CPU (SDM 11.11.8), so the shared state follows the last write. */
void ept01_mtrr_write(u32 msr, u64 value)
{
	spin_lock(&ept_lock);
	mtrr_state_write(&mtrrs, msr, value);
	if (ept_update_memtypes(&env, pml4_pa))
		panic("out of memory splitting EPT01 pages for new MTRR types");
	__atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
	spin_unlock(&ept_lock);
}

/* Called before each VM entry: flush this CPU's EPT-derived translations if EPT01 changed. Other CPUs
 * pick a change up at their next VM exit (types only affect caching, not isolation; protection changes
 * will use quiesce). */
bool ept01_check_generation(void)
{
	struct cpu *c = this_cpu();
	u32 g = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);

	if (c->ept_generation == g)
		return false;
	c->ept_generation = g;
	if (invept(2, 0))
		panic("INVEPT all-context failed");
	return true;
}

void *guestmem_ptr(u64 gpa, u64 len)
{
	/* Guest-physical equals host-physical outside the region (EPT01 is an identity map); the
	 * hypervisor reaches it through the alias of its page tables, so GPA 0 is not NULL. */
	if (len == 0 || gpa + len < gpa || gpa + len > guestmem_top)
		return NULL;
	if (gpa < boot_info->region_base + boot_info->region_size && gpa + len > boot_info->region_base)
		return NULL;
	return (void *)(uintptr_t)(GUESTMEM_ALIAS + gpa);
}
