/* Emulating one guest store to a trapped MMIO page (the xAPIC page): decoding the instruction that
 * faulted, computing the value it stores and its effects on registers and RFLAGS. Pure logic on plain
 * structs, unit-tested on the host; the runtime performs the store (lapic-trap.c). The address is not
 * computed: the EPT violation gives the guest-physical address the CPU was writing. */
#ifndef LIB_MMIO_STORE_H
#define LIB_MMIO_STORE_H
#include <xmhf/types.h>
#include <x86/cpu.h> /* RFLAGS_* */

/* The guest state the emulation reads and changes. gpr in SDM order: RAX RCX RDX RBX RSP RBP RSI RDI
 * R8-R15. */
struct mmio_cpu {
	u32 cs_bits; /* default operand and address size of the code segment: 16, 32 or 64 */
	u64 gpr[16];
	u64 rflags;
};

/* Reads the old value of the size bytes at the faulting address (read-modify-write forms, XCHG). */
typedef u64 (*mmio_read_fn)(void *ctx, u32 size);

struct mmio_store {
	u32 length; /* bytes to advance RIP; 0 for a REP STOS with iterations left (re-executed) */
	u32 size;   /* bytes the store writes: 1, 2, 4 or 8 */
	bool write; /* false: no store (a REP STOS with a zero count) */
	u64 value;  /* what is written (the low size bytes) */
	u8 opcode;  /* for messages: the opcode byte (after 0F for two-byte opcodes) */
	bool two_byte;
};

/* Emulates the store at bytes[0..avail). Returns 0 with *out filled and cpu's registers and flags
 * updated as the instruction leaves them (read is called at most once), or -1 if the bytes are not a
 * store form this emulator knows (or are truncated): then cpu is unchanged and read not called.
 *
 * Forms: MOV 88/89, A2/A3 (moffs), C6/C7 /0; XCHG 86/87; STOS AA/AB with or without REP (one
 * iteration per call, SDM Vol. 2 "REP": an interrupted REP resumes at the same instruction); the
 * read-modify-write ALU forms 00-31 (r/m, reg), 80/81/83 (82 outside 64-bit mode) /0-/6, FE/FF /0 /1,
 * F6/F7 /2 /3, 0F AB/B3/BB and 0F BA /5-/7, with LOCK; MOVNTI 0F C3. Memory operands only. */
int mmio_store_emulate(const u8 *bytes, u32 avail, struct mmio_cpu *cpu, mmio_read_fn read, void *ctx,
		       struct mmio_store *out);

/* The ALU operations of the read-modify-write forms, in the order of the 80-83 /reg field. */
enum mmio_alu {
	ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR,
	ALU_INC, ALU_DEC, ALU_NOT, ALU_NEG, ALU_BTS, ALU_BTR, ALU_BTC,
};


/* dst op src on size bytes: returns the result and sets *rflags as the instruction does (SDM Vol. 2,
 * each instruction's "Flags Affected"; flags the SDM leaves undefined are left as they were, except
 * AF after AND/OR/XOR, which is cleared as Bochs 2.7 does). */
u64 mmio_alu(enum mmio_alu op, u32 size, u64 dst, u64 src, u64 *rflags);

#endif
