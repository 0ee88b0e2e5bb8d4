/* Pure pieces of nested VMX, unit-tested on the host: L1's EPT (EPT12) walk with the SDM's
 * misconfiguration rules, and the CR0/CR4 mask and shadow composition between VMCS12 and VMCS02. */
#ifndef LIB_NESTED_LOGIC_H
#define LIB_NESTED_LOGIC_H
#include <xmhf/types.h>
#include <x86/vmx.h>

/* EPT12 walk (SDM Vol. 3, 29.3). */
struct ept12_env {
	/* The 512 entries of the table at L1-physical address pa, or NULL if L1 may not have a table
	 * there (outside its memory). */
	const u64 *(*table)(void *ctx, u64 pa);
	void *ctx;
	u32 maxphyaddr;
	bool exec_only;      /* execute-only entries offered (IA32_VMX_EPT_VPID_CAP bit 0) */
};

enum ept12_result {
	EPT12_OK,            /* translated and the access allowed */
	EPT12_VIOLATION,     /* not present, or the access not allowed: an EPT violation for L1 */
	EPT12_MISCONFIG,     /* an entry the CPU would call misconfigured */
	EPT12_BAD_TABLE,     /* a table outside L1's memory */
};

struct ept12_walk {
	u64 gpa1;            /* the L1 guest-physical address (EPT12_OK) */
	u64 leaf;            /* the leaf entry (EPT12_OK) */
	u32 rights;          /* R/W/X AND-ed over the walk: qualification bits 5:3 of a violation */
	int level;           /* level of the leaf (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB) */
	/* The entries used, by level (4 = PML4E .. level), as read, and their L1-physical addresses. */
	u64 entry[5];
	u64 entry_pa[5];
	/* With accessed and dirty flags (EPTP bit 6, SDM 29.3.5), the flags this access sets, by level:
	 * A in every entry used that lacks it, D in the leaf of a write that lacks it (EPT12_OK). */
	u64 ad_set[5];
	bool ad;             /* EPTP bit 6 */
	int last;            /* level of the last entry read (its bit 63 suppresses a #VE) */
};

/* access: bit 0 read, bit 1 write, bit 2 fetch (as in the exit qualification). 4-level walks;
 * execute-only entries when env->exec_only. */
enum ept12_result ept12_walk(const struct ept12_env *env, u64 eptp12, u64 gpa2, u32 access, struct ept12_walk *out);

/* True if the entry at the given level (4 = PML4E .. 1 = PTE) is misconfigured (SDM 29.3.3.1).
 * exec_only: execute-only entries (X without R) are allowed. */
bool ept12_misconfigured(u64 entry, int level, u32 maxphyaddr, bool exec_only);

/* The access type of an EPT violation from its exit qualification, for an EPT12 walk and for the
 * qualification reflected to L1: bits 2:0 as the CPU gave them, except that with accessed and dirty
 * flags for EPT12 an access to a guest paging-structure entry (bit 7 set, bit 8 clear) is a write
 * (SDM 29.3.3.2), reported with bits 0 and 1 both set (SDM Table 28-7, its footnote). The CPU running L2
 * on EPT02 with A/D treats it so too, but may report bit 1 alone. */
u32 ept12_access(u64 qual, bool ad);

/* CR0/CR4 between VMCS12 and VMCS02 (SDM 25.6.6). mask01: the bits L0 owns (VMX-fixed); mask12,
 * shadow12, guest12: L1's mask, read shadow and guest value. */
static inline u64 nested_cr_mask02(u64 mask01, u64 mask12)
{
	return mask01 | mask12;
}

/* VMCS02's read shadow: L1's shadow for the bits L1 owns; for bits only L0 owns, the value L1 gave its
 * guest (so L2 reads what it would read under L1 alone). */
static inline u64 nested_cr_shadow02(u64 mask01, u64 mask12, u64 shadow12, u64 guest12)
{
	u64 only0 = mask01 & ~mask12;
	return (shadow12 & mask12) | (guest12 & only0);
}

/* VMCS12's guest CR value at an exit: the real register, except bits only L0 owns, where L2's value
 * lives in VMCS02's read shadow. */
static inline u64 nested_cr_guest12(u64 mask01, u64 mask12, u64 cr02, u64 shadow02)
{
	u64 only0 = mask01 & ~mask12;
	return (cr02 & ~only0) | (shadow02 & only0);
}

/* IA32_PAT: every entry a memory type the MSR accepts (0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC-). */
static inline bool x86_pat_valid(u64 pat)
{
	for (int i = 0; i < 8; i++) {
		u32 t = (u32)(pat >> (8 * i)) & 0xff;
		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

/* IA32_EFER for a VM-exit load (SDM 27.2.2): no reserved bit (SCE, LME, LMA and NXE exist), LMA and
 * LME both equal to "host address-space size". */
static inline bool nested_host_efer_valid(u64 efer, bool host64)
{
	const u64 lme = 1ULL << 8, lma = 1ULL << 10;

	if (efer & ~(1ULL | lme | lma | (1ULL << 11)))
		return false;
	return ((efer & lma) != 0) == host64 && ((efer & lme) != 0) == host64;
}

/* Does a MOV to CR0/CR4 of value val exit to L1? (SDM 26.1.3: it changes a bit L1 owns.) */
static inline bool nested_cr_write_exits_to_l1(u64 mask12, u64 shadow12, u64 val)
{
	return ((val ^ shadow12) & mask12) != 0;
}

/* EPT02 = EPT01 ∘ EPT12 (SDM Vol. 3, 29.3): the EPT02 leaf for one translation. The leaf is 2 MiB when
 * EPT12 maps gpa2 with a 2 MiB or 1 GiB page, EPT01 maps the L1 range with one leaf of 2 MiB or more
 * (so its rights and memory type are uniform there and the hypervisor's region is not inside) and the
 * CPU has 2 MiB EPT pages; else 4 KiB. Rights: EPT12's AND EPT01's, without write while EPT12 has
 * accessed and dirty flags and its leaf is not dirty (L2's first write then faults into L0, which sets
 * the dirty flag, as KVM's shadow EPT does). Memory type and ignore-PAT: EPT12's (L1 chose them for L2;
 * EPT01's type is the host MTRR type L1 also reads). */
struct ept02_leaf {
	u64 gpa2;            /* the L2 guest-physical address the leaf maps, aligned to its size */
	u64 entry;           /* the entry: L1 page address, rights, memory type, PS for 2 MiB */
	int level;           /* 1 = 4 KiB, 2 = 2 MiB */
};

void ept02_compose(u64 gpa2, const struct ept12_walk *w12, u64 leaf01, int level01, bool page_2m,
		   struct ept02_leaf *out);

/* A CPU's cache of EPT02s, one per EPTP12 address (runtime/nested/ept02.c). */
struct ept02_slot {
	u64 eptp12;          /* the EPTP12 address (bits 51:12) this EPT02 shadows */
	u64 pml4;            /* EPT02's PML4, 0 if the slot is empty */
	u64 last_use;        /* a per-CPU clock: larger is more recent */
	u32 generation;      /* EPT01's generation when built */
	u32 pages;           /* tables it holds */
};

/* The slot for eptp12: the one holding it (*hit = true), else an empty one, else the least recently
 * used (to be emptied by the caller). n > 0. */
u32 ept02_cache_pick(const struct ept02_slot *slots, u32 n, u64 eptp12, bool *hit);

/* VMCS02's MSR and I/O bitmaps: a bit set in L0's or in L1's bitmap makes the access exit. L0's are
 * sparse and change rarely, so they are kept as a list of their nonzero 64-bit words: a merge copies
 * L1's bitmap (L1 may rewrite it in memory between entries) and ORs in only those words. */
struct sparse_bitmap {
	const u64 *bits;     /* the whole bitmap */
	u32 nwords;          /* its size in 64-bit words */
	u32 n;               /* entries of idx in use */
	u32 generation;      /* bumped at each change: VMCS02's merges made before it are stale */
	u16 idx[1024];       /* indices of its nonzero words, ascending */
};

/* Recomputes idx after a change of bits. */
void sparse_bitmap_index(struct sparse_bitmap *s);

/* out = l1 | s->bits, over s->nwords words. */
void bitmap_merge(u64 *out, const u64 *l1, const struct sparse_bitmap *s);

/* Does an I/O access of size bytes at port exit to L1 under its controls (SDM 26.1.3)? With "use I/O
 * bitmaps" (a: ports 0-7fff, b: 8000-ffff), if a bit of any port accessed is set, or the access wraps
 * past port 0xffff; else with "unconditional I/O exiting"; else never. */
static inline bool nested_io_exits_to_l1(u32 proc12, const u8 *a, const u8 *b, u32 port, u32 size)
{
	if (proc12 & PROC_USE_IO_BITMAPS) {
		if (port + size - 1 > 0xffff)
			return true; /* wraps around to port 0 */
		for (u32 p = port; p < port + size; p++)
			if (((p < 0x8000 ? a[p / 8] : b[(p - 0x8000) / 8]) >> (p % 8)) & 1)
				return true;
		return false;
	}
	return (proc12 & PROC_UNCOND_IO_EXITING) != 0;
}

/* Does an exception of this vector (and #PF error code) cause a VM exit under this exception bitmap
 * and #PF error-code mask/match (SDM 25.6.3)? */
static inline bool nested_exception_exits(u32 bitmap, u32 pfec_mask, u32 pfec_match, u32 vector, u32 pfec)
{
	if (vector == 14)
		return ((pfec & pfec_mask) == pfec_match) == ((bitmap >> 14) & 1);
	return vector < 32 && ((bitmap >> vector) & 1);
}

/* Does an entry with these VMCS12 values leave L2 blocked by NMI until its next VM exit? With "NMI
 * exiting" and without "virtual NMIs", blocking by NMI (bit 3, or from an injected NMI) lasts as long
 * as the CPU stays in VMX non-root operation: IRET, faulting or not, does not lift it (SDM 27.7.1,
 * 26.6.1 in older editions; 28.1). VMCS02 always uses virtual NMIs, whose blocking IRET does lift. */
static inline bool nested_l2_nmi_blocked_until_exit(u32 pin12, u32 interruptibility12, u32 entry_intr12)
{
	if ((pin12 & (PIN_NMI_EXITING | PIN_VIRTUAL_NMIS)) != PIN_NMI_EXITING)
		return false;
	return (interruptibility12 & INTERRUPTIBILITY_NMI) ||
	       (entry_intr12 & (INTR_INFO_VALID | INTR_TYPE_MASK)) == (INTR_INFO_VALID | INTR_TYPE_NMI);
}

/* APIC virtualization (SDM 29.1, 29.4.3), for writes L0 virtualizes in the CPU's stead. */
/* Is a write of `size` bytes at APIC-access page offset `off` virtualized, the TPR shadow on and these
 * secondary controls (SDM 29.4.3.1)? It must lie within one register's first dword. */
bool apicv_write_virtualized(u32 proc2, u32 off, u32 size);
/* The vector of a VICR_LO value self-IPI virtualization takes (SDM 29.4.3.2: fixed, edge, physical,
 * self shorthand, reserved bits 0, vector >= 16), or 0 if it is an APIC-write exit instead. */
u8 apicv_self_ipi_vector(u32 icr_lo);
/* The highest vector set in the 256-bit register array at page offset `base` (VISR 100H, VIRR 200H:
 * eight dwords 16 bytes apart), 0 if none. */
u8 apicv_highest_vector(const u8 *vapic, u32 base);
/* The event an exit of an L2 with virtual-interrupt delivery interrupted, for L0 to deliver again
 * (SDM 30.2.2: a virtual interrupt V is delivered through the IDT as an external interrupt after
 * VISR, SVI, VPPR, VIRR and RVI were updated, so an exit during its delivery reports external
 * interrupt V, SDM 28.2.4). Bochs 2.7 records no IDT-vectoring information for it and reports the
 * event it recorded last instead (docs/known-bugs.md). idt_info: the IDT-vectoring information of the
 * exit (valid); injected: VMCS02's entry-interruption information at the entry; gis: the guest
 * interrupt status at the exit (SVI in bits 15:8); gla_valid, gla: the guest-linear address of an EPT
 * violation; idt_entry: the linear address of IDT entry SVI (IDTR base + SVI x entry size) and
 * entry_size. Returns external interrupt SVI where idt_info cannot be right: an external interrupt
 * other than the one injected (external interrupts exit under virtual-interrupt delivery, so only an
 * injected or a virtual one is delivered), or another event while the access that faulted was to IDT
 * entry SVI (delivery of another vector reads only its own entry); else idt_info. */
u32 apicv_vectoring_info(u32 idt_info, u32 injected, u16 gis, bool gla_valid, u64 gla, u64 idt_entry,
			 u32 entry_size);
/* PPR virtualization (SDM 29.1.3): VPPR from VTPR and SVI. */
static inline u8 apicv_vppr(u8 vtpr, u8 svi)
{
	return (vtpr >> 4) >= (svi >> 4) ? vtpr : (u8)(svi & 0xf0);
}

#endif
