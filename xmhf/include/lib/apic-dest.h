/* Logical destinations of local-APIC IPIs (SDM Vol. 3, 11.6.2.2 "Logical Destination Mode" and
 * 11.12.10.2 "Deriving Logical x2APIC ID from the Local x2APIC ID"): whether an IPI with a logical
 * destination reaches a CPU, so that the hypervisor can emulate logical INIT/SIPI like physical ones.
 * Pure logic. */
#ifndef LIB_APIC_DEST_H
#define LIB_APIC_DEST_H
#include <xmhf/types.h>

#define APIC_LDR 0x0d0
#define APIC_DFR 0x0e0
#define APIC_DFR_RESET 0xffffffffU /* flat model; LDR resets to 0 */

/* The fixed logical x2APIC ID of the CPU with this x2APIC ID: cluster in bits 31:16, one bit of 16. */
static inline u32 x2apic_logical_id(u32 x2apic_id)
{
	return ((x2apic_id >> 4) << 16) | (1U << (x2apic_id & 0xf));
}

/* xAPIC: dest is the ICR's 8-bit destination, ldr/dfr the target's LDR and DFR registers. */
bool xapic_logical_match(u32 dest, u32 ldr, u32 dfr);
/* x2APIC: dest is the ICR's 32-bit destination. */
bool x2apic_logical_match(u32 dest, u32 x2apic_id);

#endif
