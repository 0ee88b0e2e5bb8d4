/* region_size: the formula of region.h, worked out by hand for a few machines. */
#include <lib/region.h>
#include "unit.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

TEST(region_1cpu_256m)
{
	/* image 2 MiB + boot info 4 KiB + page tables 2 * (PML4 + PDPT + 1 PD) = 24 KiB + 256 KiB per CPU
	 * + 4 MiB heap + 256 KiB (256 MiB / 1024) = 0x687000 -> 8 MiB */
	CHECK_EQ(region_size(2 * MiB, 4 * KiB, 1, 256 * MiB, 256 * MiB), 8 * MiB);
}

TEST(region_4cpu_256m)
{
	/* 2 MiB + 4 KiB + 24 KiB + 1 MiB + 4 MiB + 256 KiB = 0x747000 -> 8 MiB */
	CHECK_EQ(region_size(2 * MiB, 4 * KiB, 4, 256 * MiB, 256 * MiB), 8 * MiB);
	/* A larger image crosses into the next 2 MiB: 0x747000 + 0xc0000 = 0x807000 -> 10 MiB */
	CHECK_EQ(region_size(2 * MiB + 768 * KiB, 4 * KiB, 4, 256 * MiB, 256 * MiB), 10 * MiB);
}

TEST(region_1cpu_4g)
{
	/* RAM 3 GiB below a 4 GiB top: page tables 2 * (1 + 1 + 4) pages = 48 KiB, RAM share 3 MiB.
	 * 2 MiB + 4 KiB + 48 KiB + 256 KiB + 4 MiB + 3 MiB = 0x94d000 -> 10 MiB */
	CHECK_EQ(region_size(2 * MiB, 4 * KiB, 1, 4 * GiB, 3 * GiB), 10 * MiB);
}

TEST(region_4cpu_4g)
{
	/* 2 MiB + 4 KiB + 48 KiB + 1 MiB + 4 MiB + 3 MiB = 0xa0d000 -> 12 MiB */
	CHECK_EQ(region_size(2 * MiB, 4 * KiB, 4, 4 * GiB, 3 * GiB), 12 * MiB);
	/* With 4 GiB of RAM (4 MiB share): 0xb0d000 -> 12 MiB */
	CHECK_EQ(region_size(2 * MiB, 4 * KiB, 4, 4 * GiB, 4 * GiB), 12 * MiB);
}

/* With the image sized so that everything else adds up to exactly 12 MiB only if the page tables take
 * pt_pages pages, one more byte must round up to 14 MiB. */
static void check_pt_pages(const char *file, int line, u64 phys_top, u64 pt_pages)
{
	u64 img = 8 * MiB - pt_pages * 4 * KiB - REGION_PER_CPU_BYTES;
	u64 a = region_size(img, 0, 1, phys_top, 0), b = region_size(img + 1, 0, 1, phys_top, 0);

	if (a != 12 * MiB || b != 14 * MiB)
		unit_fail(file, line, "phys_top %#llx: expected %llu page-table pages (got sizes %#llx, %#llx)",
			  (unsigned long long)phys_top, (unsigned long long)pt_pages,
			  (unsigned long long)a, (unsigned long long)b);
}

#define CHECK_PT_PAGES(top, n) check_pt_pages(__FILE__, __LINE__, top, n)

TEST(region_page_table_rounding)
{
	CHECK_PT_PAGES(0, 2 * 1);
	CHECK_PT_PAGES(1, 2 * (1 + 1 + 1));
	CHECK_PT_PAGES(1 * GiB, 2 * (1 + 1 + 1));
	CHECK_PT_PAGES(4 * GiB, 2 * (1 + 1 + 4));
	CHECK_PT_PAGES(4 * GiB + 1, 2 * (1 + 1 + 5));
	CHECK_PT_PAGES(512 * GiB, 2 * (1 + 1 + 512));
	CHECK_PT_PAGES(513 * GiB, 2 * (1 + 2 + 513));
	/* The RAM share: 1/1024 of ram_bytes. */
	CHECK_EQ(region_size(0, 0, 0, 0, 1024 * 2 * MiB), ALIGN_UP(REGION_BASE_HEAP_BYTES + 8 * KiB + 2 * MiB,
								   2 * MiB));
}
