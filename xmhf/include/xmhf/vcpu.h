/* The guest CPU each physical CPU runs (VMX non-root), and the VMX core's interface. */
#ifndef XMHF_VCPU_H
#define XMHF_VCPU_H
#include <xmhf/types.h>
#include <xmhf/percpu.h>
#include <xmhf/spinlock.h>
#include <x86/vmx.h>
#include <lib/segdesc.h>

struct msr_entry;
struct ept02_slot;

/* One of VMCS02's merged bitmap pages as of its last merge (runtime/nested/bitmap-watch.c). */
struct bitmap02_cache {
	u64 gpa;             /* L1's page merged in (0: none, merge at the next entry) */
	void *watch;         /* its watch (bitmap-watch.c) */
	u32 version;         /* that page's watch version then */
	u32 l0_generation;   /* L0's bitmap's generation then */
};
#define BITMAP02_MSR 0
#define BITMAP02_IO_A 1
#define BITMAP02_IO_B 2

/* Guest general-purpose registers in the SDM's register-number order (Table 28-3), so a register
 * number from an exit qualification indexes gpr[]. RSP lives in the VMCS; gpr[4] is unused. */
struct guest_regs {
	u64 gpr[16];
};
#define REG_RAX 0
#define REG_RCX 1
#define REG_RDX 2
#define REG_RBX 3
#define REG_RSP 4
#define REG_RBP 5
#define REG_RSI 6
#define REG_RDI 7

struct vcpu {
	struct guest_regs regs; /* must stay first: the exit stub saves registers at offset 0 */
	u32 launch_next;        /* offset 128: the next entry is a VMLAUNCH (a fresh VMCS02), read by the stub */
	u32 pad2;
	struct cpu *cpu;
	u64 vmxon_pa;
	u64 vmcs_pa;
	u32 exit_reason;        /* of the exit being handled */
	u32 pad0;
	volatile u32 nmi_pending;  /* guest NMIs to inject (0..2) */
	/* Guest INIT/SIPI, emulated (runtime/guest/ipi.c): set by the sending CPU. */
	volatile u32 init_pending; /* an INIT was sent; the CPU must go to wait-for-SIPI */
	volatile u32 wait_sipi;    /* waiting in the hypervisor for a SIPI */
	volatile u32 sipi_pending; /* a SIPI arrived with sipi_vector */
	volatile u32 sipi_vector;
	/* An NMI sent to make this CPU leave the guest (an INIT for it) is on its way: the next NMI is
	 * that one, not the guest's (ipi_kick, nmi_is_kick). */
	volatile u32 kick_nmi;
	spinlock_t ipi_lock;       /* orders init_pending, wait_sipi and sipi_pending (ipi.c) */
	/* The guest's xAPIC LDR and DFR as last written (lapic-trap.c), for logical INIT/SIPI (ipi.c):
	 * another CPU's APIC registers cannot be read. */
	volatile u32 apic_ldr, apic_dfr;
	u32 guest_started;         /* this AP took its first SIPI (lapic-trap.c counts them) */
	u64 sipi_exit_at;          /* `exits` at the last SIPI exit and its vector (sipi.c) */
	u32 sipi_exit_vector;
	u32 init_at_sipi;          /* INIT exits in a row at a SIPI's start address (sipi.c) */
	/* L1 got an INIT exit for L2 (nested/exit.c): a SIPI that follows is kept for L2's wait (ipi.c). */
	volatile u32 l2_init_taken;
	u32 parked;                /* its guest is in wait-for-SIPI: counts as quiesced (quiesce.c) */
	u64 exits;
	/* Nested VMX (runtime/nested/), when the cmdline says nested=1. */
	u32 l1_vmx_on;          /* L1 executed VMXON (it is in VMX root operation) */
	u32 l1_vmx_aborted;     /* a VMX abort shut this L1 vCPU down for good (nested/exit.c) */
	u64 l1_vmxon_ptr;
	u64 l1_current_vmcs;    /* L1's current-VMCS pointer, ~0 if none */
	u64 *vmcs12;            /* L0's copy of the current VMCS12's region (runtime/nested/vmcs12.c) */
	u32 in_l2;              /* VMCS02 is current: the guest is L2 */
	u32 l2_vid;             /* VMCS02 has virtual-interrupt delivery: exits save RVI/SVI (apicv.c) */
	u32 l2_entry_intr;      /* with l2_vid: VMCS02's entry-interruption information at the last entry */
	u64 vmcs02_pa;          /* this CPU's VMCS02 */
	u64 vmcs02_of;          /* the VMCS12 it was built from and is in sync with (~0: none) */
	u64 vmcs12_dirty[4];    /* fields L1 VMWRITEs since VMCS02 was in sync (bit = table index) */
	u32 vmcs12_changes;     /* the kinds of those changes (nested/nested.h, enum vmcs12_changes) */
	u32 vmcs12_dirty_words; /* the words of vmcs12_dirty with a bit set, a bit each */
	u32 rare12_stale;       /* L2's rare guest fields are in VMCS02 only (nested/entry.c) */
	u8 *msr_bitmap02;       /* VMCS02's MSR bitmap: L0's intercepts | L1's */
	u8 *io_bitmap02;        /* VMCS02's I/O bitmaps A and B (8 KiB): L0's intercepts | L1's */
	struct bitmap02_cache bitmap02_cache[3]; /* what msr_bitmap02 and io_bitmap02 hold (BITMAP02_*) */
	u32 bitmaps02_stamp, bitmaps02_slots, bitmaps02_stamped; /* the fast check (bitmap-watch.c) */
	u64 nested_entries;     /* L1's VMLAUNCHes and VMRESUMEs that entered L2 (the bitmap watch's back-off) */
	u64 io_bitmap12_gpa[2]; /* L1's I/O bitmap pages as last mapped, for L2's I/O exits (nested/exit.c) */
	const u8 *io_bitmap12[2];
	u64 link02;             /* VMCS02's VMCS link pointer as last written (nested/entry.c; 0: not yet) */
	u64 eptp02_key;         /* the EPTP12 whose EPT02 VMCS02's EPT pointer holds, ~0 if unsure (ept02.c) */
	u32 eptp02_gen;         /* the EPT01 generation it was built for */
	struct ept02_slot *ept02; /* this CPU's EPT02s, one per EPTP12 (runtime/nested/ept02.c) */
	u32 ept02_cur;          /* the slot of the EPTP12 L2 runs with */
	u32 ept02_pages;        /* tables held by all slots */
	u64 ept02_clock;        /* uses of the cache, for least-recently-used eviction */
	u32 vpid02_of;          /* the VPID12 whose translations VPID02 may hold, 0 if none (vpid02.c) */
	u32 shadow_live;        /* the shadow VMCS holds the truth for VMCS12's shadowed fields (shadow.c) */
	u64 shadow_vmcs_pa;     /* this CPU's shadow VMCS for L1's VMREAD/VMWRITE, 0 until first used */
	volatile u32 shadow_current; /* the shadow VMCS is the current VMCS: NMI handlers keep off it */
	/* The shadow VMCS holds VMCS12's value of every shadowed field an exit to L1 leaves alone, and
	 * VMCS01 links it (shadow.c). */
	u8 shadow_synced, shadow_linked;
	u16 pad6;
	void *msr_load02;       /* VMCS02's copies of L1's entry MSR-load and exit MSR-store lists */
	struct msr_entry *msr_store02;
	struct msr_store_src *msr_store_src; /* where each exit-store entry's value comes from (msr-lists.c) */
};

_Static_assert(__builtin_offsetof(struct vcpu, launch_next) == 128, "exit-stub.S reads launch_next at 128");

static inline struct vcpu *this_vcpu(void) { return (struct vcpu *)this_cpu()->vcpu; }

/* VMCS accessors on the current VMCS. A failed VMWRITE is a hypervisor bug (vmcs_write_failed stops
 * with the field, the value and the VM-instruction error). Inline: a nested round trip does about a
 * hundred VMWRITEs, and a call each cost more than the VMWRITE. */
NORETURN void vmcs_write_failed(u64 field, u64 value);
static inline void vmcs_write(u64 field, u64 value)
{
	__asm__ goto("vmwrite %0, %1; jbe %l[failed]" : : "rm"(value), "r"(field) : "cc" : failed);
	return;
failed:
	vmcs_write_failed(field, value);
}
static inline u64 vmcs_read(u64 field) { return vmread(field); }
static inline void vmcs_set_bits(u64 field, u64 bits) { vmcs_write(field, vmcs_read(field) | bits); }
static inline void vmcs_clear_bits(u64 field, u64 bits) { vmcs_write(field, vmcs_read(field) & ~bits); }

/* Guest segment register i (0-7: ES, CS, SS, DS, FS, GS, LDTR, TR: the order of the VMCS encodings,
 * which step by 2 within each group, SDM Appendix B) of the current VMCS. */
static inline void vmcs_read_guest_segment(u32 i, struct vmx_segment *s)
{
	s->sel = (u16)vmcs_read(VMCS_GUEST_ES_SELECTOR + 2 * i);
	s->limit = (u32)vmcs_read(VMCS_GUEST_ES_LIMIT + 2 * i);
	s->ar = (u32)vmcs_read(VMCS_GUEST_ES_ACCESS_RIGHTS + 2 * i);
	s->base = vmcs_read(VMCS_GUEST_ES_BASE + 2 * i);
}

/* Capabilities read once on the BSP. */
struct vmx_caps {
	u64 basic, misc, ept_vpid;
	u32 pin0, pin1, proc0, proc1, proc2_0, proc2_1, exit0, exit1, entry0, entry1; /* allowed 0/1 */
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	u32 maxphyaddr;
};
extern struct vmx_caps vmx_caps;

void vmx_check_and_read_caps(void);     /* BSP: stops with a clear message if VMX is unusable */
void vmx_enable_on_this_cpu(struct vcpu *v);
void vmx_invvpid(u32 type, u16 vpid, u64 linear); /* the type, or a wider one the CPU has */
void vmcs01_global_init(void);
void vmcs01_setup(struct vcpu *v, bool bsp);
NORETURN void vmx_launch(struct vcpu *v);
NORETURN void vmx_start_guest_on_this_cpu(void);

/* CR0/CR4 as the guest reads them: host-owned bits (in the guest/host mask) from the read shadow,
 * the others from the real register (SDM Vol. 3, 25.6.6). */
static inline u64 guest_cr0(void)
{
	u64 mask = vmcs_read(VMCS_CR0_GUEST_HOST_MASK);
	return (vmcs_read(VMCS_GUEST_CR0) & ~mask) | (vmcs_read(VMCS_CR0_READ_SHADOW) & mask);
}
static inline u64 guest_cr4(void)
{
	u64 mask = vmcs_read(VMCS_CR4_GUEST_HOST_MASK);
	return (vmcs_read(VMCS_GUEST_CR4) & ~mask) | (vmcs_read(VMCS_CR4_READ_SHADOW) & mask);
}

/* Event injection into the guest at the next VM entry. */
void guest_inject_exception(u32 vector, bool has_error, u32 error_code);
static inline void guest_inject_gp(void) { guest_inject_exception(13, true, 0); }
static inline void guest_inject_ud(void) { guest_inject_exception(6, false, 0); }
void guest_skip_instruction(void);
u32 guest_cpl(void);

void guest_cr0_sync_cache_bits(u64 cr0);

/* Guest state resets (SDM Vol. 3, 10.1.1 / 9.1.1). */
void guest_state_real_mode(u16 cs_sel, u64 cs_base, u64 rip);
void guest_state_after_init(struct vcpu *v, bool bsp);
void guest_state_sipi(struct vcpu *v, u32 vector);
/* One guest segment register: selector field, then base, limit and access rights (same index:
 * offsets from the selector's). Inline: an exit to L1 loads eight (nested/exit.c). */
static inline void guest_set_segment(u32 sel_field, u64 sel, u64 base, u32 limit, u32 ar)
{
	u32 idx = sel_field - VMCS_GUEST_ES_SELECTOR;

	vmcs_write(sel_field, sel);
	vmcs_write(VMCS_GUEST_ES_BASE + idx, base);
	vmcs_write(VMCS_GUEST_ES_LIMIT + idx, limit);
	vmcs_write(VMCS_GUEST_ES_ACCESS_RIGHTS + idx, ar);
}

/* Stops the whole machine after a report: as the cmdline's on_stop says. */
NORETURN void xmhf_stop(const char *why);

/* Exit handlers, one per concern; each returns after arranging the guest's next entry. */
typedef void (*exit_handler_t)(struct vcpu *v);
void handle_cpuid(struct vcpu *v);
/* CPU errata the guest is told about (guest/cpu-errata.c). */
void guest_cpu_errata_init(void);
bool guest_tsc_deadline_hidden(void);
void handle_rdmsr(struct vcpu *v);
void handle_wrmsr(struct vcpu *v);
void handle_cr_access(struct vcpu *v);
void handle_xsetbv(struct vcpu *v);
void handle_vmcall(struct vcpu *v);
void handle_init(struct vcpu *v);
void handle_sipi(struct vcpu *v);
void handle_triple_fault(struct vcpu *v);
void handle_ept_violation(struct vcpu *v);
void handle_ept_misconfig(struct vcpu *v);
void handle_exception_nmi(struct vcpu *v);
void handle_nmi_window(struct vcpu *v);
void handle_vmx_instruction(struct vcpu *v);
void handle_invd(struct vcpu *v);
void handle_getsec(struct vcpu *v);
void handle_task_switch(struct vcpu *v); /* guest/task-switch.c */

/* Hypervisor NMIs in root mode. */
void nmi_host(void);

/* Quiesce (runtime/smp/quiesce.c). */
void quiesce_begin(void);
void quiesce_end(void);
bool quiesce_nmi(void);
void quiesce_park(struct vcpu *v);   /* this CPU's guest waits for a SIPI, NMIs blocked (sipi.c) */
void quiesce_unpark(struct vcpu *v);

/* Port I/O exits (runtime/guest/io.c): hypapp intercepts and the guest's power-off. */
void io_intercept_init(void);
void io_bitmap_set(u32 port, u32 count, bool intercept);
u64 io_bitmap_a(void);
u64 io_bitmap_b(void);
struct sparse_bitmap;
const struct sparse_bitmap *io_bitmap_l0(u32 page); /* page 0: ports 0-7fff (A), 1: 8000-ffff (B) */
void handle_io(struct vcpu *v);

/* EPT01 (runtime/ept). */
void ept01_init(void);
u64 ept01_eptp(void);
void ept01_mtrr_write(u32 msr, u64 value);
bool ept01_is_mtrr_msr(u32 msr);
bool ept01_check_generation(void); /* true if EPT01 changed since this CPU last looked */

/* Guest memory: GPA -> pointer, refusing the hypervisor's region. NULL if not allowed. */
void *guestmem_ptr(u64 gpa, u64 len);

/* The MSRs the hypervisor keeps (runtime/guest/msr-policy.c). */
enum msr_action {
	MSR_PASS,       /* the hardware's, no exit */
	MSR_EMULATE,    /* exits; msr.c's code decides */
	MSR_HIDDEN,     /* exits; #GP as on a CPU without the feature */
	MSR_LISTS_ONLY, /* passed through, but no MSR list of L1's may name it */
	MSR_REFUSED,    /* exits; #GP, reported once (writes of MSRs no row passes) */
};
enum msr_action msr_policy(u32 msr, bool write);
bool msr_policy_refused_in_lists(u32 msr);
void msr_policy_bitmap(u8 *bitmap);

/* Nested VMX (runtime/nested/). */
bool nested_enabled(void);
void nested_handle_vmx_instruction(struct vcpu *v);
bool nested_rdmsr(u32 msr, u64 *value);   /* the VMX capability MSRs and IA32_FEATURE_CONTROL for L1 */
bool nested_l2_exit(struct vcpu *v);       /* an exit while L2 ran: true if L0 handled it (L2 resumes) */
/* An exception L0's emulation raises in L2 that L1 intercepts becomes an exception exit to L1 (true). */
bool nested_l2_exception(struct vcpu *v, u32 vector, bool has_error, u32 error_code, u64 qual);
bool nested_l0_nmi(struct vcpu *v);        /* an NMI exit from L2: true if L0 keeps it */
bool vmcs12_read_pin_nmi_exiting(struct vcpu *v);
void nested_ept01_changed(struct vcpu *v);
/* A write to an L1 page watched as a bitmap VMCS02 merged: true if given back (retry the access). */
bool nested_bitmap_watch_fault(u64 gpa, u64 qual);
void nested_bitmap_unwatch(u64 gpa); /* a hypapp took the page: its rights, not the watch's */
void nested_l0_bitmaps_changed(void); /* L0's I/O or MSR intercepts changed: VMCS02 merges again */
void nested_pending_events(struct vcpu *v); /* before entering L2: INIT and guest NMIs for L1 or L2 */
void nested_apicv_entering(struct vcpu *v);  /* before entering L2: the event injected (apicv.c) */
void nested_hold_aborted(struct vcpu *v);  /* before entering an L1 vCPU a VMX abort shut down */
void reinject_interrupted_event(void);
bool nested_entry_failed(struct vcpu *v, u32 error); /* VMLAUNCH/VMRESUME of VMCS02 failed */
void vmcs01_host_state(struct vcpu *v);   /* this CPU's host state into the current VMCS */
const struct sparse_bitmap *vmcs01_msr_intercepts(void); /* VMCS01's MSR bitmap, indexed */
/* Guest-virtual memory access for instruction operands: copies n bytes at a linear address (page
 * walks of the guest's paging mode); injects #PF and returns false if a page is not mapped. */
bool guest_linear_read(u64 linear, void *buf, u32 n);
bool guest_linear_write(u64 linear, const void *buf, u32 n);
/* The same for L2 (VMCS02 current): its guest-physical addresses through EPT12. GUEST_COPY_FAULT: #PF
 * injected into L2; GUEST_COPY_EXIT: EPT12 refused the data access, L1 has the EPT exit. */
enum { GUEST_COPY_OK, GUEST_COPY_FAULT, GUEST_COPY_EXIT };
int guest_l2_linear_copy(struct vcpu *v, u64 linear, void *buf, u32 n, bool write);
/* L2's data access at guest-physical gpa2 (linear address `linear`) as L1 guest-physical, through
 * EPT12 with its rights; false if it became L1's EPT violation or misconfiguration exit. */
bool nested_l2_operand_gpa(struct vcpu *v, u64 gpa2, u64 linear, bool write, u64 *gpa1);
void guest_inject_pf(u64 linear, u32 error_code);
/* A CR3 written by an emulated instruction (PAE PDPTEs checked and loaded, VPID flushed); false:
 * invalid PDPTEs, nothing changed. */
bool guest_load_cr3(u64 cr3);

/* Guest INIT/SIPI (runtime/guest/ipi.c) and the local APIC trap (runtime/guest/lapic-trap.c). */
void ipi_emulate(struct vcpu *src, u32 dest, u32 icr_low, bool x2apic);
void ipi_check_init(struct vcpu *v);
void ap_wait_for_sipi(struct vcpu *v);
void guest_enter_wait_for_sipi(struct vcpu *v); /* after a real INIT (sipi.c) */
u32 ipi_wait_sipi_nested(struct vcpu *v); /* L2 in wait-for-SIPI, SIPIs emulated: the vector */
void ipi_l2_active(struct vcpu *v);        /* L2 entered active: drop a SIPI kept for its wait */
void ipi_vmxoff(struct vcpu *v);           /* L1 left VMX operation: drop SIPIs it could not take */
bool lapic_trap_delinked(void);             /* apic=init-exit and the guest's APs are up */
void lapic_trap_ap_started(struct vcpu *v);
void ipi_kick(struct vcpu *target);  /* an NMI to make it leave the guest, known as such */
bool nmi_is_kick(struct vcpu *v);     /* for each NMI taken: was it ipi_kick's? */
void lapic_trap_init(void);
void lapic_trap_cpu_init(struct vcpu *v);
bool lapic_trap_handle_ept(struct vcpu *v, u64 gpa);
bool lapic_trap_handle_wrmsr(struct vcpu *v, u32 msr, u64 value);
void guest_advance_rip(u64 length);
/* The guest's instruction at CS:RIP (up to 15 bytes; returns how many could be read), and the
 * default operand size of its code segment (16, 32 or 64). While L2 runs on EPT12, its page walk
 * and bytes are read through EPT12 (nested_l2_gpa_to_l1). */
u32 guest_fetch_instruction(struct vcpu *v, u8 *buf);
bool nested_l2_gpa_to_l1(struct vcpu *v, u64 gpa2, u64 *gpa1);
u32 guest_code_bits(void);
/* A guest store to a trapped MMIO page, emulated from its instruction (lib/mmio-store.c): decode
 * fills *st, *cpu and bytes (15, for messages) without changing the guest (0, or -1 if the emulator
 * does not know the instruction); commit then applies its register, RFLAGS and RIP effects. */
struct mmio_cpu;
struct mmio_store;
int guest_store_decode(struct vcpu *v, u64 (*read_old)(void *ctx, u32 size), void *ctx, struct mmio_cpu *cpu,
		       struct mmio_store *st, u8 *bytes, u32 *n);
void guest_store_commit(struct vcpu *v, const struct mmio_cpu *cpu, const struct mmio_store *st);

/* EPT01 permissions of one 4 KiB guest page (EPT_READ/WRITE/EXEC bits): set before the guest runs,
 * or changed while it runs (other CPUs quiesced), and read. */
void ept01_set_page_rights(u64 gpa, u64 rights);
void ept01_change_page_rights(u64 gpa, u64 rights);
u64 ept01_page_rights(u64 gpa);
u64 ept01_leaf(u64 gpa, int *level); /* EPT01's leaf for gpa (0 if none); *level 1 = 4 KiB .. 3 = 1 GiB */
bool ept01_map_on_demand(u64 gpa); /* maps gpa if beyond the boot map (true: retry the access) */

/* INT 15h E820 hook (runtime/guest/e820.c). */
void e820_hook_install(void);
bool e820_hook_handle(struct vcpu *v);

/* MSR access with fault recovery. Return 0, or the exception vector on a fault. */
int rdmsr_safe(u32 msr, u64 *value);
int wrmsr_safe(u32 msr, u64 value);

/* Event logger (build.sh --event-logger): per-CPU VM-exit counts and handling ticks by reason (L1's
 * and L2's exits apart), CPUID by leaf, MSR by index. Without the option these are empty. */
#ifdef XMHF_EVENT_LOGGER
#define EVENT_LOGGER 1
void event_log_exit(struct vcpu *v, u32 reason, bool l2, u64 ticks);
void event_log_key(struct vcpu *v, u32 reason, u32 key);
void event_log_print_all(void);
#else
#define EVENT_LOGGER 0
static inline void event_log_exit(struct vcpu *v, u32 reason, bool l2, u64 ticks)
{
	(void)v, (void)reason, (void)l2, (void)ticks;
}
static inline void event_log_key(struct vcpu *v, u32 reason, u32 key) { (void)v; (void)reason; (void)key; }
static inline void event_log_print_all(void) {}
#endif

#endif
