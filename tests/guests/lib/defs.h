/* defs.h - constants shared by the guest test library's C and assembly files. */
#ifndef GUEST_DEFS_H
#define GUEST_DEFS_H

#define KERNEL_LOAD_ADDR   0x200000     /* multiboot a.out kludge load address (2 MiB) */
#define TRAMPOLINE_BASE    0x8000       /* AP real-mode start page (SIPI vector 0x08) */
#define MAX_CPUS           16
#define STACK_SIZE         16384

/* GDT selectors (same layout in the boot GDT and the AP trampoline GDT). */
#define SEL_CODE32         0x08
#define SEL_DATA           0x10
#define SEL_CODE64         0x18

/* Control register values the library runs with (BSP and APs). */
#define BOOT_CR0           0x80000031   /* PG | NE | ET | PE */
#define BOOT_CR4           0x00000020   /* PAE */

/* struct cpu field offsets used from assembly (checked by _Static_assert in lib.h). */
#define CPU_OFF_SELF        0
#define CPU_OFF_CATCH_RSP   8
#define CPU_OFF_FAULT_VEC   16
#define CPU_OFF_CATCH_ARMED 20

#endif
