/* Local APIC registers (Intel SDM Vol. 3, 11.4 and 11.6). */
#ifndef X86_LAPIC_H
#define X86_LAPIC_H

#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

#define ICR_DELIVERY_FIXED (0U << 8)
#define ICR_DELIVERY_NMI (4U << 8)
#define ICR_DELIVERY_INIT (5U << 8)
#define ICR_DELIVERY_STARTUP (6U << 8)
#define ICR_DEST_PHYSICAL (0U << 11)
#define ICR_SEND_PENDING (1U << 12)
#define ICR_LEVEL_ASSERT (1U << 14)
#define ICR_TRIGGER_LEVEL (1U << 15)
#define ICR_SHORTHAND_NONE (0U << 18)
#define ICR_SHORTHAND_SELF (1U << 18)
#define ICR_SHORTHAND_ALL (2U << 18)
#define ICR_SHORTHAND_OTHERS (3U << 18)

#endif
