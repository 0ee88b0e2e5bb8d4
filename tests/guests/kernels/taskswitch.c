/* taskswitch.bin - hardware task switches in 32-bit protected mode (SDM Vol. 3, 7.3).
 *
 * In VMX non-root operation every task switch is a VM exit the hypervisor emulates; bare Bochs is the
 * reference. Each scenario leaves long mode for 32-bit protected mode (paging off) with its own GDT,
 * IDT and TSSs, runs a few switches in 32-bit code that records what each task sees, and comes back to
 * long mode, where the records are checked against what SDM 7.3 says (Table 7-2 for busy/NT/link):
 *   ts-jmp             far JMP to a TSS and back: registers saved/loaded, EIP saved after the JMP,
 *                      busy flags moved, CR0.TS set, no link, NT untouched
 *   ts-call-iret       far CALL to a TSS: NT set, link = caller, both busy; IRET back clears the
 *                      callee's busy flag and NT in its saved EFLAGS
 *   ts-int-gate        INT 40H through a task gate in the IDT; IRET back resumes after the INT
 *   ts-ud-gate         #UD through a task gate: the old task's saved EIP is the UD2, no error code
 *   ts-gp-gate         #GP through a task gate: the error code is pushed on the new task's stack
 *   ts-tss16           far JMP to a 16-bit TSS (IP, AX, SP loaded; FS/GS null) and back
 *   ts-ldt             the new task's LDTR and a DS selector in its LDT
 *   ts-gdt-gate        far JMP through a task gate in the GDT
 *   ts-fault-after-commit  a TSS whose DS is execute-only code: #TS(DS) in the new task
 *   ts-small-tss       a TSS limit below 67H: #TS(TSS) in the old task (checked before any exit)
 *   ts-busy-gp         JMP to the current (busy) TSS: #GP(TSS)
 *   ts-t-bit           the T flag in the new TSS: #DB before its first instruction, DR6.BT set
 *   ts-dr7             DR7's local enables L0-L3 and LE cleared by a switch, global ones kept
 * Under a hypervisor that does not emulate task switches the first scenario stops the machine.
 */
#include "lib.h"
#include "mode32.h"

/* ---- descriptor tables of the 32-bit phase ---- */
enum {
    T_CODE32 = 0x08, T_DATA = 0x10, T_CODE64 = 0x18, T_TSS_MAIN = 0x20, T_TSS_B = 0x28,
    T_TSS_C = 0x30, T_TSS_D = 0x38, T_TSS_E = 0x40, T_TSS_16 = 0x48, T_LDT = 0x50, T_TSS_G = 0x58,
    T_TSS_H = 0x60, T_TSS_SMALL = 0x68, T_GATE_B = 0x70, T_CODE_XO = 0x78, T_TSS_T = 0x80,
    T_CODE_F = 0x88, T_STACK_F = 0x90, T_GDT_END = 0x98,
};

struct tss32 {
    uint16_t link, r0;
    uint32_t esp0;
    uint16_t ss0, r1;
    uint32_t esp1;
    uint16_t ss1, r2;
    uint32_t esp2;
    uint16_t ss2, r3;
    uint32_t cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint16_t es, r4, cs, r5, ss, r6, ds, r7, fs, r8, gs, r9, ldt, r10, trap, iomap;
} __attribute__((packed));

struct tss16 {
    uint16_t link, sp0, ss0, sp1, ss1, sp2, ss2, ip, flags, ax, cx, dx, bx, sp, bp, si, di, es, cs, ss,
        ds, ldt;
} __attribute__((packed));

_Static_assert(sizeof(struct tss32) == 0x68, "32-bit TSS layout");
_Static_assert(sizeof(struct tss16) == 0x2c, "16-bit TSS layout");

uint64_t tgdt[T_GDT_END / 8] __attribute__((aligned(16), used));
uint64_t tldt[2] __attribute__((aligned(16), used));
uint64_t tidt[256] __attribute__((aligned(16), used));
struct tss32 tss_main, tss_b, tss_c, tss_d, tss_e, tss_g, tss_h, tss_small, tss_t
    __attribute__((aligned(128)));
struct tss16 tss_f __attribute__((aligned(64)));
uint8_t stacks[8][1024] __attribute__((aligned(16)));
uint32_t ldt_data_word __attribute__((aligned(16))) = 0x5a5aa5a5;

/* What the 32-bit code records (written by the asm below; names are its symbols). */
uint32_t r_main_eax, r_main_ebx, r_main_esi, r_main_eflags, r_main_tr, r_main_cr0;
uint32_t r_t_eax, r_t_edi, r_t_esp, r_t_eflags, r_t_tr, r_t_link, r_t_ds, r_t_fs, r_t_ldtr, r_t_word;
uint32_t r_t_err, r_t_saved_eip, r_t_gdt_main_hi, r_t_gdt_new_hi;
uint32_t r_exc_vector = 0xffffffff, r_exc_error, r_exc_eip, r_exc_tr, r_exc_dr6;
uint32_t r_done;

/* 32-bit code labels (see the asm) */
extern char s_jmp[], s_jmp_resume[], s_call[], s_call_resume[], s_int[], s_int_resume[], s_ud[],
    s_ud_insn[], s_gp[], s_gp_insn[], s_jmp16[], s_ldt[], s_gdt_gate[], s_after_commit[], s_small[],
    s_busy[], s_tbit[], s_dr7[];
extern char task_jmp_back[], task_iret[], task_int[], task_ud[], task_gp[], task_16[], task_ldt[],
    task_never[], task_t[], task_dr7[];
extern uint32_t exc_stubs32[32];

/* The 32-bit entry of every scenario: the main task's TSS into TR, the scenario, r_done. */
uint32_t ts_scenario __attribute__((used));
asm(".pushsection .text\n"
    ".code32\n"
    "ts_enter:\n"
    "  mov $0x20, %eax\n"
    "  ltr %ax\n"
    "  call *ts_scenario\n"
    "  movl $1, r_done\n"
    "  ret\n"
    ".code64\n"
    ".popsection\n");
extern char ts_enter[];

/* Exception stubs of the 32-bit phase: record vector, error code, EIP, TR, DR6; end the scenario. */
asm(".pushsection .text\n"
    ".code32\n"
    ".macro stub32 v\n"
    "stub32_\\v:\n"
    "  .if (\\v == 8) || (\\v >= 10 && \\v <= 14) || (\\v == 17) || (\\v == 21)\n"
    "  .else\n"
    "  push $0\n"
    "  .endif\n"
    "  push $\\v\n"
    "  jmp exc_common32\n"
    ".endm\n"
    ".altmacro\n"
    ".set i, 0\n"
    ".rept 32\n"
    "  stub32 %i\n"
    "  .set i, i + 1\n"
    ".endr\n"
    "exc_common32:\n"
    "  mov $0x10, %eax\n"           /* the faulting task's DS may be unusable */
    "  mov %eax, %ds\n"
    "  pop r_exc_vector\n"
    "  pop r_exc_error\n"
    "  pop r_exc_eip\n"
    "  str %ax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_exc_tr\n"
    "  mov %dr6, %eax\n"
    "  mov %eax, r_exc_dr6\n"
    "  jmp run32_return\n"
    ".macro stubaddr v\n"
    "  .long stub32_\\v\n"
    ".endm\n"
    ".pushsection .data\n"
    ".balign 4\n"
    ".globl exc_stubs32\n"
    "exc_stubs32:\n"
    ".set i, 0\n"
    ".rept 32\n"
    "  stubaddr %i\n"
    "  .set i, i + 1\n"
    ".endr\n"
    ".popsection\n"
    ".noaltmacro\n"
    ".code64\n"
    ".popsection\n");

/* The scenarios (called from ts_enter in the main task) and the tasks they switch to. */
asm(".pushsection .text\n"
    ".code32\n"
    /* main-task registers, flags, TR and CR0 after coming back */
    "record_main:\n"
    "  mov %eax, r_main_eax\n"
    "  mov %ebx, r_main_ebx\n"
    "  mov %esi, r_main_esi\n"
    "  pushf\n"
    "  pop r_main_eflags\n"
    "  str %ax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_main_tr\n"
    "  mov %cr0, %eax\n"
    "  mov %eax, r_main_cr0\n"
    "  ret\n"
    /* what a task sees on arrival */
    "record_task:\n"
    "  mov %eax, r_t_eax\n"
    "  mov %edi, r_t_edi\n"
    "  lea 4(%esp), %eax\n"
    "  mov %eax, r_t_esp\n"
    "  pushf\n"
    "  pop r_t_eflags\n"
    "  str %ax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_t_tr\n"
    "  mov %ds, %eax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_t_ds\n"
    "  mov %fs, %eax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_t_fs\n"
    "  sldt %ax\n"
    "  movzwl %ax, %eax\n"
    "  mov %eax, r_t_ldtr\n"
    "  mov tgdt + 0x24, %eax\n"
    "  mov %eax, r_t_gdt_main_hi\n"
    "  mov r_t_tr, %eax\n"
    "  mov tgdt + 4(%eax), %eax\n"
    "  mov %eax, r_t_gdt_new_hi\n"
    "  ret\n"

    ".globl s_jmp, s_jmp_resume\n"
    "s_jmp:\n"
    "  mov $0x11111111, %eax\n"
    "  mov $0x22222222, %ebx\n"
    "  mov $0x33333333, %esi\n"
    "  ljmp $0x28, $0\n"
    "s_jmp_resume:\n"
    "  jmp record_main\n"

    ".globl task_jmp_back\n"
    "task_jmp_back:\n"
    "  call record_task\n"
    "  ljmp $0x20, $0\n"
    "  ud2\n"

    ".globl s_call, s_call_resume\n"
    "s_call:\n"
    "  mov $0x44444444, %eax\n"
    "  lcall $0x28, $0\n"
    "s_call_resume:\n"
    "  jmp record_main\n"

    ".globl task_iret\n"
    "task_iret:\n"
    "  call record_task\n"
    "  movzwl tss_b, %eax\n"
    "  mov %eax, r_t_link\n"
    "  iret\n"

    ".globl s_int, s_int_resume\n"
    "s_int:\n"
    "  mov $0x55555555, %eax\n"
    "  int $0x40\n"
    "s_int_resume:\n"
    "  jmp record_main\n"

    ".globl task_int\n"
    "task_int:\n"
    "  call record_task\n"
    "  movzwl tss_c, %eax\n"
    "  mov %eax, r_t_link\n"
    "  iret\n"

    ".globl s_ud, s_ud_insn\n"
    "s_ud:\n"
    "  mov $0x66666666, %eax\n"
    "s_ud_insn:\n"
    "  ud2\n"
    "  jmp record_main\n"

    /* #UD handler task: note the faulting EIP the main TSS holds, step over the UD2, return */
    ".globl task_ud\n"
    "task_ud:\n"
    "  call record_task\n"
    "  mov tss_main + 0x20, %eax\n"
    "  mov %eax, r_t_saved_eip\n"
    "  addl $2, tss_main + 0x20\n"
    "  iret\n"

    ".globl s_gp, s_gp_insn\n"
    "s_gp:\n"
    "  mov $0x7b, %eax\n"          /* T_CODE_XO | RPL 3: loading it into DS is #GP(78H) */
    "s_gp_insn:\n"
    "  mov %eax, %ds\n"
    "  jmp record_main\n"

    ".globl task_gp\n"
    "task_gp:\n"
    "  call record_task\n"
    "  pop %eax\n"
    "  mov %eax, r_t_err\n"
    "  mov tss_main + 0x20, %eax\n"
    "  mov %eax, r_t_saved_eip\n"
    "  addl $2, tss_main + 0x20\n"
    "  iret\n"

    ".globl s_jmp16\n"
    "s_jmp16:\n"
    "  ljmp $0x48, $0\n"
    "  jmp record_main\n"

    ".globl task_16\n"
    "task_16:\n"
    "  call record_task\n"
    "  ljmp $0x20, $0\n"

    ".globl s_ldt\n"
    "s_ldt:\n"
    "  ljmp $0x58, $0\n"
    "  jmp record_main\n"

    ".globl task_ldt\n"
    "task_ldt:\n"
    "  mov %ds, %ebx\n"
    "  mov %ds:0, %ecx\n"           /* DS is LDT slot 1, based at ldt_data_word */
    "  mov $0x10, %eax\n"
    "  mov %eax, %ds\n"             /* the records are reached through a flat DS */
    "  call record_task\n"
    "  mov %ecx, r_t_word\n"
    "  movzwl %bx, %ebx\n"
    "  mov %ebx, r_t_ds\n"
    "  ljmp $0x20, $0\n"

    ".globl s_gdt_gate\n"
    "s_gdt_gate:\n"
    "  ljmp $0x70, $0\n"
    "  jmp record_main\n"

    ".globl s_after_commit, s_small, s_busy, s_tbit\n"
    "s_after_commit:\n"
    "  ljmp $0x60, $0\n"
    "  ret\n"
    "s_small:\n"
    "  ljmp $0x68, $0\n"
    "  ret\n"
    "s_busy:\n"
    "  ljmp $0x20, $0\n"
    "  ret\n"
    "s_tbit:\n"
    "  mov %dr6, %eax\n"
    "  and $0xffff0ff0, %eax\n"     /* clear B0-B3 and BD/BS/BT */
    "  mov %eax, %dr6\n"
    "  ljmp $0x80, $0\n"
    "  ret\n"

    ".globl task_never, task_t\n"
    "task_never:\n"
    "  call record_task\n"
    "  ljmp $0x20, $0\n"
    "task_t:\n"
    "  call record_task\n"
    "  ljmp $0x20, $0\n"

    /* DR7: set L0 | G1 | LE | GE (breakpoint addresses stay 0, nothing fires in this code), switch */
    ".globl s_dr7, task_dr7\n"
    "s_dr7:\n"
    "  mov $0x309, %eax\n"
    "  mov %eax, %dr7\n"
    "  ljmp $0x28, $0\n"
    "  mov %dr7, %eax\n"
    "  mov %eax, r_t_word\n"
    "  xor %eax, %eax\n"
    "  mov %eax, %dr7\n"
    "  ret\n"
    "task_dr7:\n"
    "  mov %dr7, %eax\n"
    "  mov %eax, r_t_eax\n"
    "  ljmp $0x20, $0\n"
    ".code64\n"
    ".popsection\n");

struct desc_ptr32 tgdt_desc = { sizeof(tgdt) - 1, 0 };
struct desc_ptr32 tidt_desc = { sizeof(tidt) - 1, 0 };

/* One scenario: its 32-bit code runs as the main task (TR = 20H). */
static void run_ts(void *scenario)
{
    ts_scenario = addr32(scenario);
    run32(ts_enter, &tgdt_desc, &tidt_desc);
}

static uint64_t task_gate(uint16_t tss_sel)
{
    return ((uint64_t)tss_sel << 16) | (0x85ULL << 40);
}

static uint64_t int_gate32(void *handler)
{
    uint32_t off = (uint32_t)(uintptr_t)handler;
    return (off & 0xffff) | ((uint64_t)T_CODE32 << 16) | (0x8eULL << 40) | ((uint64_t)(off >> 16) << 48);
}

static void task_init(struct tss32 *t, void *eip, int stack)
{
    memset(t, 0, sizeof(*t));
    t->eip = addr32(eip);
    t->eflags = 0x2;
    t->esp = addr32(stacks[stack] + sizeof(stacks[stack]));
    t->cs = T_CODE32;
    t->ss = t->ds = t->es = T_DATA;
    t->eax = 0xa0a0a0a0;
    t->edi = 0xd1d1d1d1;
    t->iomap = sizeof(*t);
}

/* Fresh tables for each scenario: every TSS available, the main one loaded by ts_enter. */
static void setup(void)
{
    memset(tgdt, 0, sizeof(tgdt));
    tgdt[T_CODE32 / 8] = seg_desc32(0, 0xfffff, 0x9b, 0xc);
    tgdt[T_DATA / 8] = seg_desc32(0, 0xfffff, 0x93, 0xc);
    tgdt[T_CODE64 / 8] = seg_desc32(0, 0xfffff, 0x9b, 0xa);
    tgdt[T_TSS_MAIN / 8] = seg_desc32(addr32(&tss_main), 0x67, 0x89, 0);
    tgdt[T_TSS_B / 8] = seg_desc32(addr32(&tss_b), 0x67, 0x89, 0);
    tgdt[T_TSS_C / 8] = seg_desc32(addr32(&tss_c), 0x67, 0x89, 0);
    tgdt[T_TSS_D / 8] = seg_desc32(addr32(&tss_d), 0x67, 0x89, 0);
    tgdt[T_TSS_E / 8] = seg_desc32(addr32(&tss_e), 0x67, 0x89, 0);
    tgdt[T_TSS_16 / 8] = seg_desc32(addr32(&tss_f), 0x2b, 0x81, 0);
    tgdt[T_LDT / 8] = seg_desc32(addr32(tldt), sizeof(tldt) - 1, 0x82, 0);
    tgdt[T_TSS_G / 8] = seg_desc32(addr32(&tss_g), 0x67, 0x89, 0);
    tgdt[T_TSS_H / 8] = seg_desc32(addr32(&tss_h), 0x67, 0x89, 0);
    tgdt[T_TSS_SMALL / 8] = seg_desc32(addr32(&tss_small), 0x60, 0x89, 0);
    tgdt[T_GATE_B / 8] = task_gate(T_TSS_B);
    tgdt[T_CODE_XO / 8] = seg_desc32(0, 0xfffff, 0x99, 0xc);
    tgdt[T_TSS_T / 8] = seg_desc32(addr32(&tss_t), 0x67, 0x89, 0);
    /* The 16-bit task's IP and SP are 16 bits: its code and stack segments are based 100H below its
     * code and 8000H below its stack top (4 GiB limits, so the 32-bit code it calls is reachable). */
    tgdt[T_CODE_F / 8] = seg_desc32(addr32(task_16) - 0x100, 0xfffff, 0x9b, 0xc);
    tgdt[T_STACK_F / 8] = seg_desc32(addr32(stacks[7] + 1024) - 0x8000, 0xffff, 0x93, 0);
    tldt[0] = 0;
    tldt[1] = seg_desc32(addr32(&ldt_data_word), 0xfff, 0x93, 0x4);
    for (int v = 0; v < 32; v++)
        tidt[v] = int_gate32((void *)(uintptr_t)exc_stubs32[v]);
    for (int v = 32; v < 256; v++)
        tidt[v] = 0;
    tgdt_desc.base = addr32(tgdt);
    tidt_desc.base = addr32(tidt);

    memset(&tss_main, 0, sizeof(tss_main));
    tss_main.iomap = sizeof(tss_main);
    task_init(&tss_b, task_jmp_back, 1);
    task_init(&tss_c, task_int, 2);
    task_init(&tss_d, task_ud, 3);
    task_init(&tss_e, task_gp, 4);
    task_init(&tss_g, task_ldt, 5);
    tss_g.ldt = T_LDT;
    tss_g.ds = 0x0c; /* LDT slot 1, TI */
    task_init(&tss_h, task_never, 6);
    tss_h.ds = T_CODE_XO;
    task_init(&tss_small, task_never, 6);
    task_init(&tss_t, task_t, 7);
    tss_t.trap = 1;
    memset(&tss_f, 0, sizeof(tss_f));
    tss_f.ip = 0x100;
    tss_f.flags = 0x2;
    tss_f.ax = 0x1616;
    tss_f.di = 0x1d1d;
    tss_f.sp = 0x8000;
    tss_f.cs = T_CODE_F;
    tss_f.ss = T_STACK_F;
    tss_f.ds = tss_f.es = T_DATA;

    r_main_eax = r_main_ebx = r_main_esi = r_main_eflags = r_main_tr = r_main_cr0 = 0;
    r_t_eax = r_t_edi = r_t_esp = r_t_eflags = r_t_tr = r_t_link = r_t_ds = r_t_fs = r_t_ldtr = 0;
    r_t_word = r_t_err = r_t_saved_eip = r_t_gdt_main_hi = r_t_gdt_new_hi = 0;
    r_exc_vector = 0xffffffff;
    r_exc_error = r_exc_eip = r_exc_tr = r_exc_dr6 = 0;
    r_done = 0;
}

static bool busy(uint32_t hi)
{
    return (hi >> 9) & 1;
}

static bool gdt_busy(uint16_t sel)
{
    return (tgdt[sel / 8] >> 41) & 1;
}

static void no_exception(void)
{
    test_check(r_exc_vector == 0xffffffff, "unexpected exception %u (error 0x%x) at EIP 0x%x, TR 0x%x",
               r_exc_vector, r_exc_error, r_exc_eip, r_exc_tr);
}

static void t_jmp(void)
{
    test_begin("ts-jmp");
    setup();
    run_ts(s_jmp);
    no_exception();
    test_check(r_done == 1, "scenario did not return");
    test_check(r_t_tr == T_TSS_B, "TR in the new task 0x%x", r_t_tr);
    test_check(r_t_eax == 0xa0a0a0a0 && r_t_edi == 0xd1d1d1d1, "new task's EAX 0x%x EDI 0x%x", r_t_eax,
               r_t_edi);
    test_check(r_t_esp == addr32(stacks[1] + 1024), "new task's ESP 0x%x", r_t_esp);
    test_check(r_t_eflags == 0x2, "new task's EFLAGS 0x%x (no NT after JMP)", r_t_eflags);
    test_check(!busy(r_t_gdt_main_hi) && busy(r_t_gdt_new_hi), "busy flags in the new task: old %d new %d",
               busy(r_t_gdt_main_hi), busy(r_t_gdt_new_hi));
    test_check(tss_main.eip == addr32(s_jmp_resume), "saved EIP 0x%x, expected 0x%x", tss_main.eip,
               addr32(s_jmp_resume));
    test_check(tss_main.eax == 0x11111111 && tss_main.ebx == 0x22222222 && tss_main.esi == 0x33333333,
               "saved EAX 0x%x EBX 0x%x ESI 0x%x", tss_main.eax, tss_main.ebx, tss_main.esi);
    test_check(tss_main.cs == T_CODE32 && tss_main.ss == T_DATA && tss_main.ds == T_DATA,
               "saved CS 0x%x SS 0x%x DS 0x%x", tss_main.cs, tss_main.ss, tss_main.ds);
    test_check(tss_b.link == 0, "link written on JMP: 0x%x", tss_b.link);
    test_check(r_main_eax == 0x11111111 && r_main_ebx == 0x22222222 && r_main_esi == 0x33333333,
               "back in the main task: EAX 0x%x EBX 0x%x ESI 0x%x", r_main_eax, r_main_ebx, r_main_esi);
    test_check(r_main_tr == T_TSS_MAIN, "TR back 0x%x", r_main_tr);
    test_check(r_main_cr0 & (1u << 3), "CR0.TS not set by the switch: CR0 0x%x", r_main_cr0);
    test_check(gdt_busy(T_TSS_MAIN) && !gdt_busy(T_TSS_B), "busy flags at the end: main %d B %d",
               gdt_busy(T_TSS_MAIN), gdt_busy(T_TSS_B));
    test_check(tss_b.eip == addr32(task_jmp_back) + 5 + 7, "B's saved EIP 0x%x", tss_b.eip);
    test_end();
}

static void t_call_iret(void)
{
    test_begin("ts-call-iret");
    setup();
    tss_b.eip = addr32(task_iret);
    run_ts(s_call);
    no_exception();
    test_check(r_t_tr == T_TSS_B, "TR in the callee 0x%x", r_t_tr);
    test_check(r_t_eflags == (0x2 | (1u << 14)), "callee's EFLAGS 0x%x (NT expected)", r_t_eflags);
    test_check(r_t_link == T_TSS_MAIN, "callee's link 0x%x", r_t_link);
    test_check(busy(r_t_gdt_main_hi) && busy(r_t_gdt_new_hi), "busy in the callee: caller %d callee %d",
               busy(r_t_gdt_main_hi), busy(r_t_gdt_new_hi));
    test_check(tss_main.eip == addr32(s_call_resume), "caller's saved EIP 0x%x", tss_main.eip);
    test_check(r_main_eax == 0x44444444, "caller's EAX back 0x%x", r_main_eax);
    test_check(!(r_main_eflags & (1u << 14)), "caller's EFLAGS after IRET 0x%x", r_main_eflags);
    test_check(gdt_busy(T_TSS_MAIN) && !gdt_busy(T_TSS_B), "busy after IRET: caller %d callee %d",
               gdt_busy(T_TSS_MAIN), gdt_busy(T_TSS_B));
    test_check(!(tss_b.eflags & (1u << 14)), "callee's saved EFLAGS 0x%x still NT", tss_b.eflags);
    test_check(r_main_tr == T_TSS_MAIN, "TR back 0x%x", r_main_tr);
    test_end();
}

static void t_int_gate(void)
{
    test_begin("ts-int-gate");
    setup();
    tidt[0x40] = task_gate(T_TSS_C);
    run_ts(s_int);
    no_exception();
    test_check(r_t_tr == T_TSS_C, "TR in the handler task 0x%x", r_t_tr);
    test_check(r_t_link == T_TSS_MAIN && (r_t_eflags & (1u << 14)), "handler link 0x%x EFLAGS 0x%x",
               r_t_link, r_t_eflags);
    test_check(tss_main.eip == addr32(s_int_resume), "saved EIP 0x%x (after INT 40H 0x%x)", tss_main.eip,
               addr32(s_int_resume));
    test_check(r_t_esp == addr32(stacks[2] + 1024), "handler ESP 0x%x (nothing pushed)", r_t_esp);
    test_check(r_main_eax == 0x55555555 && r_main_tr == T_TSS_MAIN, "back: EAX 0x%x TR 0x%x", r_main_eax,
               r_main_tr);
    test_check(!gdt_busy(T_TSS_C), "handler task still busy");
    test_end();
}

static void t_ud_gate(void)
{
    test_begin("ts-ud-gate");
    setup();
    tidt[6] = task_gate(T_TSS_D);
    run_ts(s_ud);
    no_exception();
    test_check(r_t_tr == T_TSS_D, "TR in the #UD task 0x%x", r_t_tr);
    test_check(r_t_saved_eip == addr32(s_ud_insn), "saved EIP 0x%x, the UD2 is at 0x%x", r_t_saved_eip,
               addr32(s_ud_insn));
    test_check(r_t_esp == addr32(stacks[3] + 1024), "#UD task ESP 0x%x (no error code)", r_t_esp);
    test_check(r_main_eax == 0x66666666 && r_done == 1, "back: EAX 0x%x done %u", r_main_eax, r_done);
    test_end();
}

static void t_gp_gate(void)
{
    test_begin("ts-gp-gate");
    setup();
    tidt[13] = task_gate(T_TSS_E);
    run_ts(s_gp);
    no_exception();
    test_check(r_t_tr == T_TSS_E, "TR in the #GP task 0x%x", r_t_tr);
    test_check(r_t_esp == addr32(stacks[4] + 1024) - 4, "#GP task ESP 0x%x (error code pushed)", r_t_esp);
    test_check(r_t_err == T_CODE_XO, "error code 0x%x", r_t_err);
    test_check(r_t_saved_eip == addr32(s_gp_insn), "saved EIP 0x%x, the MOV DS is at 0x%x", r_t_saved_eip,
               addr32(s_gp_insn));
    test_check(r_done == 1 && r_main_tr == T_TSS_MAIN, "back: done %u TR 0x%x", r_done, r_main_tr);
    test_end();
}

static void t_tss16(void)
{
    test_begin("ts-tss16");
    setup();
    run_ts(s_jmp16);
    no_exception();
    test_check(r_t_tr == T_TSS_16, "TR 0x%x", r_t_tr);
    test_check((r_t_eax & 0xffff) == 0x1616 && (r_t_edi & 0xffff) == 0x1d1d, "AX 0x%x DI 0x%x", r_t_eax,
               r_t_edi);
    test_check((r_t_esp & 0xffff) == 0x8000, "SP 0x%x", r_t_esp);
    test_check(r_t_fs == 0, "FS 0x%x (null from a 16-bit TSS)", r_t_fs);
    test_check(r_t_tr == T_TSS_16 && !busy(r_t_gdt_main_hi) && busy(r_t_gdt_new_hi), "busy: main %d 16-bit %d",
               busy(r_t_gdt_main_hi), busy(r_t_gdt_new_hi));
    test_check(tss_f.ip == 0x100 + 5 + 7, "16-bit TSS saved IP 0x%x", tss_f.ip);
    test_check(r_done == 1 && r_main_tr == T_TSS_MAIN && !gdt_busy(T_TSS_16), "back: done %u TR 0x%x",
               r_done, r_main_tr);
    test_end();
}

static void t_ldt(void)
{
    test_begin("ts-ldt");
    setup();
    run_ts(s_ldt);
    no_exception();
    test_check(r_t_ldtr == T_LDT, "LDTR 0x%x", r_t_ldtr);
    test_check(r_t_ds == 0x0c, "DS 0x%x", r_t_ds);
    test_check(r_t_word == 0x5a5aa5a5, "word through the LDT segment 0x%x", r_t_word);
    test_check((tldt[1] >> 40) & 1, "LDT descriptor's accessed flag not set");
    test_check(r_done == 1, "not back");
    test_end();
}

static void t_gdt_gate(void)
{
    test_begin("ts-gdt-gate");
    setup();
    run_ts(s_gdt_gate);
    no_exception();
    test_check(r_t_tr == T_TSS_B, "TR through the GDT task gate 0x%x", r_t_tr);
    test_check(r_done == 1 && r_main_tr == T_TSS_MAIN, "back: done %u TR 0x%x", r_done, r_main_tr);
    test_end();
}

static void t_after_commit(void)
{
    test_begin("ts-fault-after-commit");
    setup();
    run_ts(s_after_commit);
    test_check(r_exc_vector == EXC_TS && r_exc_error == T_CODE_XO, "exception %u error 0x%x, expected #TS(0x%x)",
               r_exc_vector, r_exc_error, T_CODE_XO);
    test_check(r_exc_tr == T_TSS_H, "TR at the fault 0x%x (the new task)", r_exc_tr);
    test_check(r_exc_eip == addr32(task_never), "faulting EIP 0x%x (the new task's first)", r_exc_eip);
    test_check(tss_main.eip == addr32(s_after_commit) + 7, "old task's saved EIP 0x%x", tss_main.eip);
    test_check(gdt_busy(T_TSS_H) && !gdt_busy(T_TSS_MAIN), "busy: new %d old %d", gdt_busy(T_TSS_H),
               gdt_busy(T_TSS_MAIN));
    test_end();
}

static void t_small(void)
{
    test_begin("ts-small-tss");
    setup();
    run_ts(s_small);
    test_check(r_exc_vector == EXC_TS && r_exc_error == T_TSS_SMALL, "exception %u error 0x%x", r_exc_vector,
               r_exc_error);
    test_check(r_exc_tr == T_TSS_MAIN && r_exc_eip == addr32(s_small), "TR 0x%x EIP 0x%x", r_exc_tr,
               r_exc_eip);
    test_check(!gdt_busy(T_TSS_SMALL) && gdt_busy(T_TSS_MAIN), "busy flags changed");
    test_end();
}

static void t_busy(void)
{
    test_begin("ts-busy-gp");
    setup();
    run_ts(s_busy);
    test_check(r_exc_vector == EXC_GP && r_exc_error == T_TSS_MAIN, "exception %u error 0x%x", r_exc_vector,
               r_exc_error);
    test_check(r_exc_tr == T_TSS_MAIN && r_exc_eip == addr32(s_busy), "TR 0x%x EIP 0x%x", r_exc_tr, r_exc_eip);
    test_end();
}

static void t_tbit(void)
{
    test_begin("ts-t-bit");
    setup();
    run_ts(s_tbit);
    test_check(r_exc_vector == EXC_DB, "exception %u, expected #DB", r_exc_vector);
    test_check(r_exc_dr6 & (1u << 15), "DR6 0x%x without BT", r_exc_dr6);
    test_check(r_exc_tr == T_TSS_T && r_exc_eip == addr32(task_t), "TR 0x%x EIP 0x%x (the new task's first)",
               r_exc_tr, r_exc_eip);
    test_end();
}

static void t_dr7(void)
{
    test_begin("ts-dr7");
    setup();
    tss_b.eip = addr32(task_dr7);
    run_ts(s_dr7);
    no_exception();
    test_check((r_t_eax & 0x3ff) == 0x208, "DR7 in the new task 0x%x: L0 and LE cleared, G1 and GE kept",
               r_t_eax);
    test_check(r_done == 1, "not back");
    test_end();
}

void test_main(void)
{
    info("32-bit code at 0x%x, 16-bit TSS task at 0x%x", addr32(s_jmp), addr32(task_16));
    t_jmp();
    t_call_iret();
    t_int_gate();
    t_ud_gate();
    t_gp_gate();
    t_tss16();
    t_ldt();
    t_gdt_gate();
    t_after_commit();
    t_small();
    t_busy();
    t_tbit();
    t_dr7();
}
