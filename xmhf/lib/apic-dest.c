/* Logical destinations of local-APIC IPIs (SDM Vol. 3, 11.6.2.2, 11.12.10.2). */
#include <lib/apic-dest.h>

bool xapic_logical_match(u32 dest, u32 ldr, u32 dfr)
{
	u32 id = ldr >> 24;

	dest &= 0xff;
	if (dest == 0xff)
		return true; /* broadcast to all, in both models */
	if ((dfr >> 28) == 0xf)
		return (dest & id) != 0; /* flat: one bit per CPU */
	/* cluster: bits 7:4 the cluster (15: all clusters), bits 3:0 a CPU mask within it */
	return ((dest >> 4) == (id >> 4) || (dest >> 4) == 0xf) && (dest & id & 0xf) != 0;
}

bool x2apic_logical_match(u32 dest, u32 x2apic_id)
{
	u32 ldr = x2apic_logical_id(x2apic_id);

	if (dest == 0xffffffffU)
		return true;
	return (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff) != 0;
}
