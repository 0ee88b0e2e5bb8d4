/* vmx.h - VMX definitions and instruction wrappers for guest test kernels (header only).
 *
 * Include after lib.h. Every wrapper runs its instruction under an exception-table fixup (like
 * rdmsr_safe) with CF, PF, AF, ZF, SF and OF set beforehand, and returns one of
 *     VMX_SUCCEED         CF = ZF = 0 and the other arithmetic flags cleared (VMsucceed)
 *     VMX_FAIL_INVALID    CF = 1, the others clear (VMfailInvalid)
 *     VMX_FAIL_VALID      ZF = 1, the others clear (VMfailValid; the error is in VMCS field 0x4400)
 *     VMX_BAD_FLAGS | f   any other combination f of the six flags
 *     VMX_EXC(vector)     the instruction raised an exception (this_cpu()->fault_error has the code)
 * vmx_outcome() turns VMX_FAIL_VALID into VMX_FAIL_VALID_ERR(n) by reading the VM-instruction
 * error field; vmx_outcome_name() formats any of these ("VMsucceed", "VMfailValid(12)", "#UD").
 * Usable on any CPU.
 */
#ifndef GUEST_VMX_H
#define GUEST_VMX_H

#include "lib.h"

/* ---------------------------------------------------------------------------------------------
 * MSRs and CPUID
 */
#define CPUID1_ECX_VMX                  (1u << 5)

#define MSR_IA32_FEATURE_CONTROL        0x3a
#define FEATURE_CONTROL_LOCK            (1ull << 0)
#define FEATURE_CONTROL_VMX_IN_SMX      (1ull << 1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)

#define MSR_IA32_VMX_BASIC              0x480
#define MSR_IA32_VMX_PINBASED_CTLS      0x481
#define MSR_IA32_VMX_PROCBASED_CTLS     0x482
#define MSR_IA32_VMX_EXIT_CTLS          0x483
#define MSR_IA32_VMX_ENTRY_CTLS         0x484
#define MSR_IA32_VMX_MISC               0x485
#define MSR_IA32_VMX_CR0_FIXED0         0x486
#define MSR_IA32_VMX_CR0_FIXED1         0x487
#define MSR_IA32_VMX_CR4_FIXED0         0x488
#define MSR_IA32_VMX_CR4_FIXED1         0x489
#define MSR_IA32_VMX_VMCS_ENUM          0x48a
#define MSR_IA32_VMX_PROCBASED_CTLS2    0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP       0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS  0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS     0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS    0x490
#define MSR_IA32_VMX_VMFUNC             0x491

/* IA32_VMX_BASIC */
#define VMX_BASIC_REVISION(b)           ((uint32_t)(b) & 0x7fffffffu)
#define VMX_BASIC_VMCS_SIZE(b)          ((uint32_t)((b) >> 32) & 0x1fffu)
#define VMX_BASIC_32BIT_ADDR            (1ull << 48)
#define VMX_BASIC_DUAL_MONITOR          (1ull << 49)
#define VMX_BASIC_MEMTYPE(b)            ((uint32_t)((b) >> 50) & 0xfu)
#define VMX_BASIC_INOUT_INFO            (1ull << 54)
#define VMX_BASIC_TRUE_CTLS             (1ull << 55)
#define VMX_BASIC_NO_ERRCODE_CHECK      (1ull << 56)

/* IA32_VMX_MISC */
#define VMX_MISC_VMWRITE_ANY_FIELD      (1ull << 29)

/* Default1 control bits (reported as must-be-1 by the non-TRUE capability MSRs). */
#define VMX_PIN_DEFAULT1                0x00000016u
#define VMX_PROC_DEFAULT1               0x0401e172u
#define VMX_EXIT_DEFAULT1               0x00036dffu
#define VMX_ENTRY_DEFAULT1              0x000011ffu

/* Pin-based controls */
#define PIN_EXT_INT_EXITING             (1u << 0)
#define PIN_NMI_EXITING                 (1u << 3)
#define PIN_VIRTUAL_NMIS                (1u << 5)
#define PIN_PREEMPTION_TIMER            (1u << 6)
#define PIN_POSTED_INTR                 (1u << 7)
/* Primary processor-based controls */
#define PROC_INTR_WINDOW_EXITING        (1u << 2)
#define PROC_TSC_OFFSETTING             (1u << 3)
#define PROC_HLT_EXITING                (1u << 7)
#define PROC_INVLPG_EXITING             (1u << 9)
#define PROC_MWAIT_EXITING              (1u << 10)
#define PROC_RDPMC_EXITING              (1u << 11)
#define PROC_RDTSC_EXITING              (1u << 12)
#define PROC_CR3_LOAD_EXITING           (1u << 15)
#define PROC_CR3_STORE_EXITING          (1u << 16)
#define PROC_CR8_LOAD_EXITING           (1u << 19)
#define PROC_CR8_STORE_EXITING          (1u << 20)
#define PROC_TPR_SHADOW                 (1u << 21)
#define PROC_NMI_WINDOW_EXITING         (1u << 22)
#define PROC_MOV_DR_EXITING             (1u << 23)
#define PROC_UNCOND_IO_EXITING          (1u << 24)
#define PROC_USE_IO_BITMAPS             (1u << 25)
#define PROC_MONITOR_TRAP_FLAG          (1u << 27)
#define PROC_USE_MSR_BITMAPS            (1u << 28)
#define PROC_MONITOR_EXITING            (1u << 29)
#define PROC_PAUSE_EXITING              (1u << 30)
#define PROC_SECONDARY_CONTROLS         (1u << 31)
/* Secondary processor-based controls */
#define PROC2_VIRT_APIC_ACCESSES        (1u << 0)
#define PROC2_ENABLE_EPT                (1u << 1)
#define PROC2_DESC_TABLE_EXITING        (1u << 2)
#define PROC2_ENABLE_RDTSCP             (1u << 3)
#define PROC2_VIRT_X2APIC               (1u << 4)
#define PROC2_ENABLE_VPID               (1u << 5)
#define PROC2_WBINVD_EXITING            (1u << 6)
#define PROC2_UNRESTRICTED_GUEST        (1u << 7)
#define PROC2_APIC_REGISTER_VIRT        (1u << 8)
#define PROC2_VIRT_INTR_DELIVERY        (1u << 9)
#define PROC2_PAUSE_LOOP_EXITING        (1u << 10)
#define PROC2_RDRAND_EXITING            (1u << 11)
#define PROC2_ENABLE_INVPCID            (1u << 12)
#define PROC2_ENABLE_VMFUNC             (1u << 13)
#define PROC2_VMCS_SHADOWING            (1u << 14)
#define PROC2_RDSEED_EXITING            (1u << 16)
#define PROC2_ENABLE_PML                (1u << 17)
#define PROC2_EPT_VE                    (1u << 18)
#define PROC2_ENABLE_XSAVES             (1u << 20)
#define PROC2_TSC_SCALING               (1u << 25)
/* VM-exit controls */
#define EXIT_SAVE_DEBUG_CTLS            (1u << 2)
#define EXIT_HOST_ADDR_SPACE_SIZE       (1u << 9)
#define EXIT_LOAD_PERF_GLOBAL_CTRL      (1u << 12)
#define EXIT_ACK_INTR_ON_EXIT           (1u << 15)
#define EXIT_SAVE_PAT                   (1u << 18)
#define EXIT_LOAD_PAT                   (1u << 19)
#define EXIT_SAVE_EFER                  (1u << 20)
#define EXIT_LOAD_EFER                  (1u << 21)
#define EXIT_SAVE_PREEMPTION_TIMER      (1u << 22)
/* VM-entry controls */
#define ENTRY_LOAD_DEBUG_CTLS           (1u << 2)
#define ENTRY_IA32E_MODE_GUEST          (1u << 9)
#define ENTRY_SMM                       (1u << 10)
#define ENTRY_DEACT_DUAL_MONITOR        (1u << 11)
#define ENTRY_LOAD_PERF_GLOBAL_CTRL     (1u << 13)
#define ENTRY_LOAD_PAT                  (1u << 14)
#define ENTRY_LOAD_EFER                 (1u << 15)

/* IA32_VMX_EPT_VPID_CAP */
#define EPT_CAP_EXEC_ONLY               (1ull << 0)
#define EPT_CAP_WALK_4                  (1ull << 6)
#define EPT_CAP_MEMTYPE_UC              (1ull << 8)
#define EPT_CAP_MEMTYPE_WB              (1ull << 14)
#define EPT_CAP_2M_PAGE                 (1ull << 16)
#define EPT_CAP_1G_PAGE                 (1ull << 17)
#define EPT_CAP_INVEPT                  (1ull << 20)
#define EPT_CAP_AD                      (1ull << 21)
#define EPT_CAP_INVEPT_SINGLE           (1ull << 25)
#define EPT_CAP_INVEPT_ALL              (1ull << 26)
#define VPID_CAP_INVVPID                (1ull << 32)
#define VPID_CAP_INVVPID_ADDR           (1ull << 40)
#define VPID_CAP_INVVPID_SINGLE         (1ull << 41)
#define VPID_CAP_INVVPID_ALL            (1ull << 42)
#define VPID_CAP_INVVPID_SINGLE_NOGLOB  (1ull << 43)

/* INVEPT / INVVPID types */
#define INVVPID_ADDR                    0
#define INVEPT_SINGLE                   1
#define INVVPID_SINGLE                  1
#define INVEPT_ALL                      2
#define INVVPID_ALL                     2
#define INVVPID_SINGLE_NOGLOBAL         3

/* ---------------------------------------------------------------------------------------------
 * VMCS field encodings (SDM Vol. 3 Appendix B)
 */
/* 16-bit */
#define VMCS_VPID                       0x0000
#define VMCS_POSTED_INTR_NV             0x0002
#define VMCS_EPTP_INDEX                 0x0004
#define VMCS_GUEST_ES_SELECTOR          0x0800
#define VMCS_GUEST_CS_SELECTOR          0x0802
#define VMCS_GUEST_SS_SELECTOR          0x0804
#define VMCS_GUEST_DS_SELECTOR          0x0806
#define VMCS_GUEST_FS_SELECTOR          0x0808
#define VMCS_GUEST_GS_SELECTOR          0x080a
#define VMCS_GUEST_LDTR_SELECTOR        0x080c
#define VMCS_GUEST_TR_SELECTOR          0x080e
#define VMCS_GUEST_INTR_STATUS          0x0810
#define VMCS_GUEST_PML_INDEX            0x0812
#define VMCS_HOST_ES_SELECTOR           0x0c00
#define VMCS_HOST_CS_SELECTOR           0x0c02
#define VMCS_HOST_SS_SELECTOR           0x0c04
#define VMCS_HOST_DS_SELECTOR           0x0c06
#define VMCS_HOST_FS_SELECTOR           0x0c08
#define VMCS_HOST_GS_SELECTOR           0x0c0a
#define VMCS_HOST_TR_SELECTOR           0x0c0c
/* 64-bit (the "high" half of field X is X + 1) */
#define VMCS_IO_BITMAP_A                0x2000
#define VMCS_IO_BITMAP_B                0x2002
#define VMCS_MSR_BITMAP                 0x2004
#define VMCS_EXIT_MSR_STORE_ADDR        0x2006
#define VMCS_EXIT_MSR_LOAD_ADDR         0x2008
#define VMCS_ENTRY_MSR_LOAD_ADDR        0x200a
#define VMCS_EXECUTIVE_VMCS_PTR         0x200c
#define VMCS_PML_ADDRESS                0x200e
#define VMCS_TSC_OFFSET                 0x2010
#define VMCS_VIRTUAL_APIC_PAGE_ADDR     0x2012
#define VMCS_APIC_ACCESS_ADDR           0x2014
#define VMCS_POSTED_INTR_DESC_ADDR      0x2016
#define VMCS_VM_FUNCTION_CONTROLS       0x2018
#define VMCS_EPT_POINTER                0x201a
#define VMCS_EOI_EXIT_BITMAP0           0x201c
#define VMCS_EOI_EXIT_BITMAP1           0x201e
#define VMCS_EOI_EXIT_BITMAP2           0x2020
#define VMCS_EOI_EXIT_BITMAP3           0x2022
#define VMCS_EPTP_LIST_ADDR             0x2024
#define VMCS_VMREAD_BITMAP              0x2026
#define VMCS_VMWRITE_BITMAP             0x2028
#define VMCS_VE_INFO_ADDR               0x202a
#define VMCS_XSS_EXIT_BITMAP            0x202c
#define VMCS_TSC_MULTIPLIER             0x2032
#define VMCS_GUEST_PHYSICAL_ADDRESS     0x2400
#define VMCS_LINK_POINTER               0x2800
#define VMCS_GUEST_IA32_DEBUGCTL        0x2802
#define VMCS_GUEST_IA32_PAT             0x2804
#define VMCS_GUEST_IA32_EFER            0x2806
#define VMCS_GUEST_IA32_PERF_GLOBAL_CTRL 0x2808
#define VMCS_GUEST_PDPTE0               0x280a
#define VMCS_GUEST_PDPTE1               0x280c
#define VMCS_GUEST_PDPTE2               0x280e
#define VMCS_GUEST_PDPTE3               0x2810
#define VMCS_HOST_IA32_PAT              0x2c00
#define VMCS_HOST_IA32_EFER             0x2c02
#define VMCS_HOST_IA32_PERF_GLOBAL_CTRL 0x2c04
/* 32-bit */
#define VMCS_PIN_BASED_CTLS             0x4000
#define VMCS_PROC_BASED_CTLS            0x4002
#define VMCS_EXCEPTION_BITMAP           0x4004
#define VMCS_PF_ERROR_CODE_MASK         0x4006
#define VMCS_PF_ERROR_CODE_MATCH        0x4008
#define VMCS_CR3_TARGET_COUNT           0x400a
#define VMCS_EXIT_CTLS                  0x400c
#define VMCS_EXIT_MSR_STORE_COUNT       0x400e
#define VMCS_EXIT_MSR_LOAD_COUNT        0x4010
#define VMCS_ENTRY_CTLS                 0x4012
#define VMCS_ENTRY_MSR_LOAD_COUNT       0x4014
#define VMCS_ENTRY_INTR_INFO            0x4016
#define VMCS_ENTRY_EXCEPTION_ERROR_CODE 0x4018
#define VMCS_ENTRY_INSTRUCTION_LEN      0x401a
#define VMCS_TPR_THRESHOLD              0x401c
#define VMCS_SECONDARY_PROC_CTLS        0x401e
#define VMCS_PLE_GAP                    0x4020
#define VMCS_PLE_WINDOW                 0x4022
#define VMCS_VM_INSTRUCTION_ERROR       0x4400
#define VMCS_EXIT_REASON                0x4402
#define VMCS_EXIT_INTR_INFO             0x4404
#define VMCS_EXIT_INTR_ERROR_CODE       0x4406
#define VMCS_IDT_VECTORING_INFO         0x4408
#define VMCS_IDT_VECTORING_ERROR_CODE   0x440a
#define VMCS_EXIT_INSTRUCTION_LEN       0x440c
#define VMCS_EXIT_INSTRUCTION_INFO      0x440e
#define VMCS_GUEST_ES_LIMIT             0x4800
#define VMCS_GUEST_CS_LIMIT             0x4802
#define VMCS_GUEST_SS_LIMIT             0x4804
#define VMCS_GUEST_DS_LIMIT             0x4806
#define VMCS_GUEST_FS_LIMIT             0x4808
#define VMCS_GUEST_GS_LIMIT             0x480a
#define VMCS_GUEST_LDTR_LIMIT           0x480c
#define VMCS_GUEST_TR_LIMIT             0x480e
#define VMCS_GUEST_GDTR_LIMIT           0x4810
#define VMCS_GUEST_IDTR_LIMIT           0x4812
#define VMCS_GUEST_ES_AR                0x4814
#define VMCS_GUEST_CS_AR                0x4816
#define VMCS_GUEST_SS_AR                0x4818
#define VMCS_GUEST_DS_AR                0x481a
#define VMCS_GUEST_FS_AR                0x481c
#define VMCS_GUEST_GS_AR                0x481e
#define VMCS_GUEST_LDTR_AR              0x4820
#define VMCS_GUEST_TR_AR                0x4822
#define VMCS_GUEST_INTERRUPTIBILITY     0x4824
#define VMCS_GUEST_ACTIVITY_STATE       0x4826
#define VMCS_GUEST_SMBASE               0x4828
#define VMCS_GUEST_SYSENTER_CS          0x482a
#define VMCS_PREEMPTION_TIMER_VALUE     0x482e
#define VMCS_HOST_SYSENTER_CS           0x4c00
/* natural width */
#define VMCS_CR0_GUEST_HOST_MASK        0x6000
#define VMCS_CR4_GUEST_HOST_MASK        0x6002
#define VMCS_CR0_READ_SHADOW            0x6004
#define VMCS_CR4_READ_SHADOW            0x6006
#define VMCS_CR3_TARGET0                0x6008
#define VMCS_CR3_TARGET1                0x600a
#define VMCS_CR3_TARGET2                0x600c
#define VMCS_CR3_TARGET3                0x600e
#define VMCS_EXIT_QUALIFICATION         0x6400
#define VMCS_IO_RCX                     0x6402
#define VMCS_IO_RSI                     0x6404
#define VMCS_IO_RDI                     0x6406
#define VMCS_IO_RIP                     0x6408
#define VMCS_GUEST_LINEAR_ADDRESS       0x640a
#define VMCS_GUEST_CR0                  0x6800
#define VMCS_GUEST_CR3                  0x6802
#define VMCS_GUEST_CR4                  0x6804
#define VMCS_GUEST_ES_BASE              0x6806
#define VMCS_GUEST_CS_BASE              0x6808
#define VMCS_GUEST_SS_BASE              0x680a
#define VMCS_GUEST_DS_BASE              0x680c
#define VMCS_GUEST_FS_BASE              0x680e
#define VMCS_GUEST_GS_BASE              0x6810
#define VMCS_GUEST_LDTR_BASE            0x6812
#define VMCS_GUEST_TR_BASE              0x6814
#define VMCS_GUEST_GDTR_BASE            0x6816
#define VMCS_GUEST_IDTR_BASE            0x6818
#define VMCS_GUEST_DR7                  0x681a
#define VMCS_GUEST_RSP                  0x681c
#define VMCS_GUEST_RIP                  0x681e
#define VMCS_GUEST_RFLAGS               0x6820
#define VMCS_GUEST_PENDING_DBG          0x6822
#define VMCS_GUEST_SYSENTER_ESP         0x6824
#define VMCS_GUEST_SYSENTER_EIP         0x6826
#define VMCS_HOST_CR0                   0x6c00
#define VMCS_HOST_CR3                   0x6c02
#define VMCS_HOST_CR4                   0x6c04
#define VMCS_HOST_FS_BASE               0x6c06
#define VMCS_HOST_GS_BASE               0x6c08
#define VMCS_HOST_TR_BASE               0x6c0a
#define VMCS_HOST_GDTR_BASE             0x6c0c
#define VMCS_HOST_IDTR_BASE             0x6c0e
#define VMCS_HOST_SYSENTER_ESP          0x6c10
#define VMCS_HOST_SYSENTER_EIP          0x6c12
#define VMCS_HOST_RSP                   0x6c14
#define VMCS_HOST_RIP                   0x6c16

/* VM-instruction error numbers (SDM Vol. 3 31.4) */
enum {
    VMXERR_VMCALL_IN_ROOT = 1,
    VMXERR_VMCLEAR_INVALID_ADDR = 2,
    VMXERR_VMCLEAR_VMXON_PTR = 3,
    VMXERR_VMLAUNCH_NONCLEAR = 4,
    VMXERR_VMRESUME_NONLAUNCHED = 5,
    VMXERR_VMRESUME_AFTER_VMXOFF = 6,
    VMXERR_ENTRY_INVALID_CONTROLS = 7,
    VMXERR_ENTRY_INVALID_HOST_STATE = 8,
    VMXERR_VMPTRLD_INVALID_ADDR = 9,
    VMXERR_VMPTRLD_VMXON_PTR = 10,
    VMXERR_VMPTRLD_BAD_REVISION = 11,
    VMXERR_UNSUPPORTED_FIELD = 12,
    VMXERR_VMWRITE_READ_ONLY = 13,
    VMXERR_VMXON_IN_ROOT = 15,
    VMXERR_ENTRY_INVALID_EXECUTIVE_VMCS = 16,
    VMXERR_ENTRY_NONLAUNCHED_EXECUTIVE_VMCS = 17,
    VMXERR_ENTRY_EXECUTIVE_VMCS_NOT_VMXON = 18,
    VMXERR_VMCALL_NONCLEAR_VMCS = 19,
    VMXERR_VMCALL_INVALID_EXIT_CONTROLS = 20,
    VMXERR_VMCALL_BAD_MSEG_REVISION = 22,
    VMXERR_VMXOFF_DUAL_MONITOR = 23,
    VMXERR_VMCALL_INVALID_SMM_MONITOR = 24,
    VMXERR_ENTRY_INVALID_EXEC_CONTROLS_SMM = 25,
    VMXERR_ENTRY_MOV_SS_BLOCKING = 26,
    VMXERR_INVEPT_INVVPID_INVALID = 28,
};

/* ---------------------------------------------------------------------------------------------
 * Instruction wrappers
 */
#define VMX_SUCCEED          0
#define VMX_FAIL_INVALID     1
#define VMX_FAIL_VALID       2
#define VMX_EXC(v)           (0x100 | (v))
#define VMX_IS_EXC(r)        (((r) & ~0xff) == 0x100)
#define VMX_BAD_FLAGS        0x1000
#define VMX_FAIL_VALID_ERR(e) (0x10000 | (e))   /* vmx_outcome() only */

#define VMX_ARITH_FLAGS      0x8d5ull           /* OF SF ZF AF PF CF */
#define VMX_FLAG_CF          0x001ull
#define VMX_FLAG_ZF          0x040ull

/* Sets the six arithmetic flags, so that a VMX instruction must clear the ones it does not set. */
#define VMX_ASM_PRE  "pushfq\n\torq $0x8d5, (%%rsp)\n\tpopfq\n\t"
/* Label 1 must be on the VMX instruction; resumes at 2 on an exception; flags to %[fl]. */
#define VMX_ASM_POST "\n2:\n\tpushfq\n\tpopq %[fl]\n\t" EXTABLE_ENTRY(1b, 2b)

static inline int vmx_result(uint64_t rflags)
{
    int v = fault_result();
    if (v != NO_EXCEPTION)
        return VMX_EXC(v);
    uint64_t f = rflags & VMX_ARITH_FLAGS;
    if (f == 0)
        return VMX_SUCCEED;
    if (f == VMX_FLAG_CF)
        return VMX_FAIL_INVALID;
    if (f == VMX_FLAG_ZF)
        return VMX_FAIL_VALID;
    return VMX_BAD_FLAGS | (int)f;
}

/* VMXON / VMCLEAR / VMPTRLD with the physical address pa as the 64-bit memory operand. */
#define VMX_DEFINE_PTR_OP(name)                                                                  \
    static inline int name(uint64_t pa)                                                          \
    {                                                                                            \
        uint64_t fl;                                                                             \
        fault_begin();                                                                           \
        asm volatile(VMX_ASM_PRE "1: " #name " %[p]" VMX_ASM_POST                                \
                     : [fl] "=r"(fl) : [p] "m"(pa) : "memory", "cc");                            \
        return vmx_result(fl);                                                                   \
    }
VMX_DEFINE_PTR_OP(vmxon)
VMX_DEFINE_PTR_OP(vmclear)
VMX_DEFINE_PTR_OP(vmptrld)
#undef VMX_DEFINE_PTR_OP

/* VMPTRST to *out (left unchanged when nothing is stored). */
static inline int vmptrst(uint64_t *out)
{
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: vmptrst %[m]" VMX_ASM_POST
                 : [fl] "=r"(fl), [m] "+m"(*out) : : "memory", "cc");
    return vmx_result(fl);
}

/* VMREAD into a register: *val is the register's value before (kept when nothing is written). */
static inline int vmread_reg(uint64_t enc, uint64_t *val)
{
    uint64_t fl, v = *val;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: vmread %[e], %[v]" VMX_ASM_POST
                 : [fl] "=&r"(fl), [v] "+r"(v) : [e] "r"(enc) : "memory", "cc");
    *val = v;
    return vmx_result(fl);
}

/* VMREAD into memory (64-bit operand). */
static inline int vmread_mem(uint64_t enc, uint64_t *mem)
{
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: vmread %[e], %[m]" VMX_ASM_POST
                 : [fl] "=&r"(fl), [m] "+m"(*mem) : [e] "r"(enc) : "memory", "cc");
    return vmx_result(fl);
}

/* VMWRITE from a register. */
static inline int vmwrite_reg(uint64_t enc, uint64_t val)
{
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: vmwrite %[v], %[e]" VMX_ASM_POST
                 : [fl] "=&r"(fl) : [v] "r"(val), [e] "r"(enc) : "memory", "cc");
    return vmx_result(fl);
}

/* VMWRITE from memory (64-bit operand). */
static inline int vmwrite_mem(uint64_t enc, const uint64_t *mem)
{
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: vmwrite %[m], %[e]" VMX_ASM_POST
                 : [fl] "=&r"(fl) : [m] "m"(*mem), [e] "r"(enc) : "memory", "cc");
    return vmx_result(fl);
}

#define VMX_DEFINE_NOARG_OP(name)                                                                \
    static inline int name(void)                                                                 \
    {                                                                                            \
        uint64_t fl;                                                                             \
        fault_begin();                                                                           \
        asm volatile(VMX_ASM_PRE "1: " #name VMX_ASM_POST : [fl] "=r"(fl) : : "memory", "cc");   \
        return vmx_result(fl);                                                                   \
    }
VMX_DEFINE_NOARG_OP(vmxoff)
VMX_DEFINE_NOARG_OP(vmlaunch)
VMX_DEFINE_NOARG_OP(vmresume)
#undef VMX_DEFINE_NOARG_OP

struct inv_desc { uint64_t lo, hi; } __attribute__((aligned(16)));

static inline int invept(uint64_t type, uint64_t eptp)
{
    struct inv_desc d = { eptp, 0 };
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: invept %[d], %[t]" VMX_ASM_POST
                 : [fl] "=&r"(fl) : [d] "m"(d), [t] "r"(type) : "memory", "cc");
    return vmx_result(fl);
}

/* INVVPID with descriptor { lo = VPID (bits 63:16 reserved), hi = linear address }. */
static inline int invvpid(uint64_t type, uint64_t lo, uint64_t la)
{
    struct inv_desc d = { lo, la };
    uint64_t fl;
    fault_begin();
    asm volatile(VMX_ASM_PRE "1: invvpid %[d], %[t]" VMX_ASM_POST
                 : [fl] "=&r"(fl) : [d] "m"(d), [t] "r"(type) : "memory", "cc");
    return vmx_result(fl);
}

/* VMX_FAIL_VALID becomes VMX_FAIL_VALID_ERR(VM-instruction error); others are returned as is. */
static inline int vmx_outcome(int r)
{
    if (r != VMX_FAIL_VALID)
        return r;
    uint64_t err = ~0ull;
    if (vmread_reg(VMCS_VM_INSTRUCTION_ERROR, &err) != VMX_SUCCEED)
        return VMX_FAIL_VALID_ERR(0xffff);
    return VMX_FAIL_VALID_ERR((int)(err & 0xffff));
}

static inline const char *vmx_outcome_name(int o, char *buf, size_t n)
{
    if (o == VMX_SUCCEED)
        snprintf(buf, n, "VMsucceed");
    else if (o == VMX_FAIL_INVALID)
        snprintf(buf, n, "VMfailInvalid");
    else if (o == VMX_FAIL_VALID)
        snprintf(buf, n, "VMfailValid");
    else if (o & 0x10000)
        snprintf(buf, n, (o & 0xffff) == 0xffff ? "VMfailValid(error unreadable)" : "VMfailValid(%d)",
                 o & 0xffff);
    else if (VMX_IS_EXC(o))
        snprintf(buf, n, "%s", exception_name(o & 0xff));
    else if (o & VMX_BAD_FLAGS)
        snprintf(buf, n, "bad RFLAGS (arith flags 0x%x)", o & 0xfff);
    else
        snprintf(buf, n, "outcome 0x%x", o);
    return buf;
}

/* Physical address of a kernel object (identity map). */
static inline uint64_t vmx_pa(const void *p) { return (uint64_t)(uintptr_t)p; }

/* A VMXON region or VMCS (4 KiB) zeroed, with the revision identifier in its first word. */
static inline void vmx_region_init(void *page, uint32_t revision)
{
    memset(page, 0, 4096);
    *(volatile uint32_t *)page = revision;
}

/* ---------------------------------------------------------------------------------------------
 * VM exits (SDM Vol. 3 Appendix C, 28.2) and event injection (25.8.3)
 */
#define VMX_EXIT_REASON_BASIC(r)        ((uint32_t)(r) & 0xffffu)
#define VMX_EXIT_REASON_ENTRY_FAIL      (1u << 31)
enum {
    EXIT_REASON_EXCEPTION_NMI = 0,
    EXIT_REASON_EXTERNAL_INTERRUPT = 1,
    EXIT_REASON_TRIPLE_FAULT = 2,
    EXIT_REASON_INIT = 3,
    EXIT_REASON_SIPI = 4,
    EXIT_REASON_INTERRUPT_WINDOW = 7,
    EXIT_REASON_NMI_WINDOW = 8,
    EXIT_REASON_TASK_SWITCH = 9,
    EXIT_REASON_CPUID = 10,
    EXIT_REASON_HLT = 12,
    EXIT_REASON_INVD = 13,
    EXIT_REASON_INVLPG = 14,
    EXIT_REASON_RDPMC = 15,
    EXIT_REASON_RDTSC = 16,
    EXIT_REASON_VMCALL = 18,
    EXIT_REASON_VMCLEAR = 19,
    EXIT_REASON_VMLAUNCH = 20,
    EXIT_REASON_VMPTRLD = 21,
    EXIT_REASON_VMPTRST = 22,
    EXIT_REASON_VMREAD = 23,
    EXIT_REASON_VMRESUME = 24,
    EXIT_REASON_VMWRITE = 25,
    EXIT_REASON_VMXOFF = 26,
    EXIT_REASON_VMXON = 27,
    EXIT_REASON_CR_ACCESS = 28,
    EXIT_REASON_DR_ACCESS = 29,
    EXIT_REASON_IO = 30,
    EXIT_REASON_RDMSR = 31,
    EXIT_REASON_WRMSR = 32,
    EXIT_REASON_INVALID_GUEST_STATE = 33,
    EXIT_REASON_MSR_LOADING = 34,
    EXIT_REASON_MWAIT = 36,
    EXIT_REASON_MTF = 37,
    EXIT_REASON_MONITOR = 39,
    EXIT_REASON_PAUSE = 40,
    EXIT_REASON_MACHINE_CHECK = 41,
    EXIT_REASON_TPR_BELOW_THRESHOLD = 43,
    EXIT_REASON_APIC_ACCESS = 44,
    EXIT_REASON_EOI_INDUCED = 45,
    EXIT_REASON_GDTR_IDTR = 46,
    EXIT_REASON_LDTR_TR = 47,
    EXIT_REASON_EPT_VIOLATION = 48,
    EXIT_REASON_EPT_MISCONFIG = 49,
    EXIT_REASON_INVEPT = 50,
    EXIT_REASON_RDTSCP = 51,
    EXIT_REASON_PREEMPTION_TIMER = 52,
    EXIT_REASON_INVVPID = 53,
    EXIT_REASON_WBINVD = 54,
    EXIT_REASON_XSETBV = 55,
    EXIT_REASON_APIC_WRITE = 56,
    EXIT_REASON_RDRAND = 57,
    EXIT_REASON_INVPCID = 58,
    EXIT_REASON_VMFUNC = 59,
    EXIT_REASON_RDSEED = 61,
    EXIT_REASON_XSAVES = 63,
    EXIT_REASON_XRSTORS = 64,
};

/* Interruption information (VM-entry and VM-exit interruption info, IDT-vectoring info) */
#define INTR_INFO_VECTOR(i)             ((uint32_t)(i) & 0xffu)
#define INTR_INFO_TYPE(i)               (((uint32_t)(i) >> 8) & 7u)
#define INTR_INFO_ERROR_CODE            (1u << 11)
#define INTR_INFO_NMI_UNBLOCKED_IRET    (1u << 12)
#define INTERRUPTIBILITY_NMI            (1u << 3)   /* guest interruptibility: blocking by NMI */
#define INTR_INFO_VALID                 (1u << 31)
#define INTR_TYPE_EXT_INTR              0u
#define INTR_TYPE_NMI                   2u
#define INTR_TYPE_HW_EXCEPTION          3u
#define INTR_TYPE_SW_INTR               4u
#define INTR_TYPE_PRIV_SW_EXCEPTION     5u
#define INTR_TYPE_SW_EXCEPTION          6u
#define INTR_TYPE_OTHER                 7u
#define INTR_INFO(type, vector)         \
    (INTR_INFO_VALID | ((uint32_t)(type) << 8) | ((vector) & 0xffu))

/* I/O instruction exit qualification (SDM Vol. 3 Table 28-5) */
#define IO_QUAL_SIZE(q)                 ((uint32_t)((q) & 7u) + 1u)
#define IO_QUAL_IN                      (1u << 3)
#define IO_QUAL_STRING                  (1u << 4)
#define IO_QUAL_REP                     (1u << 5)
#define IO_QUAL_IMMEDIATE               (1u << 6)
#define IO_QUAL_PORT(q)                 ((uint32_t)((q) >> 16) & 0xffffu)

/* Guest activity states */
#define GUEST_ACTIVITY_ACTIVE           0
#define GUEST_ACTIVITY_HLT              1
#define GUEST_ACTIVITY_SHUTDOWN         2
#define GUEST_ACTIVITY_WAIT_SIPI        3

/* Segment access rights as VMCS fields hold them (SDM Vol. 3 Table 25-2) */
#define VMX_AR_UNUSABLE                 (1u << 16)
#define VMX_AR_CODE64                   0xa09bu   /* P, DPL 0, S, execute/read accessed, L, G */
#define VMX_AR_DATA                     0xc093u   /* P, DPL 0, S, read/write accessed, D/B, G */
#define VMX_AR_TSS64_BUSY               0x008bu   /* P, 64-bit busy TSS */

/* Control values from a capability MSR: required bits set, optional `want` bits kept only when
 * allowed. msr is the TRUE_* MSR when IA32_VMX_BASIC[55] says so. */
static inline uint32_t vmx_ctl_value(uint64_t msr, uint32_t want)
{
    return ((uint32_t)msr | want) & (uint32_t)(msr >> 32);
}
static inline bool vmx_ctl_allowed(uint64_t msr, uint32_t bits)
{
    return (bits & ~(uint32_t)(msr >> 32)) == 0;
}

#endif
