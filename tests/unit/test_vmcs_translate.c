/* VMCS12 <-> VMCS02 copies (lib/vmcs-translate.c) on two array "VMCSs" indexed by the field table. */
#include <lib/vmcs-translate.h>
#include <x86/vmx.h>
#include <string.h>
#include "unit.h"

static u64 v12[VMCS_FIELD_COUNT], v02[VMCS_FIELD_COUNT];
static bool w02[VMCS_FIELD_COUNT]; /* written by the code under test */
static int bad_access;

static int idx(u32 enc)
{
	int i = vmcs_field_index(enc);
	if (i < 0)
		bad_access++;
	return i < 0 ? 0 : i;
}
static u64 read02(void *ctx, u32 enc) { (void)ctx; return v02[idx(enc)]; }
static void write02(void *ctx, u32 enc, u64 val) { (void)ctx; v02[idx(enc)] = val; w02[idx(enc)] = true; }

/* A processor offering EPT, VPID, the preemption timer, PAT/EFER load/save, XSAVES; no TPR shadow,
 * no IA32_PERF_GLOBAL_CTRL loading. */
static const struct vmcs_feature_caps offered = {
	.pin1 = PIN_PREEMPTION_TIMER | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS,
	.proc1 = PROC_SECONDARY_CONTROLS | PROC_USE_MSR_BITMAPS,
	.proc2_1 = PROC2_EPT | PROC2_VPID | PROC2_XSAVES,
	.exit1 = EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_EFER | EXIT_LOAD_EFER | EXIT_SAVE_PREEMPTION_TIMER |
		 EXIT_SAVE_DEBUG_CONTROLS,
	.entry1 = ENTRY_LOAD_PAT | ENTRY_LOAD_EFER,
};
static u16 guest[VMCS_FIELD_COUNT], exit_info[VMCS_FIELD_COUNT];
static struct vmcs_pair pair = { .slots12 = v12, .read02 = read02, .write02 = write02, .guest = guest,
				  .exit_info = exit_info };

/* Distinct values: field i of VMCS12 holds 0x1200000 + i, of VMCS02 0x0200000 + i; a VMCS12 field
 * still holding its own value was not written. */
static void fill(void)
{
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		v12[i] = 0x1200000 + i;
		v02[i] = 0x0200000 + i;
	}
	memset(w02, 0, sizeof(w02));
	bad_access = 0;
	pair.nguest = vmcs_field_list(&offered, VMCS_CLASS_GUEST, guest);
	pair.nexit_info = vmcs_field_list(&offered, VMCS_CLASS_RO, exit_info);
}

#define I(name) VMCS_IDX_##name
#define UNTOUCHED12(i) (v12[i] == 0x1200000 + (u64)(i))

TEST(vmcs_translate_field_lists)
{
	fill();
	CHECK(pair.nguest > 50);
	for (u32 k = 0; k < pair.nguest; k++) {
		CHECK_EQ(vmcs_fields[guest[k]].cls, VMCS_CLASS_GUEST);
		CHECK(vmcs_field_exists(guest[k], &offered));
		CHECK(guest[k] != I(VMCS_LINK_POINTER));
		CHECK(guest[k] != I(GUEST_PML_INDEX));               /* UNSUPP */
		CHECK(guest[k] != I(GUEST_IA32_PERF_GLOBAL_CTRL));   /* no such field for L1 */
		if (k)
			CHECK(guest[k] > guest[k - 1]);
	}
	/* The exit information: 9 fields (all but the reason, the instruction error and the four only
	 * SMI exits write). */
	CHECK_EQ(pair.nexit_info, 9U);
	struct vmcs_feature_caps no_ept = offered;
	no_ept.proc2_1 &= ~PROC2_EPT;
	CHECK_EQ(vmcs_field_list(&no_ept, VMCS_CLASS_RO, exit_info), 8U); /* no guest-physical address */
}

TEST(vmcs_translate_entry_copies_every_guest_field_l1_has)
{
	fill();
	v12[I(PIN_BASED_CONTROLS)] = PIN_PREEMPTION_TIMER;
	vmcs_guest_12_to_02(&pair);
	CHECK_EQ(bad_access, 0);
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		const struct vmcs_field_info *f = &vmcs_fields[i];
		if (f->cls != VMCS_CLASS_GUEST) {
			CHECK(!w02[i]); /* controls, host state, exit information: not the guest copy's */
			continue;
		}
		if (i == I(VMCS_LINK_POINTER)) {
			CHECK_EQ(v02[i], ~0ULL);
		} else if (f->nested == VMCS_NESTED_UNSUPP || !vmcs_field_exists(i, &offered)) {
			CHECK(!w02[i]);
		} else {
			CHECK_EQ(v02[i], v12[i]);
		}
	}
	/* Spot checks of the rules above. */
	CHECK_EQ(v02[I(GUEST_RIP)], v12[I(GUEST_RIP)]);
	CHECK_EQ(v02[I(GUEST_PREEMPTION_TIMER)], v12[I(GUEST_PREEMPTION_TIMER)]);
	CHECK(!w02[I(GUEST_IA32_PERF_GLOBAL_CTRL)]); /* its load control is not offered: no such field */
	CHECK(!w02[I(GUEST_PML_INDEX)]);
}

TEST(vmcs_translate_entry_preemption_timer_only_when_active)
{
	fill();
	v12[I(PIN_BASED_CONTROLS)] = 0;
	vmcs_guest_12_to_02(&pair);
	CHECK(!w02[I(GUEST_PREEMPTION_TIMER)]);
	CHECK(w02[I(GUEST_CR3)]);
}

TEST(vmcs_translate_exit_saves_what_the_controls_ask)
{
	fill();
	v12[I(EXIT_CONTROLS)] = EXIT_SAVE_EFER | EXIT_SAVE_DEBUG_CONTROLS;
	v12[I(ENTRY_CONTROLS)] = ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_EFER;
	v02[I(GUEST_IA32_EFER)] = 0x100; /* LME without LMA: L2 left IA-32e mode */
	vmcs_guest_02_to_12(&pair);
	CHECK_EQ(bad_access, 0);
	CHECK_EQ(v12[I(GUEST_RIP)], v02[I(GUEST_RIP)]);
	CHECK_EQ(v12[I(GUEST_ES_ACCESS_RIGHTS)], v02[I(GUEST_ES_ACCESS_RIGHTS)]);
	CHECK_EQ(v12[I(GUEST_IA32_EFER)], 0x100ULL);
	CHECK_EQ(v12[I(GUEST_DR7)], v02[I(GUEST_DR7)]);
	CHECK_EQ(v12[I(GUEST_IA32_DEBUGCTL)], v02[I(GUEST_IA32_DEBUGCTL)]);
	CHECK(UNTOUCHED12(I(GUEST_IA32_PAT)));
	CHECK(UNTOUCHED12(I(GUEST_PREEMPTION_TIMER)));
	CHECK(UNTOUCHED12(I(VMCS_LINK_POINTER)));
	CHECK(UNTOUCHED12(I(GUEST_IA32_PERF_GLOBAL_CTRL)));
	CHECK_EQ(v12[I(ENTRY_CONTROLS)], (u64)ENTRY_LOAD_EFER); /* IA-32e mode guest follows EFER.LMA */
	/* No control, host-state or read-only field is touched but the entry controls. */
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		if (vmcs_fields[i].cls != VMCS_CLASS_GUEST && i != I(ENTRY_CONTROLS) && i != I(EXIT_CONTROLS))
			CHECK(UNTOUCHED12(i));

	fill();
	v12[I(EXIT_CONTROLS)] = EXIT_SAVE_PAT | EXIT_SAVE_PREEMPTION_TIMER;
	v12[I(ENTRY_CONTROLS)] = 0;
	v02[I(GUEST_IA32_EFER)] = 0x500; /* LME and LMA */
	vmcs_guest_02_to_12(&pair);
	CHECK(UNTOUCHED12(I(GUEST_DR7)));
	CHECK(UNTOUCHED12(I(GUEST_IA32_DEBUGCTL)));
	CHECK(UNTOUCHED12(I(GUEST_IA32_EFER)));
	CHECK_EQ(v12[I(GUEST_IA32_PAT)], v02[I(GUEST_IA32_PAT)]);
	CHECK_EQ(v12[I(GUEST_PREEMPTION_TIMER)], v02[I(GUEST_PREEMPTION_TIMER)]);
	CHECK_EQ(v12[I(ENTRY_CONTROLS)], (u64)ENTRY_IA32E_MODE_GUEST);
}

static int list_reads;
static void read02_list(void *ctx, const u16 *list, u32 n, u64 *slots12)
{
	(void)ctx;
	list_reads++;
	for (u32 k = 0; k < n; k++)
		slots12[list[k]] = v02[list[k]];
}

/* The test pair saving the guest fields in list with one read02_list call (the run-time form). */
static struct vmcs_pair pair_saving(const u16 *list, u32 n)
{
	struct vmcs_pair p = pair;

	p.read02_list = read02_list;
	p.guest_saved = list;
	p.nguest_saved = n;
	return p;
}

/* The run-time form (one list of the fields every exit saves, read in one call) saves what the
 * field-by-field filter saves, for every combination of the four save controls. */
TEST(vmcs_translate_exit_saved_list_same_as_filter)
{
	static u16 saved[VMCS_FIELD_COUNT];
	static u64 want[VMCS_FIELD_COUNT];
	static const u32 ctl[] = { EXIT_SAVE_DEBUG_CONTROLS, EXIT_SAVE_EFER, EXIT_SAVE_PAT, EXIT_SAVE_PREEMPTION_TIMER };

	fill();
	u32 nsaved = vmcs_guest_saved_list(guest, pair.nguest, saved);
	CHECK_EQ(nsaved, pair.nguest - 5); /* DEBUGCTL, DR7, EFER, PAT, the preemption timer */
	for (u32 k = 0; k < nsaved; k++)
		CHECK(saved[k] != I(GUEST_DR7) && saved[k] != I(GUEST_IA32_PAT) && saved[k] != I(GUEST_IA32_EFER) &&
		      saved[k] != I(GUEST_IA32_DEBUGCTL) && saved[k] != I(GUEST_PREEMPTION_TIMER));
	for (u32 m = 0; m < 16; m++) {
		u32 exit12 = 0;
		for (u32 b = 0; b < 4; b++)
			if (m & (1U << b))
				exit12 |= ctl[b];
		fill();
		v12[I(EXIT_CONTROLS)] = exit12;
		vmcs_guest_02_to_12(&pair);
		memcpy(want, v12, sizeof(want));
		fill();
		v12[I(EXIT_CONTROLS)] = exit12;
		struct vmcs_pair fast = pair_saving(saved, nsaved);
		list_reads = 0;
		vmcs_guest_02_to_12(&fast);
		CHECK_EQ(list_reads, 1);
		CHECK_EQ(bad_access, 0);
		CHECK(!memcmp(want, v12, sizeof(want)));
	}
}

/* The lazy form (nested/exit.c): the shadowed fields at the exit, the rest read later from the same
 * VMCS02, saves what the full list saves; every shadowed guest field is in the hot part. */
TEST(vmcs_translate_exit_hot_then_rare_same_as_saved)
{
	static u16 saved[VMCS_FIELD_COUNT], hot[VMCS_FIELD_COUNT], rare[VMCS_FIELD_COUNT];
	static u64 want[VMCS_FIELD_COUNT];
	u32 nrare;

	fill();
	u32 nsaved = vmcs_guest_saved_list(guest, pair.nguest, saved);
	u32 nhot = vmcs_guest_split_list(saved, nsaved, hot, rare, &nrare);
	CHECK_EQ(nhot + nrare, nsaved);
	CHECK(nrare > 20); /* segments, descriptor tables, SYSENTER MSRs...: most of them */
	for (u32 k = 0; k < nhot; k++)
		CHECK(vmcs_field_shadowed(hot[k], false));
	for (u32 k = 0; k < nrare; k++)
		CHECK(!vmcs_field_shadowed(rare[k], false));
	v12[I(EXIT_CONTROLS)] = EXIT_SAVE_EFER;
	struct vmcs_pair full = pair_saving(saved, nsaved);
	vmcs_guest_02_to_12(&full);
	memcpy(want, v12, sizeof(want));
	fill();
	v12[I(EXIT_CONTROLS)] = EXIT_SAVE_EFER;
	struct vmcs_pair lazy = pair_saving(hot, nhot);
	vmcs_guest_02_to_12(&lazy);
	CHECK(memcmp(want, v12, sizeof(want)) != 0); /* the rare fields are not there yet */
	read02_list(NULL, rare, nrare, v12);
	CHECK(!memcmp(want, v12, sizeof(want)));
}

static u64 read02_enc(u32 enc)
{
	return v02[idx(enc)];
}

/* The unrolled save of a reflected exit (vmcs_exit_02_to_12_hot, runtime/nested/entry.c) writes what
 * the list form with the hot guest fields and the exit information writes, for every combination of
 * the four save controls, with EFER.LMA set and clear and L0-owned CR bits. */
TEST(vmcs_translate_exit_unrolled_same_as_lists)
{
	static u16 saved[VMCS_FIELD_COUNT], hot[VMCS_FIELD_COUNT], rare[VMCS_FIELD_COUNT];
	static u64 want[VMCS_FIELD_COUNT];
	static const u32 ctl[] = { EXIT_SAVE_DEBUG_CONTROLS, EXIT_SAVE_EFER, EXIT_SAVE_PAT, EXIT_SAVE_PREEMPTION_TIMER };
	u64 set[VMCS_FIELD_SET_WORDS];
	u32 nrare;

	fill();
	u32 nsaved = vmcs_guest_saved_list(guest, pair.nguest, saved);
	u32 nhot = vmcs_guest_split_list(saved, nsaved, hot, rare, &nrare);
	vmcs_hot_guest_set(set);
	CHECK(vmcs_list_is_set(hot, nhot, set)); /* the case the unrolled form is for */
	vmcs_exit_info_set(set);
	CHECK(vmcs_list_is_set(exit_info, pair.nexit_info, set));
	for (u32 m = 0; m < 32; m++) {
		u32 exit12 = 0;
		for (u32 b = 0; b < 4; b++)
			if (m & (1U << b))
				exit12 |= ctl[b];
		for (int run = 0; run < 2; run++) {
			fill();
			v12[I(EXIT_CONTROLS)] = exit12;
			v12[I(ENTRY_INTR_INFO)] = INTR_INFO_VALID | 0x30e;
			v12[I(CR0_GUEST_HOST_MASK)] = 0x8;
			v02[I(CR0_GUEST_HOST_MASK)] = 0x28;
			v02[I(CR4_GUEST_HOST_MASK)] = 0x2000;
			v02[I(GUEST_IA32_EFER)] = (m & 16) ? 0x500 : 0x100;
			if (run == 0) {
				struct vmcs_pair p = pair_saving(hot, nhot);
				vmcs_guest_02_to_12(&p);
				vmcs_exit_info_02_to_12(&p, 30);
				memcpy(want, v12, sizeof(want));
			} else {
				vmcs_exit_02_to_12_hot(v12, 30, read02_enc);
				CHECK_EQ(bad_access, 0);
				CHECK(!memcmp(want, v12, sizeof(want)));
			}
		}
	}
}

TEST(vmcs_translate_exit_cr0_cr4_bits_l0_owns_come_from_the_shadow)
{
	fill();
	v12[I(EXIT_CONTROLS)] = 0;
	v02[I(CR0_GUEST_HOST_MASK)] = 0x20 | 0x8; /* L0 owns NE, L1 owns TS */
	v12[I(CR0_GUEST_HOST_MASK)] = 0x8;
	v02[I(GUEST_CR0)] = 0x80000039;           /* NE forced to 1 by L0 */
	v02[I(CR0_READ_SHADOW)] = 0x08;           /* L2's NE is 0 */
	v02[I(CR4_GUEST_HOST_MASK)] = 0x2000;     /* L0 owns VMXE */
	v12[I(CR4_GUEST_HOST_MASK)] = 0;
	v02[I(GUEST_CR4)] = 0x2020;
	v02[I(CR4_READ_SHADOW)] = 0;
	vmcs_guest_02_to_12(&pair);
	CHECK_EQ(v12[I(GUEST_CR0)], 0x80000019ULL);
	CHECK_EQ(v12[I(GUEST_CR4)], 0x20ULL);
}

TEST(vmcs_translate_exit_information)
{
	fill();
	v12[I(ENTRY_INTR_INFO)] = INTR_INFO_VALID | 0x30e;
	vmcs_exit_info_02_to_12(&pair, 48);
	CHECK_EQ(bad_access, 0);
	CHECK_EQ(v12[I(EXIT_REASON)], 48ULL);
	CHECK_EQ(v12[I(ENTRY_INTR_INFO)], 0x30eULL);
	CHECK(UNTOUCHED12(I(VM_INSTRUCTION_ERROR)));
	static const u32 copied[] = { VMCS_EXIT_QUALIFICATION, VMCS_GUEST_LINEAR_ADDRESS, VMCS_GUEST_PHYSICAL_ADDRESS,
				      VMCS_EXIT_INTR_INFO, VMCS_EXIT_INTR_ERROR_CODE, VMCS_IDT_VECTORING_INFO,
				      VMCS_IDT_VECTORING_ERROR_CODE, VMCS_EXIT_INSTRUCTION_LENGTH,
				      VMCS_EXIT_INSTRUCTION_INFO };
	for (u32 k = 0; k < sizeof(copied) / sizeof(copied[0]); k++)
		CHECK_EQ(v12[vmcs_field_index(copied[k])], v02[vmcs_field_index(copied[k])]);
	/* Only SMI exits write I/O RCX..RIP: L1's values stay. */
	static const u32 smi_only[] = { VMCS_IO_RCX, VMCS_IO_RSI, VMCS_IO_RDI, VMCS_IO_RIP };
	for (u32 k = 0; k < sizeof(smi_only) / sizeof(smi_only[0]); k++)
		CHECK(UNTOUCHED12(vmcs_field_index(smi_only[k])));
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		if (vmcs_fields[i].cls == VMCS_CLASS_GUEST || vmcs_fields[i].cls == VMCS_CLASS_HOST)
			CHECK(UNTOUCHED12(i));
}

TEST(vmcs_translate_resume_copy_only_plain_fields)
{
	CHECK(vmcs_field_resume_copy(I(GUEST_RIP)));
	CHECK(vmcs_field_resume_copy(I(ENTRY_INTR_INFO)));
	CHECK(!vmcs_field_resume_copy(I(GUEST_CR0)));          /* masks and shadows derive from it */
	CHECK(!vmcs_field_resume_copy(I(PROC_BASED_CONTROLS))); /* merged with L0's */
	CHECK(!vmcs_field_resume_copy(I(EPT_POINTER)));         /* EPT02 */
	CHECK(!vmcs_field_resume_copy(I(VPID)));                /* VPID02 */
	CHECK(!vmcs_field_resume_copy(I(HOST_RIP)));
	CHECK(!vmcs_field_resume_copy(I(EXIT_QUALIFICATION)));
	CHECK(!vmcs_field_resume_copy(VMCS_FIELD_COUNT));
}

TEST(vmcs_fields_exist_per_features)
{
	struct vmcs_feature_caps none = { 0 };
	CHECK(vmcs_field_exists(I(GUEST_RIP), &none));
	CHECK(!vmcs_field_exists(I(EPT_POINTER), &none));
	CHECK(!vmcs_field_exists(I(VPID), &none));
	CHECK(!vmcs_field_exists(I(GUEST_IA32_EFER), &none));
	CHECK(vmcs_field_exists(I(EPT_POINTER), &offered));
	CHECK(vmcs_field_exists(I(GUEST_PDPTE3), &offered));
	CHECK(vmcs_field_exists(I(VPID), &offered));
	CHECK(vmcs_field_exists(I(GUEST_IA32_PAT), &offered));
	CHECK(vmcs_field_exists(I(XSS_EXIT_BITMAP), &offered));
	CHECK(!vmcs_field_exists(I(VIRTUAL_APIC_ADDR), &offered));
	CHECK(!vmcs_field_exists(I(HOST_IA32_PERF_GLOBAL_CTRL), &offered));
	CHECK(!vmcs_field_exists(I(VMREAD_BITMAP), &offered));
	CHECK(!vmcs_field_exists(I(PLE_GAP), &offered));
	CHECK(!vmcs_field_exists(I(TSC_MULTIPLIER), &offered));
	/* VMCS shadowing, PAUSE-loop exiting, TSC scaling bring their fields (SDM Appendix B). */
	struct vmcs_feature_caps more = offered;
	more.proc2_1 |= PROC2_VMCS_SHADOWING | PROC2_PAUSE_LOOP_EXITING | PROC2_TSC_SCALING;
	CHECK(vmcs_field_exists(I(VMREAD_BITMAP), &more));
	CHECK(vmcs_field_exists(I(VMWRITE_BITMAP), &more));
	CHECK(vmcs_field_exists(I(PLE_GAP), &more));
	CHECK(vmcs_field_exists(I(PLE_WINDOW), &more));
	CHECK(vmcs_field_exists(I(TSC_MULTIPLIER), &more));
	/* Secondary controls count only when the primary controls can activate them. */
	struct vmcs_feature_caps no_secondary = offered;
	no_secondary.proc1 &= ~PROC_SECONDARY_CONTROLS;
	CHECK(!vmcs_field_exists(I(EPT_POINTER), &no_secondary));
	CHECK(!vmcs_field_exists(VMCS_FIELD_COUNT, &offered));
}

TEST(vmcs_shadow_policy)
{
	CHECK(vmcs_field_shadowed(I(GUEST_RIP), false));
	CHECK(vmcs_field_shadowed(I(GUEST_RIP), true));
	CHECK(vmcs_field_shadowed(I(EXIT_QUALIFICATION), false));
	CHECK(!vmcs_field_shadowed(I(EXIT_QUALIFICATION), true)); /* VMWRITE must fail with error 13 */
	CHECK(vmcs_field_shadowed(I(ENTRY_INTR_INFO), true));
	CHECK(vmcs_field_shadowed(I(PROC_BASED_CONTROLS), true));
	CHECK(!vmcs_field_shadowed(I(VMCS_LINK_POINTER), false));
	CHECK(!vmcs_field_shadowed(I(EPT_POINTER), false));
	CHECK(!vmcs_field_shadowed(I(HOST_RIP), true));
	CHECK(vmcs_field_shadowed(I(HOST_RSP), true));
	CHECK(!vmcs_field_shadowed(I(GUEST_PML_INDEX), false));
	CHECK(!vmcs_field_shadowed(I(GUEST_LDTR_BASE), false)); /* cold: exits */
	CHECK(!vmcs_field_shadowed(VMCS_FIELD_COUNT, false));
	/* Every field shadowed for VMWRITE is shadowed for VMREAD too. */
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++)
		if (vmcs_field_shadowed(i, true))
			CHECK(vmcs_field_shadowed(i, false));
}

TEST(vmcs_shadow_bitmap_bits)
{
	u8 bm[4096];
	memset(bm, 0xff, sizeof(bm));
	vmcs_shadow_bitmap_allow(bm, VMCS_GUEST_RIP);       /* 0x681e: natural width, one bit */
	CHECK_EQ(bm[0x681e / 8], (u8)~(1U << (0x681e % 8)));
	CHECK_EQ(bm[0x681f / 8], bm[0x681e / 8]);           /* same byte: 0x681f's bit untouched */
	vmcs_shadow_bitmap_allow(bm, VMCS_GUEST_IA32_EFER); /* 0x2806: 64-bit, both halves */
	CHECK_EQ(bm[0x2806 / 8] & (1U << (0x2806 % 8)), 0U);
	CHECK_EQ(bm[0x2807 / 8] & (1U << (0x2807 % 8)), 0U);
	CHECK_EQ(bm[0x2808 / 8] & (1U << (0x2808 % 8)), 1U << (0x2808 % 8));
	vmcs_shadow_bitmap_allow(bm, VMCS_GUEST_ES_SELECTOR); /* 0x0800: 16-bit */
	CHECK_EQ(bm[0x0800 / 8], 0xfe);
	u32 cleared = 0;
	for (u32 i = 0; i < sizeof(bm) * 8; i++)
		cleared += !(bm[i / 8] & (1U << (i % 8)));
	CHECK_EQ(cleared, 4U);
}

/* The named lists the unrolled copies use (runtime/nested/shadow.c, entry.c) are the tables' lists for
 * an L1 offered EPT: the hot guest fields the split gives, the exit information vmcs_field_list gives,
 * the writable shadowed fields, and the read-only ones (every exit-information field, the exit
 * reason, the VM-instruction error). A field added to the table or to the shadowed set fails here
 * first (at run time the copies would fall back to the table loops). */
TEST(vmcs_translate_named_lists_are_the_tables)
{
	static u16 saved[VMCS_FIELD_COUNT], hot[VMCS_FIELD_COUNT], rare[VMCS_FIELD_COUNT];
	static u16 writable[VMCS_FIELD_COUNT], readonly[VMCS_FIELD_COUNT];
	u64 want[VMCS_FIELD_SET_WORDS];
	u32 nrare, nwritable = 0, nreadonly = 0;

	fill();
	u32 nsaved = vmcs_guest_saved_list(guest, pair.nguest, saved);
	u32 nhot = vmcs_guest_split_list(saved, nsaved, hot, rare, &nrare);
	vmcs_hot_guest_set(want);
	CHECK(vmcs_list_is_set(hot, nhot, want));
	CHECK_EQ(nhot, 13U);
	vmcs_exit_info_set(want);
	CHECK(vmcs_list_is_set(exit_info, pair.nexit_info, want));
	CHECK_EQ(pair.nexit_info, 9U);
	for (u32 i = 0; i < VMCS_FIELD_COUNT; i++) {
		if (vmcs_field_shadowed(i, true))
			writable[nwritable++] = (u16)i;
		else if (vmcs_field_shadowed(i, false))
			readonly[nreadonly++] = (u16)i;
	}
	vmcs_shadow_writable_set(want);
	CHECK(vmcs_list_is_set(writable, nwritable, want));
	vmcs_shadow_readonly_set(want);
	CHECK(vmcs_list_is_set(readonly, nreadonly, want));
	/* The set test itself: a missing field, an extra one and a duplicate all fail. */
	CHECK(!vmcs_list_is_set(readonly, nreadonly - 1, want));
	readonly[nreadonly] = writable[0];
	CHECK(!vmcs_list_is_set(readonly, nreadonly + 1, want));
	readonly[nreadonly] = readonly[0];
	CHECK(!vmcs_list_is_set(readonly, nreadonly + 1, want));
}
