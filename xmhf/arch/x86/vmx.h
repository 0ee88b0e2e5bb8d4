/* Intel VMX architecture: VMCS field encodings (from vmcs-fields.def), control bits, exit reasons,
 * capability MSRs and the VMX instructions as inline functions (SDM Vol. 3, chapters 24-31). */
#ifndef X86_VMX_H
#define X86_VMX_H
#include <xmhf/types.h>

enum vmcs_field {
#define VMCS_FIELD(name, enc, class, nested, exists) VMCS_##name = enc,
#include <x86/vmcs-fields.def>
#undef VMCS_FIELD
};

/* Encoding rules (SDM Appendix B): bit 0 access type (1 = high half of a 64-bit field), bits 9:1 index,
 * bits 11:10 type, bits 14:13 width. */
enum vmcs_width { VMCS_W16 = 0, VMCS_W64 = 1, VMCS_W32 = 2, VMCS_WNAT = 3 };
enum vmcs_type { VMCS_T_CTRL = 0, VMCS_T_RO = 1, VMCS_T_GUEST = 2, VMCS_T_HOST = 3 };
static inline enum vmcs_width vmcs_field_width(u32 enc) { return (enum vmcs_width)((enc >> 13) & 3); }
static inline enum vmcs_type vmcs_field_type(u32 enc) { return (enum vmcs_type)((enc >> 10) & 3); }
static inline bool vmcs_field_is_high(u32 enc) { return (enc & 1) != 0; }

/* Capability MSRs (SDM Appendix A). */
#define MSR_IA32_VMX_BASIC 0x480
#define MSR_IA32_VMX_PINBASED_CTLS 0x481
#define MSR_IA32_VMX_PROCBASED_CTLS 0x482
#define MSR_IA32_VMX_EXIT_CTLS 0x483
#define MSR_IA32_VMX_ENTRY_CTLS 0x484
#define MSR_IA32_VMX_MISC 0x485
#define MSR_IA32_VMX_CR0_FIXED0 0x486
#define MSR_IA32_VMX_CR0_FIXED1 0x487
#define MSR_IA32_VMX_CR4_FIXED0 0x488
#define MSR_IA32_VMX_CR4_FIXED1 0x489
#define MSR_IA32_VMX_VMCS_ENUM 0x48a
#define MSR_IA32_VMX_PROCBASED_CTLS2 0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP 0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_IA32_VMX_VMFUNC 0x491
#define MSR_IA32_VMX_PROCBASED_CTLS3 0x492

#define VMX_BASIC_INSOUTS_INFO (1ULL << 54) /* exit instruction information for INS/OUTS */
#define VMX_BASIC_TRUE_CTLS (1ULL << 55)

#define FEATURE_CONTROL_LOCK (1ULL << 0)
#define FEATURE_CONTROL_VMX_IN_SMX (1ULL << 1)
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ULL << 2)

/* Pin-based controls. */
#define PIN_EXTINT_EXITING (1U << 0)
#define PIN_NMI_EXITING (1U << 3)
#define PIN_VIRTUAL_NMIS (1U << 5)
#define PIN_PREEMPTION_TIMER (1U << 6)
/* Primary processor-based controls. */
#define PROC_INTR_WINDOW_EXITING (1U << 2)
#define PROC_TSC_OFFSETTING (1U << 3)
#define PROC_HLT_EXITING (1U << 7)
#define PROC_INVLPG_EXITING (1U << 9)
#define PROC_MWAIT_EXITING (1U << 10)
#define PROC_RDPMC_EXITING (1U << 11)
#define PROC_RDTSC_EXITING (1U << 12)
#define PROC_CR3_LOAD_EXITING (1U << 15)
#define PROC_CR3_STORE_EXITING (1U << 16)
#define PROC_CR8_LOAD_EXITING (1U << 19)
#define PROC_CR8_STORE_EXITING (1U << 20)
#define PROC_TPR_SHADOW (1U << 21)
#define PROC_NMI_WINDOW_EXITING (1U << 22)
#define PROC_MOV_DR_EXITING (1U << 23)
#define PROC_UNCOND_IO_EXITING (1U << 24)
#define PROC_USE_IO_BITMAPS (1U << 25)
#define PROC_MTF (1U << 27)
#define PROC_USE_MSR_BITMAPS (1U << 28)
#define PROC_MONITOR_EXITING (1U << 29)
#define PROC_PAUSE_EXITING (1U << 30)
#define PROC_SECONDARY_CONTROLS (1U << 31)
/* Secondary processor-based controls. */
#define PROC2_VIRTUALIZE_APIC (1U << 0)
#define PROC2_EPT (1U << 1)
#define PROC2_DESC_TABLE_EXITING (1U << 2)
#define PROC2_RDTSCP (1U << 3)
#define PROC2_VIRTUALIZE_X2APIC (1U << 4)
#define PROC2_VPID (1U << 5)
#define PROC2_WBINVD_EXITING (1U << 6)
#define PROC2_UNRESTRICTED_GUEST (1U << 7)
#define PROC2_APIC_REGISTER_VIRT (1U << 8)
#define PROC2_VIRTUAL_INTR_DELIVERY (1U << 9)
#define PROC2_PAUSE_LOOP_EXITING (1U << 10)
#define PROC2_INVPCID (1U << 12)
#define PROC2_VMFUNC (1U << 13)
#define PROC2_VMCS_SHADOWING (1U << 14)
#define PROC2_PML (1U << 17)
#define PROC2_EPT_VE (1U << 18)
#define PROC2_XSAVES (1U << 20)
#define PROC2_TSC_SCALING (1U << 25)
/* VM-exit controls. */
#define EXIT_SAVE_DEBUG_CONTROLS (1U << 2)
#define EXIT_HOST_ADDR_SPACE_SIZE (1U << 9)
#define EXIT_LOAD_PERF_GLOBAL_CTRL (1U << 12)
#define EXIT_ACK_INTERRUPT (1U << 15)
#define EXIT_SAVE_PAT (1U << 18)
#define EXIT_LOAD_PAT (1U << 19)
#define EXIT_SAVE_EFER (1U << 20)
#define EXIT_LOAD_EFER (1U << 21)
#define EXIT_SAVE_PREEMPTION_TIMER (1U << 22)
/* VM-entry controls. */
#define ENTRY_LOAD_DEBUG_CONTROLS (1U << 2)
#define ENTRY_IA32E_MODE_GUEST (1U << 9)
#define ENTRY_LOAD_PERF_GLOBAL_CTRL (1U << 13)
#define ENTRY_LOAD_PAT (1U << 14)
#define ENTRY_LOAD_EFER (1U << 15)

/* Basic exit reasons (SDM Appendix C). */
#define EXIT_REASON_EXCEPTION_NMI 0
#define EXIT_REASON_EXTERNAL_INTERRUPT 1
#define EXIT_REASON_TRIPLE_FAULT 2
#define EXIT_REASON_INIT 3
#define EXIT_REASON_SIPI 4
#define EXIT_REASON_IO_SMI 5
#define EXIT_REASON_OTHER_SMI 6
#define EXIT_REASON_INTERRUPT_WINDOW 7
#define EXIT_REASON_NMI_WINDOW 8
#define EXIT_REASON_TASK_SWITCH 9
#define EXIT_REASON_CPUID 10
#define EXIT_REASON_GETSEC 11
#define EXIT_REASON_HLT 12
#define EXIT_REASON_INVD 13
#define EXIT_REASON_INVLPG 14
#define EXIT_REASON_RDPMC 15
#define EXIT_REASON_RDTSC 16
#define EXIT_REASON_RSM 17
#define EXIT_REASON_VMCALL 18
#define EXIT_REASON_VMCLEAR 19
#define EXIT_REASON_VMLAUNCH 20
#define EXIT_REASON_VMPTRLD 21
#define EXIT_REASON_VMPTRST 22
#define EXIT_REASON_VMREAD 23
#define EXIT_REASON_VMRESUME 24
#define EXIT_REASON_VMWRITE 25
#define EXIT_REASON_VMXOFF 26
#define EXIT_REASON_VMXON 27
#define EXIT_REASON_CR_ACCESS 28
#define EXIT_REASON_DR_ACCESS 29
#define EXIT_REASON_IO 30
#define EXIT_REASON_RDMSR 31
#define EXIT_REASON_WRMSR 32
#define EXIT_REASON_INVALID_GUEST_STATE 33
#define EXIT_REASON_MSR_LOADING 34
#define EXIT_REASON_MWAIT 36
#define EXIT_REASON_MTF 37
#define EXIT_REASON_MONITOR 39
#define EXIT_REASON_PAUSE 40
#define EXIT_REASON_MACHINE_CHECK 41
#define EXIT_REASON_TPR_BELOW_THRESHOLD 43
#define EXIT_REASON_APIC_ACCESS 44
#define EXIT_REASON_VIRTUALIZED_EOI 45
#define EXIT_REASON_GDTR_IDTR 46
#define EXIT_REASON_LDTR_TR 47
#define EXIT_REASON_EPT_VIOLATION 48
#define EXIT_REASON_EPT_MISCONFIG 49
#define EXIT_REASON_INVEPT 50
#define EXIT_REASON_RDTSCP 51
#define EXIT_REASON_PREEMPTION_TIMER 52
#define EXIT_REASON_INVVPID 53
#define EXIT_REASON_WBINVD 54
#define EXIT_REASON_XSETBV 55
#define EXIT_REASON_APIC_WRITE 56
#define EXIT_REASON_RDRAND 57
#define EXIT_REASON_INVPCID 58
#define EXIT_REASON_VMFUNC 59
#define EXIT_REASON_ENCLS 60
#define EXIT_REASON_RDSEED 61
#define EXIT_REASON_PML_FULL 62
#define EXIT_REASON_XSAVES 63
#define EXIT_REASON_XRSTORS 64
#define EXIT_REASON_MAX 80
#define EXIT_REASON_ENTRY_FAILURE (1U << 31)

/* Interruption information (entry injection, exit information, IDT vectoring). */
#define INTR_INFO_VALID (1U << 31)
#define INTR_INFO_DELIVER_ERROR_CODE (1U << 11)
#define INTR_INFO_NMI_UNBLOCKED_BY_IRET (1U << 12)
#define INTR_TYPE_EXTERNAL (0U << 8)
#define INTR_TYPE_NMI (2U << 8)
#define INTR_TYPE_HW_EXCEPTION (3U << 8)
#define INTR_TYPE_SW_INTERRUPT (4U << 8)
#define INTR_TYPE_PRIV_SW_EXCEPTION (5U << 8)
#define INTR_TYPE_SW_EXCEPTION (6U << 8)
#define INTR_TYPE_MASK (7U << 8)

/* Guest interruptibility state. */
#define INTERRUPTIBILITY_STI (1U << 0)
#define INTERRUPTIBILITY_MOV_SS (1U << 1)
#define INTERRUPTIBILITY_SMI (1U << 2)
#define INTERRUPTIBILITY_NMI (1U << 3)

/* Guest activity states. */
#define ACTIVITY_ACTIVE 0
#define ACTIVITY_HLT 1
#define ACTIVITY_SHUTDOWN 2
#define ACTIVITY_WAIT_SIPI 3

/* EPT (SDM 29.3). */
#define EPT_READ (1ULL << 0)
#define EPT_WRITE (1ULL << 1)
#define EPT_EXEC (1ULL << 2)
#define EPT_RWX (EPT_READ | EPT_WRITE | EPT_EXEC)
#define EPT_MEMTYPE_SHIFT 3
#define EPT_IGNORE_PAT (1ULL << 6)
#define EPT_LARGE (1ULL << 7)
#define EPT_ACCESSED (1ULL << 8) /* with EPTP_AD (SDM 29.3.5) */
#define EPT_DIRTY (1ULL << 9)    /* leaves only */
#define EPTP_WB (6ULL << 0)
#define EPTP_WALK_4 (3ULL << 3)
#define EPTP_AD (1ULL << 6)      /* accessed and dirty flags enabled */
#define EPT_CAP_EXEC_ONLY (1ULL << 0)
#define EPT_CAP_WB (1ULL << 14)
#define EPT_CAP_2M (1ULL << 16)
#define EPT_CAP_1G (1ULL << 17)
#define EPT_CAP_INVEPT (1ULL << 20)
#define EPT_CAP_INVEPT_SINGLE (1ULL << 25)
#define EPT_CAP_INVEPT_ALL (1ULL << 26)
#define EPT_CAP_AD (1ULL << 21)
#define VPID_CAP_INVVPID (1ULL << 32)
/* INVVPID types (SDM 31.3). */
#define INVVPID_ADDRESS 0
#define INVVPID_SINGLE 1
#define INVVPID_ALL 2
#define INVVPID_SINGLE_KEEP_GLOBALS 3

/* VMX instructions. Each returns 0 on VMsucceed, 1 on VMfailInvalid (CF), 2 on VMfailValid (ZF). */
static inline int vmx_status(u8 cf, u8 zf) { return cf ? 1 : zf ? 2 : 0; }

static inline int vmxon(u64 pa)
{
	u8 cf, zf;
	__asm__ volatile("vmxon %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return vmx_status(cf, zf);
}
static inline int vmclear(u64 pa)
{
	u8 cf, zf;
	__asm__ volatile("vmclear %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return vmx_status(cf, zf);
}
static inline int vmptrld(u64 pa)
{
	u8 cf, zf;
	__asm__ volatile("vmptrld %2; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(pa) : "cc", "memory");
	return vmx_status(cf, zf);
}
static inline u64 vmread(u64 field)
{
	u64 v;
	__asm__ volatile("vmread %1, %0" : "=rm"(v) : "r"(field) : "cc");
	return v;
}
static inline int vmwrite_checked(u64 field, u64 v)
{
	u8 cf, zf;
	__asm__ volatile("vmwrite %2, %3; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "rm"(v), "r"(field) : "cc");
	return vmx_status(cf, zf);
}
static inline int invept(u64 type, u64 eptp)
{
	struct { u64 eptp, zero; } desc = { eptp, 0 };
	u8 cf, zf;
	__asm__ volatile("invept %2, %3; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(desc), "r"(type) : "cc", "memory");
	return vmx_status(cf, zf);
}
static inline int invvpid(u64 type, u16 vpid, u64 addr)
{
	struct { u64 vpid, addr; } desc = { vpid, addr };
	u8 cf, zf;
	__asm__ volatile("invvpid %2, %3; setc %0; setz %1" : "=qm"(cf), "=qm"(zf) : "m"(desc), "r"(type) : "cc", "memory");
	return vmx_status(cf, zf);
}

#endif
