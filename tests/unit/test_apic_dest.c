/* Logical IPI destinations (lib/apic-dest.c) against the SDM's examples and rules (Vol. 3, 11.6.2.2,
 * 11.12.10.2). */
#include <lib/apic-dest.h>
#include "unit.h"

TEST(apic_dest_xapic_flat)
{
	/* flat model: LDR bits 31:24 one bit per CPU; the destination is a mask */
	CHECK(xapic_logical_match(0x02, 0x02000000, APIC_DFR_RESET));
	CHECK(xapic_logical_match(0x03, 0x02000000, APIC_DFR_RESET));
	CHECK(!xapic_logical_match(0x01, 0x02000000, APIC_DFR_RESET));
	CHECK(!xapic_logical_match(0x01, 0, APIC_DFR_RESET));       /* LDR 0 after reset: no match */
	CHECK(xapic_logical_match(0xff, 0, APIC_DFR_RESET));        /* broadcast */
	CHECK(!xapic_logical_match(0x100, 0x01000000, APIC_DFR_RESET)); /* only 8 destination bits */
}

TEST(apic_dest_xapic_cluster)
{
	u32 dfr = 0x0fffffff; /* cluster model */
	/* LDR 0x12: cluster 1, CPU bit 1 */
	CHECK(xapic_logical_match(0x12, 0x12000000, dfr));
	CHECK(xapic_logical_match(0x13, 0x12000000, dfr));
	CHECK(!xapic_logical_match(0x11, 0x12000000, dfr));
	CHECK(!xapic_logical_match(0x22, 0x12000000, dfr));         /* another cluster */
	CHECK(xapic_logical_match(0xf2, 0x12000000, dfr));          /* all clusters */
	CHECK(xapic_logical_match(0xff, 0x12000000, dfr));
	CHECK(!xapic_logical_match(0xf1, 0x12000000, dfr));
}

TEST(apic_dest_x2apic)
{
	/* SDM 11.12.10.2: logical ID = (ID[19:4] << 16) | (1 << ID[3:0]) */
	CHECK(x2apic_logical_id(0) == 0x00000001);
	CHECK(x2apic_logical_id(1) == 0x00000002);
	CHECK(x2apic_logical_id(0x13) == 0x00010008);
	CHECK(x2apic_logical_match(0x00000002, 1));
	CHECK(x2apic_logical_match(0x00000003, 1));
	CHECK(!x2apic_logical_match(0x00000001, 1));
	CHECK(!x2apic_logical_match(0x00010002, 1));                /* cluster 1 is IDs 16-31 */
	CHECK(x2apic_logical_match(0x00010008, 0x13));
	CHECK(x2apic_logical_match(0xffffffff, 0x13));
	CHECK(!x2apic_logical_match(0x0000ffff, 0x13));
}
