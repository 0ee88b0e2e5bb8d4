/* Guest instruction bytes and guest page walks: the ModR/M length (for lib/mmio-store.c, which
 * emulates every store to a trapped MMIO page) and linear-to-physical walks of each paging mode. Pure
 * logic, unit-tested on the host. */
#ifndef LIB_INSN_H
#define LIB_INSN_H
#include <xmhf/types.h>

/* Bytes of the ModR/M byte at bytes[0], its SIB and displacement, for an address size of addr_bits
 * (16, 32 or 64; SDM Vol. 2, Tables 2-1 to 2-3, 2.2.1.6), or -1 if the ModR/M or SIB byte is missing. */
int insn_modrm_length(const u8 *bytes, u32 avail, u32 addr_bits);

/* Guest linear-to-physical translation by walking the guest's page tables (SDM Vol. 3, 4.3-4.5).
 * read_phys reads 8 bytes at a guest-physical address (returns false if unreadable). */
enum guest_paging { GUEST_PAGING_NONE, GUEST_PAGING_32, GUEST_PAGING_PAE, GUEST_PAGING_4LEVEL };

typedef bool (*read_phys_fn)(void *ctx, u64 gpa, u64 *value);

/* pdpte: the four PAE PDPTEs (from the VMCS) for GUEST_PAGING_PAE. cr4_pse: CR4.PSE for 32-bit
 * paging. Returns 0 and sets *gpa, or -1 if not present (no permission checks: the CPU already made
 * the access that exited). */
int guest_linear_to_phys(enum guest_paging mode, u64 cr3, const u64 pdpte[4], bool cr4_pse, u64 linear,
			 read_phys_fn read_phys, void *ctx, u64 *gpa);

/* The same, also giving what guest_linear_walk found on the way: in rights what every
 * paging-structure entry allows, writes (GUEST_PAGE_WRITE: R/W set in all) and user-mode accesses
 * (GUEST_PAGE_USER: U/S set in all), for the caller's access-rights checks (SDM 4.6); both without
 * paging. entry[] holds the guest-physical addresses of the entries used, the leaf last (PAE PDPTEs
 * are not among them: the CPU sets no accessed flag in them), for the accessed and dirty flags
 * (SDM 4.8); they are 4 bytes wide in 32-bit paging, else 8. */
#define GUEST_PAGE_WRITE 1u
#define GUEST_PAGE_USER 2u
struct guest_walk {
	u32 rights;
	u32 nentries;
	u32 entry_bytes;
	u64 entry[4];
};
int guest_linear_walk(enum guest_paging mode, u64 cr3, const u64 pdpte[4], bool cr4_pse, u64 linear,
		      read_phys_fn read_phys, void *ctx, u64 *gpa, struct guest_walk *w);

#endif
