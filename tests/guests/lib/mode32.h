/* mode32.h - running 32-bit protected-mode code from a 64-bit test kernel (taskswitch, vmx32).
 *
 * run32(entry, gdt, idt) saves the long-mode state, loads the kernel's 32-bit GDT (code32 at 08H,
 * flat data at 10H, code64 at 18H: the selectors the switch uses), leaves IA-32e mode (paging and
 * EFER.LME off), loads the 32-bit IDT, and calls entry on a stack of the library's with every data
 * segment flat. When entry returns, or when 32-bit code jumps to run32_return (an exception stub
 * whose stack is lost), the way back restores CR4, CR3, EFER.LME, paging, the 64-bit GDT, IDT, stack,
 * GS base and RFLAGS. entry may turn on 32-bit paging; run32_return turns it off first.
 */
#ifndef GUEST_MODE32_H
#define GUEST_MODE32_H

#include <stdint.h>

/* LGDT in 64-bit mode reads a 64-bit base, LIDT in 32-bit mode the low half of it. */
struct __attribute__((packed)) desc_ptr32 {
    uint16_t limit;
    uint64_t base;
};

enum { MODE32_CODE32 = 0x08, MODE32_DATA = 0x10, MODE32_CODE64 = 0x18 };

void run32(void *entry, const struct desc_ptr32 *gdt, const struct desc_ptr32 *idt);
extern char run32_return[]; /* 32-bit code: jump here to end run32 from anywhere */
extern uint8_t run32_stack[4096]; /* entry's stack */

static inline uint32_t addr32(const void *p)
{
    return (uint32_t)(uintptr_t)p;
}

/* An 8-byte code or data segment descriptor (SDM Vol. 3, 3.4.5); flags = G, D/B, L, AVL. */
static inline uint64_t seg_desc32(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)access << 40) |
           ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)(flags & 0xf) << 52) |
           ((uint64_t)(base >> 24) << 56);
}

#endif
