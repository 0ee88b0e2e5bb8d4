/* VMX capabilities and VMXON (SDM Vol. 3, 24.6-24.8 "Enabling and entering VMX operation"). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <x86/cpu.h>
#include <x86/msr.h>

struct vmx_caps vmx_caps;

static void read_ctls(u32 msr, u32 true_msr, u32 *allowed0, u32 *allowed1)
{
	u64 v = rdmsr((vmx_caps.basic & VMX_BASIC_TRUE_CTLS) ? true_msr : msr);

	*allowed0 = (u32)v;      /* bits that must be 1 */
	*allowed1 = (u32)(v >> 32); /* bits that may be 1 */
}

static NORETURN void unusable(const char *what)
{
	printf("XMHF: FATAL: this CPU cannot run the hypervisor: %s\n", what);
	printf("XMHF: the guest was not started.\n");
	cpu_halt_forever();
}

void vmx_check_and_read_caps(void)
{
	struct cpuid_regs r = cpuid(1, 0);

	if (!(r.ecx & CPUID1_ECX_VMX))
		unusable("no VMX (CPUID.1:ECX.VMX = 0)");
	vmx_caps.basic = rdmsr(MSR_IA32_VMX_BASIC);
	read_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS, &vmx_caps.pin0, &vmx_caps.pin1);
	read_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, &vmx_caps.proc0, &vmx_caps.proc1);
	read_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS, &vmx_caps.exit0, &vmx_caps.exit1);
	read_ctls(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS, &vmx_caps.entry0, &vmx_caps.entry1);
	vmx_caps.misc = rdmsr(MSR_IA32_VMX_MISC);
	vmx_caps.cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	vmx_caps.cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	vmx_caps.cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	vmx_caps.cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
	vmx_caps.maxphyaddr = cpuid(0x80000008, 0).eax & 0xff;
	if (!(vmx_caps.proc1 & PROC_SECONDARY_CONTROLS))
		unusable("no secondary processor-based VM-execution controls");
	u64 p2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
	vmx_caps.proc2_0 = (u32)p2;
	vmx_caps.proc2_1 = (u32)(p2 >> 32);
	if (!(vmx_caps.proc2_1 & PROC2_EPT))
		unusable("no EPT");
	if (!(vmx_caps.proc2_1 & PROC2_UNRESTRICTED_GUEST))
		unusable("no unrestricted guest");
	vmx_caps.ept_vpid = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
	if (!(vmx_caps.ept_vpid & EPT_CAP_WB) || !(vmx_caps.ept_vpid & (1ULL << 6)))
		unusable("EPT lacks write-back paging structures or 4-level walks");
	if (!(vmx_caps.ept_vpid & EPT_CAP_INVEPT) || !(vmx_caps.ept_vpid & EPT_CAP_INVEPT_ALL))
		unusable("no INVEPT all-context");
	if (!(vmx_caps.pin1 & PIN_VIRTUAL_NMIS) || !(vmx_caps.proc1 & PROC_NMI_WINDOW_EXITING))
		unusable("no virtual NMIs / NMI-window exiting");
	if (!(vmx_caps.proc1 & PROC_USE_MSR_BITMAPS))
		unusable("no MSR bitmaps");
	if ((vmx_caps.exit1 & (EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT)) !=
		    (EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PAT | EXIT_LOAD_PAT) ||
	    (vmx_caps.entry1 & (ENTRY_LOAD_EFER | ENTRY_LOAD_PAT)) != (ENTRY_LOAD_EFER | ENTRY_LOAD_PAT))
		unusable("no EFER/PAT load and save controls");
	if (!(vmx_caps.misc & (1ULL << 8)))
		unusable("the wait-for-SIPI activity state is not supported");
	printf("XMHF: VMX: EPT (%s%s pages), VPID %s, unrestricted guest, virtual NMIs\n",
	       (vmx_caps.ept_vpid & EPT_CAP_1G) ? "1 GiB, " : "", (vmx_caps.ept_vpid & EPT_CAP_2M) ? "2 MiB" : "4 KiB",
	       (vmx_caps.proc2_1 & PROC2_VPID) ? "yes" : "no");
}

void vmx_enable_on_this_cpu(struct vcpu *v)
{
	u64 fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	u32 *vmxon_region;

	if (!(fc & FEATURE_CONTROL_LOCK)) {
		/* Unlocked (firmware left it to us): enable VMX outside SMX and lock (SDM 24.7). */
		fc |= FEATURE_CONTROL_VMX_OUTSIDE_SMX | FEATURE_CONTROL_LOCK;
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc);
	} else if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
		unusable("the firmware locked IA32_FEATURE_CONTROL with VMX disabled (enable VT-x in the setup)");
	}
	/* CR0 and CR4 must satisfy the fixed-bit MSRs in VMX operation. */
	write_cr0((read_cr0() | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1);
	write_cr4((read_cr4() | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1);
	/* OSXSAVE in the host, so the XSETBV handler can execute XSETBV for the guest. */
	if (cpuid(1, 0).ecx & (1U << 26))
		write_cr4(read_cr4() | (1UL << 18));
	vmxon_region = page_alloc(1);
	vmxon_region[0] = (u32)vmx_caps.basic & 0x7fffffff; /* revision identifier */
	v->vmxon_pa = (u64)(uintptr_t)vmxon_region;
	if (vmxon(v->vmxon_pa))
		panic("VMXON failed");
}

/* INVVPID of the given type for vpid, or of a wider type where the CPU lacks it (bits 40-43 of
 * IA32_VMX_EPT_VPID_CAP say which types exist): individual-address and single-context-retaining-
 * globals widen to single-context, single-context to all-context. A failure is a hypervisor bug. */
void vmx_invvpid(u32 type, u16 vpid, u64 linear)
{
	u64 cap = vmx_caps.ept_vpid;

	while (type < INVVPID_ALL && !(cap & (1ULL << (40 + type))))
		type = type == INVVPID_ADDRESS ? INVVPID_SINGLE : INVVPID_ALL;
	if (type == INVVPID_SINGLE_KEEP_GLOBALS && !(cap & (1ULL << 43)))
		type = (cap & (1ULL << 41)) ? INVVPID_SINGLE : INVVPID_ALL;
	if (invvpid(type, vpid, type == INVVPID_ADDRESS ? linear : 0))
		panic("INVVPID type %u of VPID %u failed", type, vpid);
}
