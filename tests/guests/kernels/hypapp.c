/* hypapp.bin - talks to the sample hypapps by hypercall (VMCALL). Run under XMHF built with the hypapp
 * the command line names; bare, every VMCALL is #UD and the kernel only checks that.
 *   app=helloworld  two HELO hypercalls: the count goes up by one, EBX is this CPU's index (0)
 *   app=pageprot    protect a page, write to it (blocked: the value stays), read it, count the blocked
 *                   writes, unprotect, write again (now it sticks); protecting a page of the
 *                   hypervisor's own region (the reserved hole in the E820 map) is refused
 */
#include "lib.h"

#define HC_HELLO 0x48454c4f
#define HC_PROTECT 0x50524f54
#define HC_UNPROTECT 0x554e5052
#define HC_COUNT 0x434e5442

static volatile uint64_t page[512] __attribute__((aligned(4096)));

struct hc { uint64_t a, b; };

static void do_vmcall(void *arg)
{
    struct hc *h = arg;
    asm volatile("vmcall" : "+a"(h->a), "+b"(h->b) : : "memory");
}

/* Returns the exception vector (NO_EXCEPTION if none); h holds the registers after the call. */
static int hypercall(struct hc *h)
{
    return catch_exception(do_vmcall, h);
}

static void store(volatile uint64_t *p, uint64_t v)
{
    asm volatile("movq %1, %0" : "=m"(*p) : "r"(v) : "memory");
}


static void helloworld(void)
{
    struct hc h1 = { HC_HELLO, 0xdead }, h2 = { HC_HELLO, 0xdead };
    test_begin("hypercall-helloworld");
    int e1 = hypercall(&h1), e2 = hypercall(&h2);
    test_check(e1 == NO_EXCEPTION && e2 == NO_EXCEPTION, "VMCALL gave %s / %s", exception_name(e1),
               exception_name(e2));
    test_check(h2.a == h1.a + 1 && h1.a >= 1, "counts %llu then %llu", (unsigned long long)h1.a,
               (unsigned long long)h2.a);
    test_check(h1.b == 0 && h2.b == 0, "CPU index %llu / %llu, expected 0", (unsigned long long)h1.b,
               (unsigned long long)h2.b);
    test_end();
}

static void pageprot(void)
{
    uint64_t gpa = (uint64_t)(uintptr_t)page; /* identity-mapped kernel */
    struct hc h;

    page[7] = 0x1111;
    test_begin("pageprot-protect");
    h = (struct hc){ HC_PROTECT, gpa };
    test_check(hypercall(&h) == NO_EXCEPTION && h.a == 0, "PROTECT returned 0x%llx", (unsigned long long)h.a);
    test_end();

    test_begin("pageprot-write-blocked");
    store(&page[7], 0x2222);
    test_check(page[7] == 0x1111, "value 0x%llx after a blocked write, expected 0x1111",
               (unsigned long long)page[7]);
    store(&page[8], 0x3333);
    test_check(page[8] == 0, "second write went through: 0x%llx", (unsigned long long)page[8]);
    h = (struct hc){ HC_COUNT, 0 };
    test_check(hypercall(&h) == NO_EXCEPTION && h.a == 2, "%llu writes blocked, expected 2",
               (unsigned long long)h.a);
    test_end();

    /* Read-modify-write and exchange forms: the store is dropped, the register and flag effects
     * happen as if the memory operand kept its value. */
    test_begin("pageprot-rmw-blocked");
    uint64_t flags, reg = 0x5555;
    asm volatile("lock addq $-0x1111, %1; pushfq; popq %0" : "=r"(flags), "+m"(page[7]) : : "cc", "memory");
    test_check(page[7] == 0x1111, "value 0x%llx after a blocked LOCK ADD", (unsigned long long)page[7]);
    test_check(flags & (1u << 6), "ZF clear after ADD of -0x1111 to 0x1111 (flags 0x%llx)", (unsigned long long)flags);
    asm volatile("xchgq %0, %1" : "+r"(reg), "+m"(page[7]) : : "memory");
    test_check(page[7] == 0x1111 && reg == 0x1111, "XCHG: memory 0x%llx register 0x%llx, expected 0x1111 both",
               (unsigned long long)page[7], (unsigned long long)reg);
    h = (struct hc){ HC_COUNT, 0 };
    test_check(hypercall(&h) == NO_EXCEPTION && h.a == 4, "%llu writes blocked, expected 4",
               (unsigned long long)h.a);
    test_end();

    test_begin("pageprot-unprotect");
    h = (struct hc){ HC_UNPROTECT, gpa };
    test_check(hypercall(&h) == NO_EXCEPTION && h.a == 0, "UNPROTECT returned 0x%llx", (unsigned long long)h.a);
    store(&page[7], 0x4444);
    test_check(page[7] == 0x4444, "value 0x%llx after unprotect, expected 0x4444", (unsigned long long)page[7]);
    test_end();

    test_begin("pageprot-refuses-hypervisor-memory");
    uint64_t hole = e820_reserved_hole();
    test_check(hole != 0, "no reserved hole (the hypervisor region) in the E820 map");
    h = (struct hc){ HC_PROTECT, hole };
    test_check(hypercall(&h) == NO_EXCEPTION && h.a == (uint64_t)-1, "PROTECT of 0x%llx returned 0x%llx",
               (unsigned long long)hole, (unsigned long long)h.a);
    test_end();
}

void test_main(void)
{
    char app[32] = "";

    cmdline_get("app", 0, app, sizeof(app));
    if (!strncmp(app, "helloworld", 11)) {
        helloworld();
    } else if (!strncmp(app, "pageprot", 9)) {
        pageprot();
    } else {
        struct hc h = { HC_HELLO, 0 };
        test_begin("vmcall-ud-without-hypapp");
        int e = hypercall(&h);
        test_check(e == EXC_UD, "VMCALL gave %s, expected #UD", exception_name(e));
        test_end();
    }
    tests_done();
}
