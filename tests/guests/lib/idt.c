/* idt.c - IDT, exception dispatch with expected-exception fixups, NMI and IRQ handlers. */
#include "lib.h"

struct idt_entry {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));
static struct { uint16_t pad[3]; uint16_t limit; uint64_t base; } __attribute__((packed, aligned(8))) idtr;
static irq_handler_t irq_handlers[256];

extern char isr_stubs[];
extern char catch_resume[];
struct extable { uint64_t from, to; };
extern const struct extable __extable_start[], __extable_end[];

void idt_init(void)
{
    for (int v = 0; v < 256; v++) {
        uint64_t a = (uint64_t)(uintptr_t)isr_stubs + 16 * v;
        idt[v].off0 = a & 0xffff;
        idt[v].sel = SEL_CODE64;
        idt[v].ist = 0;
        idt[v].type = 0x8e;               /* present, DPL 0, 64-bit interrupt gate */
        idt[v].off1 = (a >> 16) & 0xffff;
        idt[v].off2 = a >> 32;
        idt[v].zero = 0;
    }
    idtr.limit = sizeof(idt) - 1;
    idtr.base = (uint64_t)(uintptr_t)idt;
}

void idt_load(void)
{
    asm volatile("lidt %0" : : "m"(idtr.limit));
}

void set_irq_handler(int vector, irq_handler_t h)
{
    irq_handlers[vector & 0xff] = h;
}

const char *exception_name(int v)
{
    static const char *const names[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP",
        "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
        "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
    };
    if (v == NO_EXCEPTION)
        return "none";
    if (v >= 0 && v < 32)
        return names[v];
    return "irq";
}

void trap_dispatch(struct regs *r)
{
    struct cpu *c = this_cpu();
    int v = (int)r->vector;

    if (v == EXC_NMI) {
        if (c->in_nmi)
            c->nmi_nested++;
        c->in_nmi = 1;
        c->nmi_count++;
        nmi_hook_t h = c->nmi_hook;
        if (h)
            h(c, r);
        c->in_nmi = 0;
        return;
    }

    if (v < 32) {
        for (const struct extable *e = __extable_start; e < __extable_end; e++) {
            if (e->from == r->rip) {
                c->fault_vector = v;
                c->fault_error = r->error;
                c->fault_rip = r->rip;
                c->fault_cr2 = v == EXC_PF ? read_cr2() : 0;
                r->rip = e->to;
                return;
            }
        }
        if (c->catch_armed) {
            c->catch_armed = 0;
            c->fault_vector = v;
            c->fault_error = r->error;
            c->fault_rip = r->rip;
            c->fault_cr2 = v == EXC_PF ? read_cr2() : 0;
            r->rip = (uint64_t)(uintptr_t)catch_resume;
            r->rsp = c->catch_rsp;
            return;
        }
        panic("unexpected exception %s (vector %d) on CPU %d at rip=0x%llx err=0x%llx cr2=0x%llx",
              exception_name(v), v, c->idx, (unsigned long long)r->rip,
              (unsigned long long)r->error, (unsigned long long)read_cr2());
    }

    c->irq_count[v]++;
    if (v == SPURIOUS_VECTOR)
        return;                           /* no EOI for spurious interrupts */
    if (irq_handlers[v])
        irq_handlers[v](r);
    apic_eoi();
}
