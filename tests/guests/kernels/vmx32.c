/* vmx32.bin - VMX instructions of a 32-bit L1: memory operands through segments (SDM Vol. 3, 31.3, the
 * "Protected Mode Exceptions" of VMPTRLD, VMPTRST, VMCLEAR, VMREAD, VMWRITE; 5.3-5.5 limit and type checks).
 *
 * The kernel leaves long mode for 32-bit protected mode with 32-bit paging (4-MiB pages, identity),
 * does VMXON there, and runs one VMX instruction per scenario through a segment chosen to pass or fail
 * its checks; an exception ends the scenario (its vector and error code are recorded), otherwise the
 * RFLAGS after the instruction are. Back in long mode each record is checked against the SDM:
 *   v32-limit-ok        VMPTRLD through a 4-KiB segment, operand in its last 8 bytes: loads
 *   v32-limit-cross     the same 4 bytes later (crossing the limit): #GP(0)
 *   v32-limit-beyond    VMCLEAR at the limit + 1: #GP(0)
 *   v32-ss-beyond       VMPTRLD through SS beyond SS's limit: #SS(0)
 *   v32-ro-write        VMPTRST into a read-only data segment: #GP(0)
 *   v32-ro-read         VMPTRLD through a read-only data segment: loads
 *   v32-code-read       VMPTRLD through a readable code segment in ES: loads
 *   v32-code-write      VMPTRST through a code segment: #GP(0)
 *   v32-null-fs         VMCLEAR through FS holding a null selector: #GP(0)
 *   v32-ed-ok           VMPTRLD through an expand-down segment (B=1), above its limit: loads
 *   v32-ed-below        the same at its limit: #GP(0)
 *   v32-ed16-top        expand-down with B=0: the last 8 bytes below 64 KiB: loads
 *   v32-ed16-cross      crossing 64 KiB: #GP(0)
 *   v32-vmread-ro       VMREAD into a read-only segment: #GP(0)
 *   v32-vmread-cross    VMREAD (4 bytes) crossing the limit: #GP(0)
 *   v32-vmread-ok       VMREAD into the segment's last 4 bytes: succeeds, the value is written
 *   v32-vmwrite-code    VMWRITE from a readable code segment: succeeds, VMREAD gives the value back
 * Under a hypervisor that ignores the segment the faulting scenarios succeed or fail differently.
 */
#include "l1.h"
#include "mode32.h"

enum {
    S_CODE32 = 0x08, S_DATA = 0x10, S_CODE64 = 0x18, S_LIM = 0x20, S_RO = 0x28, S_XR = 0x30,
    S_ED = 0x38, S_SSLIM = 0x40, S_ED16 = 0x48, S_GDT_END = 0x50,
};

#define FIELD_GUEST_RIP 0x681eu

uint64_t vgdt[S_GDT_END / 8] __attribute__((aligned(16), used));
uint64_t vidt[32] __attribute__((aligned(16), used));
uint32_t vpd[1024] __attribute__((aligned(4096), used));   /* 32-bit paging: 4-MiB pages, identity */
uint8_t opage[PAGE] __attribute__((aligned(PAGE), used));   /* operands: VMCS pointer at 0xff8 */
static uint8_t vmxon_region[PAGE] __attribute__((aligned(PAGE)));
static uint8_t vmcs_region[PAGE] __attribute__((aligned(PAGE)));

/* Shared with the 32-bit code (symbols of the asm below). */
uint64_t vmxon_pa64 __attribute__((used)), vmcs_pa64 __attribute__((used));
uint32_t r_val __attribute__((used));
uint32_t scen_esp __attribute__((used)), scen_entry __attribute__((used));
uint32_t r_vec __attribute__((used)), r_err __attribute__((used)), r_flags __attribute__((used));
uint32_t r_vmxon_flags __attribute__((used));
uint32_t scen_field __attribute__((used));
struct desc_ptr32 vgdt_desc = { sizeof(vgdt) - 1, 0 };
struct desc_ptr32 vidt_desc = { sizeof(vidt) - 1, 0 };

extern uint32_t vstubs[32];

/* The 32-bit entry (run32, mode32.h): 32-bit paging, VMXON, the scenario, VMXOFF. The scenario returns
 * with RET; an exception returns through the stub with scen_esp. */
asm(".pushsection .text\n"
    ".code32\n"
    "v32_enter:\n"
    "  mov %cr4, %eax\n"
    "  and $0xffffffdf, %eax\n"    /* PAE off */
    "  or $0x10, %eax\n"           /* PSE on */
    "  mov %eax, %cr4\n"
    "  mov $vpd, %eax\n"
    "  mov %eax, %cr3\n"
    "  mov %cr0, %eax\n"
    "  or $0x80000000, %eax\n"     /* 32-bit paging on */
    "  mov %eax, %cr0\n"
    "  vmxon vmxon_pa64\n"
    "  pushf\n"
    "  pop r_vmxon_flags\n"
    "  call *scen_entry\n"
    "  vmxoff\n"
    "  ret\n"
    ".code64\n"
    ".popsection\n");
extern char v32_enter[];

/* Exception stubs: record the vector and error code, restore the flat segments and return from the
 * scenario (its RET address is at scen_esp). */
asm(".pushsection .text\n"
    ".code32\n"
    ".macro vstub v\n"
    "vstub_\\v:\n"
    "  .if (\\v == 8) || (\\v >= 10 && \\v <= 14) || (\\v == 17) || (\\v == 21)\n"
    "  .else\n"
    "  push $0\n"
    "  .endif\n"
    "  push $\\v\n"
    "  jmp vexc_common\n"
    ".endm\n"
    ".altmacro\n"
    ".set i, 0\n"
    ".rept 32\n"
    "  vstub %i\n"
    "  .set i, i + 1\n"
    ".endr\n"
    "vexc_common:\n"
    "  mov $0x10, %eax\n"
    "  mov %eax, %ds\n"
    "  pop r_vec\n"
    "  pop r_err\n"
    "  jmp scen_end\n"
    ".macro vstubaddr v\n"
    "  .long vstub_\\v\n"
    ".endm\n"
    ".pushsection .data\n"
    ".balign 4\n"
    ".globl vstubs\n"
    "vstubs:\n"
    ".set i, 0\n"
    ".rept 32\n"
    "  vstubaddr %i\n"
    "  .set i, i + 1\n"
    ".endr\n"
    ".popsection\n"
    ".noaltmacro\n"
    /* The common end of a scenario: flat segments, GUEST_RIP read back into r_val, back to v32_enter. */
    "scen_end:\n"
    "  mov $0x10, %eax\n"
    "  mov %eax, %ds; mov %eax, %es; mov %eax, %fs; mov %eax, %gs; mov %eax, %ss\n"
    "  mov scen_esp, %esp\n"
    "  mov scen_field, %eax\n"
    "  vmread %eax, %edx\n"
    "  mov %edx, r_val\n"
    "  ret\n"
    /* A scenario: its name, the segment register to load, its selector, the instruction. It starts
     * with the VMCS current (VMCLEAR, VMPTRLD through the flat DS) and GUEST_RIP = 12345678H, and
     * records RFLAGS after the instruction and GUEST_RIP read back (r_val). */
    ".macro scen name, sreg, sel, insn:vararg\n"
    ".globl \\name\n"
    "\\name:\n"
    "  mov %esp, scen_esp\n"
    "  vmclear vmcs_pa64\n"
    "  vmptrld vmcs_pa64\n"
    "  mov scen_field, %eax\n"
    "  mov $0x12345678, %ecx\n"
    "  vmwrite %ecx, %eax\n"
    "  mov $\\sel, %ecx\n"
    "  mov %ecx, %\\sreg\n"
    "  \\insn\n"
    "  pushf\n"
    "  pop %ecx\n"
    "  mov $0x10, %edx\n"
    "  mov %edx, %ds\n"
    "  mov %ecx, r_flags\n"
    "  jmp scen_end\n"
    ".endm\n"
    "scen s_limit_ok, es, 0x20, vmptrld %es:0xff8\n"
    "scen s_limit_cross, es, 0x20, vmptrld %es:0xffc\n"
    "scen s_limit_beyond, es, 0x20, vmclear %es:0x1000\n"
    "scen s_ss_beyond, ss, 0x40, vmptrld %ss:0xfffffff0\n"
    "scen s_ro_write, es, 0x28, vmptrst %es:0xff0\n"
    "scen s_ro_read, es, 0x28, vmptrld %es:0xff8\n"
    "scen s_code_read, es, 0x30, vmptrld %es:0xff8\n"
    "scen s_code_write, es, 0x30, vmptrst %es:0xff0\n"
    "scen s_null_fs, fs, 0x00, vmclear %fs:0xff8\n"
    "scen s_ed_ok, es, 0x38, vmptrld %es:0xff8\n"
    "scen s_ed_below, es, 0x38, vmptrld %es:0xff0\n"
    "scen s_ed16_top, es, 0x48, vmptrld %es:0xfff8\n"
    "scen s_ed16_cross, es, 0x48, vmptrld %es:0xfffc\n"
    "scen s_vmread_ro, es, 0x28, vmread %eax, %es:0xff0\n"
    "scen s_vmread_cross, es, 0x20, vmread %eax, %es:0xffd\n"
    "scen s_vmread_ok, es, 0x20, vmread %eax, %es:0xffc\n"
    "scen s_vmwrite_code, es, 0x30, vmwrite %es:0xff8, %eax\n"
    ".code64\n"
    ".popsection\n");

extern char s_limit_ok[], s_limit_cross[], s_limit_beyond[], s_ss_beyond[], s_ro_write[], s_ro_read[],
    s_code_read[], s_code_write[], s_null_fs[], s_ed_ok[], s_ed_below[], s_ed16_top[], s_ed16_cross[],
    s_vmread_ro[], s_vmread_cross[], s_vmread_ok[], s_vmwrite_code[];

static void setup_tables(void)
{
    uint32_t page = addr32(opage), stack_top = addr32(run32_stack + sizeof(run32_stack));

    vgdt[0] = 0;
    vgdt[S_CODE32 / 8] = seg_desc32(0, 0xfffff, 0x9b, 0xc);
    vgdt[S_DATA / 8] = seg_desc32(0, 0xfffff, 0x93, 0xc);
    vgdt[S_CODE64 / 8] = seg_desc32(0, 0xfffff, 0x9b, 0xa);
    vgdt[S_LIM / 8] = seg_desc32(page, 0xfff, 0x93, 0x4);           /* r/w data, one page */
    vgdt[S_RO / 8] = seg_desc32(page, 0xfff, 0x91, 0x4);            /* read-only data */
    vgdt[S_XR / 8] = seg_desc32(page, 0xfff, 0x9b, 0x4);            /* execute/read code */
    vgdt[S_ED / 8] = seg_desc32(page, 0xff7, 0x97, 0x4);            /* expand-down, B=1: 0xff8.. */
    vgdt[S_SSLIM / 8] = seg_desc32(0, stack_top >> 12, 0x93, 0xc);  /* the stack, and not far beyond */
    vgdt[S_ED16 / 8] = seg_desc32(page - 0xf000, 0xff7, 0x97, 0x0); /* expand-down, B=0: 0xff8..0xffff */
    for (int v = 0; v < 32; v++) {
        uint32_t off = vstubs[v];
        vidt[v] = (off & 0xffff) | ((uint64_t)S_CODE32 << 16) | (0x8eULL << 40) | ((uint64_t)(off >> 16) << 48);
    }
    for (int i = 0; i < 1024; i++)
        vpd[i] = ((uint32_t)i << 22) | 0x83; /* present, writable, 4 MiB */
    vgdt_desc.base = addr32(vgdt);
    vidt_desc.base = addr32(vidt);
}

struct scenario {
    const char *name;
    char *entry;
    int vec;        /* expected exception, -1 for none */
    bool loads;     /* no exception: VMsucceed expected */
};

static const struct scenario scenarios[] = {
    { "v32-limit-ok", s_limit_ok, -1, true },
    { "v32-limit-cross", s_limit_cross, 13, false },
    { "v32-limit-beyond", s_limit_beyond, 13, false },
    { "v32-ss-beyond", s_ss_beyond, 12, false },
    { "v32-ro-write", s_ro_write, 13, false },
    { "v32-ro-read", s_ro_read, -1, true },
    { "v32-code-read", s_code_read, -1, true },
    { "v32-code-write", s_code_write, 13, false },
    { "v32-null-fs", s_null_fs, 13, false },
    { "v32-ed-ok", s_ed_ok, -1, true },
    { "v32-ed-below", s_ed_below, 13, false },
    { "v32-ed16-top", s_ed16_top, -1, true },
    { "v32-ed16-cross", s_ed16_cross, 13, false },
    { "v32-vmread-ro", s_vmread_ro, 13, false },
    { "v32-vmread-cross", s_vmread_cross, 13, false },
    { "v32-vmread-ok", s_vmread_ok, -1, true },
    { "v32-vmwrite-code", s_vmwrite_code, -1, true },
};

#define RFLAGS_CF 0x1u
#define RFLAGS_ZF 0x40u

static void run_scenario(const struct scenario *s)
{
    test_begin(s->name);
    setup_tables();
    memset(opage, 0, sizeof(opage));
    vmx_region_init(vmcs_region, revision);
    vmx_region_init(vmxon_region, revision);
    *(uint64_t *)(opage + 0xff8) = PA(vmcs_region);
    *(uint32_t *)(opage + 0xffc) = 0;      /* the pointer's high half (and VMREAD's target) */
    vmxon_pa64 = PA(vmxon_region);
    vmcs_pa64 = PA(vmcs_region);
    scen_field = FIELD_GUEST_RIP;
    scen_entry = addr32(s->entry);
    r_vec = 0xffffffff;
    r_err = r_flags = r_vmxon_flags = r_val = 0;
    run32(v32_enter, &vgdt_desc, &vidt_desc);
    test_check(!(r_vmxon_flags & (RFLAGS_CF | RFLAGS_ZF)), "VMXON in 32-bit mode failed (RFLAGS 0x%x)",
               r_vmxon_flags);
    if (s->vec >= 0) {
        test_check(r_vec == (uint32_t)s->vec && r_err == 0, "exception %d (error 0x%x), expected %d(0)",
                   (int)r_vec, r_err, s->vec);
    } else {
        test_check(r_vec == 0xffffffff, "exception %u (error 0x%x), expected none", r_vec, r_err);
        test_check(!(r_flags & (RFLAGS_CF | RFLAGS_ZF)), "RFLAGS 0x%x: VMfail, expected VMsucceed", r_flags);
    }
    if (s->entry == s_vmread_ok)
        test_check(*(uint32_t *)(opage + 0xffc) == 0x12345678, "VMREAD stored 0x%x, expected 0x12345678",
                   *(uint32_t *)(opage + 0xffc));
    if (s->entry == s_vmwrite_code)
        test_check(r_val == addr32(vmcs_region), "GUEST_RIP 0x%x after VMWRITE from memory, expected 0x%x",
                   r_val, addr32(vmcs_region));
    if (s->vec >= 0)
        test_check(r_val == 0x12345678, "GUEST_RIP 0x%x after the fault, expected 0x12345678 kept", r_val);
    test_end();
}

void test_main(void)
{
    if (!l1_init() || !l1_enable_vmx()) {
        test_begin("v32-vmx");
        test_check(false, "no VMX");
        test_end();
        return;
    }
    info("32-bit scenarios at 0x%x, operand page at 0x%x", addr32(s_limit_ok), addr32(opage));
    for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run_scenario(&scenarios[i]);
}
