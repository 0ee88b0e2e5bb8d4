/* Hardware task switches (SDM Vol. 3, 7.3), emulated for a guest. In VMX non-root operation a task
 * switch is a VM exit (SDM Vol. 3, 26.4.2 "Treatment of Task Switches") taken after the CPU checked
 * the task gate, the new TSS descriptor (type, present, DPL for JMP/CALL, busy) and the new TSS's
 * limit; everything else is the hypervisor's. Pure logic on plain structs, unit-tested on the host;
 * the runtime moves the state between the VMCS and these structs (runtime/guest/task-switch.c).
 * The order of the steps and of the checks after the commit point follows SDM 7.3 and Bochs 2.7
 * (cpu/tasking.cc), the reference the differential tests compare with. */
#ifndef LIB_TASK_SWITCH_H
#define LIB_TASK_SWITCH_H
#include <xmhf/types.h>
#include <lib/segdesc.h>

/* Segment registers in VMCS field order (ES CS SS DS FS GS LDTR TR). */
enum ts_seg { TS_ES, TS_CS, TS_SS, TS_DS, TS_FS, TS_GS, TS_LDTR, TS_TR, TS_NSEG };

struct ts_cpu {
	struct vmx_segment seg[TS_NSEG]; /* as the VMCS holds them (lib/segdesc.h) */
	u64 gdtr_base;
	u32 gdtr_limit;
	u64 gpr[8]; /* RAX RCX RDX RBX RSP RBP RSI RDI */
	u64 rip, rflags, cr0, cr3, dr7;
};

/* Exit qualification bits 31:30 (SDM 28.2.1, Table 28-2). */
enum ts_source { TS_FROM_CALL = 0, TS_FROM_IRET = 1, TS_FROM_JMP = 2, TS_FROM_GATE = 3 };

struct ts_request {
	u16 selector; /* the new TSS's selector (exit qualification 15:0) */
	enum ts_source source;
	u64 return_rip; /* the EIP the old task resumes at, saved in its TSS */
	bool push_error; /* an exception with an error code delivered through a task gate */
	u32 error_code;
};

/* Guest memory by linear address, accessed as the CPU's implicit supervisor accesses. A callback
 * returns false when the access faults; it has then raised the fault (#PF) itself. load_cr3 loads
 * CR3 from a 32-bit TSS (with PAE paging also the PDPTEs) so that later accesses use it; false if the
 * PDPTEs are invalid. */
struct ts_env {
	bool (*read)(void *ctx, u64 linear, void *buf, u32 n);
	bool (*write)(void *ctx, u64 linear, const void *buf, u32 n);
	bool (*load_cr3)(void *ctx, u64 cr3);
	bool paging; /* CR0.PG: only then does a 32-bit TSS's CR3 matter */
	void *ctx;
};

struct ts_outcome {
	bool committed;   /* past the commit point: cpu holds the new task (selectors at least) */
	bool mem_fault;   /* a memory access faulted: the callback raised the fault, deliver nothing else */
	int vector;       /* an exception to deliver (in the new task if committed), or -1 */
	u32 error_code;   /* for vector 10-13 (#TS #NP #SS #GP): all of them have one */
	bool debug_trap;  /* the new TSS's T flag: a #DB trap with DR6.BT before its first instruction */
};

/* Switches cpu to the task req->selector names. Before the commit point a fault leaves cpu and the
 * old TSS unchanged; after it the new task's selectors, registers, TR, CR0.TS and DR7 are in cpu and
 * segments not yet validated are marked unusable (CS keeps its old descriptor). */
void task_switch_emulate(struct ts_cpu *cpu, const struct ts_request *req, const struct ts_env *env,
			 struct ts_outcome *out);

#endif
