/* pit.c - delays with PIT channel 2 (gate and OUT2 through port 0x61). BSP only. */
#include "lib.h"

#define PIT_HZ 1193182u

/* One mode-0 countdown of `count` PIT ticks (count <= 0xffff). */
static void pit_countdown(uint32_t count)
{
    uint8_t p = inb(0x61);
    outb(0x61, (p & ~0x02) | 0x01);      /* speaker off, gate 2 high */
    outb(0x43, 0xb0);                    /* channel 2, lo/hi byte, mode 0, binary */
    outb(0x42, count & 0xff);
    outb(0x42, count >> 8);
    /* OUT2 goes low on the control word and high at terminal count. */
    for (uint32_t i = 0; !(inb(0x61) & 0x20); i++) {
        if (i == 200000000u)
            panic("PIT channel 2 never reached terminal count");
        cpu_relax();
    }
}

void udelay(uint32_t us)
{
    while (us) {
        uint32_t chunk = us > 50000 ? 50000 : us;
        uint32_t count = (uint32_t)(((uint64_t)chunk * PIT_HZ + 999999) / 1000000);
        if (count < 2)
            count = 2;
        pit_countdown(count);
        us -= chunk;
    }
}

bool wait_until(bool (*cond)(void *), void *arg, uint32_t timeout_ms)
{
    for (uint32_t t = 0; t < timeout_ms * 10; t++) {
        if (cond(arg))
            return true;
        udelay(100);
    }
    return cond(arg);
}

struct u32_eq { volatile uint32_t *p; uint32_t val; };

static bool u32_eq_cond(void *arg)
{
    struct u32_eq *e = arg;
    return *e->p == e->val;
}

bool wait_u32_eq(volatile uint32_t *p, uint32_t val, uint32_t timeout_ms)
{
    struct u32_eq e = { p, val };
    return wait_until(u32_eq_cond, &e, timeout_ms);
}
