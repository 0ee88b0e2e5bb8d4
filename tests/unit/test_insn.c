/* Guest instruction decoding (lib/mmio-store.c, lib/insn.c) and guest page walks (lib/insn.c).
 *
 * The MOV/XCHG store decoding tables (first half) against the SDM Vol. 2, 2.1-2.2 (prefixes, REX,
 * ModR/M, SIB, displacement, immediate; Tables 2-1/2-2/2-3 for 16- and 32-bit addressing, 2.2.1.6 for
 * RIP-relative), run through mmio_store_emulate. The
 * encodings below were produced by GNU as (--64, --32, .code16) and their lengths checked with
 * objdump; those marked "by hand" have no assembler spelling and were worked out from the tables.
 * Each instruction is also decoded from every truncated prefix of itself (must fail, and must not
 * read past avail: the buffers are exact-size heap blocks under ASan) and with trailing bytes.
 *
 * mmio_store_emulate (lib/mmio-store.c, the xAPIC store emulation of issue 14) against a table of
 * encodings: every row with an assembler spelling was produced by GNU as and its length by objdump -d
 * (tests/unit/check-encodings.py re-assembles each row on every `make -C tests/unit run` and fails on
 * any difference); the rows were printed by tests/unit/gen-mmio-store-table.py, whose expected values
 * come from an independent model in Python of the register file store_cpu() sets up; a few rows at
 * the end were worked out by hand. mmio_alu's flags are checked against the host CPU running the
 * same instruction.
 *
 * guest_linear_to_phys against the SDM Vol. 3, 4.3 (32-bit paging, PSE-36), 4.4 (PAE) and 4.5
 * (4-level), with page tables built in a buffer standing for guest-physical memory. */
#include <stdlib.h>
#include <lib/insn.h>
#include <lib/mmio-store.h>
#include "unit.h"

/* The store forms of the decoding tables below (kinds of row). */
enum { MOV = 1, IMM, XCHG };

struct dcase {
	u32 bits;
	const char *bytes;
	u32 len; /* = number of bytes */
	int kind;
	u32 size, reg;
	bool mem;
	u64 imm;
	const char *what;
};

/* The register file every case starts from: distinct bytes, so AL (0x80) AH (0x90) CL (0x81) ... */
static void store_cpu(struct mmio_cpu *c, u32 bits)
{
	c->cs_bits = bits;
	for (u32 r = 0; r < 16; r++)
		c->gpr[r] = 0xf0e0d0c0b0a09080ULL + r * 0x0101010101010101ULL;
	c->rflags = 0x3; /* CF set: ADC and SBB add and subtract it */
}

#define OLD_VALUE 0x0123456789abcdefULL

struct reads {
	u32 calls, size;
};

static u64 read_old(void *ctx, u32 size)
{
	struct reads *r = ctx;

	r->calls++;
	r->size = size;
	return size == 8 ? OLD_VALUE : OLD_VALUE & ((1ULL << (8 * size)) - 1);
}

static int emulate_exact(const char *bytes, u32 avail, struct mmio_cpu *c, struct reads *r, struct mmio_store *st)
{
	u8 *buf = malloc(avail ? avail : 1);
	int ret;

	memcpy(buf, bytes, avail);
	ret = mmio_store_emulate(buf, avail, c, read_old, r, st);
	free(buf);
	return ret;
}

/* A decoding row through mmio_store_emulate: length, operand size and the value stored (the source
 * register, or the immediate); register forms are refused (memory operands only); the same with
 * trailing bytes; truncated anywhere, refused (exact-size heap buffers under ASan). */
static void check_cases(const struct dcase *cases, u32 n)
{
	for (u32 k = 0; k < n; k++) {
		const struct dcase *c = &cases[k];
		struct mmio_cpu cpu;
		struct mmio_store st;
		struct reads r = { 0, 0 };
		u64 mask = c->size == 8 ? ~0ULL : (1ULL << (8 * c->size)) - 1, want;
		u8 padded[32];
		bool ok = true;

		store_cpu(&cpu, c->bits);
		want = c->kind == IMM ? c->imm : cpu.gpr[c->reg];
		if (!c->mem) {
			ok &= CHECK_EQ(emulate_exact(c->bytes, c->len, &cpu, &r, &st), -1);
		} else {
			ok &= CHECK_EQ(emulate_exact(c->bytes, c->len, &cpu, &r, &st), 0);
			ok &= CHECK_EQ(st.length, c->len);
			ok &= CHECK_EQ(st.size, c->size);
			ok &= CHECK_EQ(st.value & mask, want & mask);

			store_cpu(&cpu, c->bits);
			memset(padded, 0xcc, sizeof(padded));
			memcpy(padded, c->bytes, c->len);
			ok &= CHECK_EQ(mmio_store_emulate(padded, sizeof(padded), &cpu, read_old, &r, &st), 0);
			ok &= CHECK_EQ(st.length, c->len);
			ok &= CHECK_EQ(st.value & mask, want & mask);
		}
		for (u32 a = 0; a < c->len; a++) {
			store_cpu(&cpu, c->bits);
			if (!CHECK_EQ(emulate_exact(c->bytes, a, &cpu, &r, &st), -1)) {
				unit_fail(__FILE__, __LINE__, "  with avail %u", a);
				ok = false;
				break;
			}
		}
		if (!ok)
			unit_fail(__FILE__, __LINE__, "  in case %u-bit \"%s\"", c->bits, c->what);
	}
}

/* ------------------------------------------------------------------------------------------------ */

TEST(insn_mov_store_64bit_addressing_forms)
{
	static const struct dcase cases[] = {
		{ 64, "\x89\x10", 2, MOV, 4, 2, true, 0, "mov [rax],edx" },
		{ 64, "\x89\x53\x10", 3, MOV, 4, 2, true, 0, "mov [rbx+0x10],edx (disp8)" },
		{ 64, "\x89\x55\x80", 3, MOV, 4, 2, true, 0, "mov [rbp-0x80],edx" },
		{ 64, "\x89\x55\x00", 3, MOV, 4, 2, true, 0, "mov [rbp+0],edx (mod=1 rm=5)" },
		{ 64, "\x89\x93\x78\x56\x34\x12", 6, MOV, 4, 2, true, 0, "mov [rbx+0x12345678],edx (disp32)" },
		{ 64, "\x89\x14\x24", 3, MOV, 4, 2, true, 0, "mov [rsp],edx (SIB)" },
		{ 64, "\x89\x54\x24\x08", 4, MOV, 4, 2, true, 0, "mov [rsp+8],edx (SIB disp8)" },
		{ 64, "\x89\x14\x88", 3, MOV, 4, 2, true, 0, "mov [rax+rcx*4],edx" },
		{ 64, "\x89\x54\xc8\x10", 4, MOV, 4, 2, true, 0, "mov [rax+rcx*8+0x10],edx" },
		{ 64, "\x89\x94\x48\x00\x10\x00\x00", 7, MOV, 4, 2, true, 0, "mov [rax+rcx*2+0x1000],edx" },
		{ 64, "\x89\x14\x0d\x00\x03\x00\xee", 7, MOV, 4, 2, true, 0,
		  "mov [rcx*1+disp32],edx (SIB base=5 mod=0)" },
		{ 64, "\x89\x14\x25\x00\x03\xe0\xfe", 7, MOV, 4, 2, true, 0,
		  "mov [0xfffffffffee00300],edx (SIB no base no index)" },
		{ 64, "\x89\x15\x00\x01\x00\x00", 6, MOV, 4, 2, true, 0, "mov [rip+0x100],edx" },
		{ 64, "\x89\x54\xb5\x00", 4, MOV, 4, 2, true, 0, "mov [rbp+rsi*4+0],edx (SIB base=5 mod=1)" },
		{ 64, "\x89\x94\xb5\x00\x01\x00\x00", 7, MOV, 4, 2, true, 0,
		  "mov [rbp+rsi*4+0x100],edx (SIB base=5 mod=2)" },
		/* REX.B does not change the special cases (SDM Table 2-5): r13 as base with mod=0 is
		 * still disp32, rm=101 with mod=0 still RIP-relative; REX.X makes index 100 r12. */
		{ 64, "\x41\x89\x55\x00", 4, MOV, 4, 2, true, 0, "mov [r13+0],edx" },
		{ 64, "\x43\x89\x14\x2c", 4, MOV, 4, 2, true, 0, "mov [r12+r13],edx" },
		{ 64, "\x41\x89\x14\x25\x00\x03\xe0\xfe", 8, MOV, 4, 2, true, 0,
		  "REX.B SIB base=5 mod=0: disp32 (by hand)" },
		{ 64, "\x41\x89\x15\x00\x01\x00\x00", 7, MOV, 4, 2, true, 0, "REX.B rm=5 mod=0: RIP (by hand)" },
		{ 64, "\x42\x89\x14\x25\x00\x03\xe0\xfe", 8, MOV, 4, 2, true, 0,
		  "mov [r12*1+disp32],edx (by hand)" },
		/* Register operand. */
		{ 64, "\x89\xd1", 2, MOV, 4, 2, false, 0, "mov ecx,edx" },
		{ 64, "\x4c\x89\xc0", 3, MOV, 8, 8, false, 0, "mov rax,r8 (by hand)" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

TEST(insn_mov_store_64bit_registers_and_prefixes)
{
	static const struct dcase cases[] = {
		/* REX.R extends the source register. */
		{ 64, "\x44\x89\x08", 3, MOV, 4, 9, true, 0, "mov [rax],r9d" },
		{ 64, "\x45\x89\x3c\x24", 4, MOV, 4, 15, true, 0, "mov [r12],r15d" },
		{ 64, "\x4d\x89\x85\x00\x03\x00\x00", 7, MOV, 8, 8, true, 0, "mov [r13+0x300],r8" },
		{ 64, "\x41\x89\x10", 3, MOV, 4, 2, true, 0, "mov [r8],edx: REX.B is not the register" },
		{ 64, "\x42\x89\x14\x88", 4, MOV, 4, 2, true, 0, "mov [rax+r9*4],edx: nor is REX.X" },
		{ 64, "\x40\x89\x10", 3, MOV, 4, 2, true, 0, "mov [rax],edx with an empty REX" },
		/* Operand size. */
		{ 64, "\x48\x89\x10", 3, MOV, 8, 2, true, 0, "mov [rax],rdx" },
		{ 64, "\x66\x89\x10", 3, MOV, 2, 2, true, 0, "mov [rax],dx" },
		{ 64, "\x66\x48\x89\x10", 4, MOV, 8, 2, true, 0, "66 REX.W: REX.W wins (by hand)" },
		{ 64, "\x66\x44\x89\x08", 4, MOV, 2, 9, true, 0, "mov [rax],r9w (by hand)" },
		/* Address size and segments: no effect on size or register. */
		{ 64, "\x64\x89\x10", 3, MOV, 4, 2, true, 0, "mov fs:[rax],edx" },
		{ 64, "\x65\x89\x15\x00\x03\x00\x00", 7, MOV, 4, 2, true, 0, "mov gs:[rip+0x300],edx" },
		{ 64, "\x67\x89\x10", 3, MOV, 4, 2, true, 0, "mov [eax],edx" },
		{ 64, "\x67\x89\x15\x00\x01\x00\x00", 7, MOV, 4, 2, true, 0, "mov [eip+0x100],edx" },
		{ 64, "\x67\x89\x14\x25\x00\x03\xe0\xfe", 8, MOV, 4, 2, true, 0, "mov [0xfee00300],edx (addr32)" },
		{ 64, "\x2e\x3e\x26\x36\x89\x10", 6, MOV, 4, 2, true, 0, "four segment overrides" },
		{ 64, "\x2e\x66\x67\x89\x54\x24\x08", 7, MOV, 2, 2, true, 0, "cs 66 67 mov [esp+8],dx" },
		{ 64, "\x67\x66\x65\x4c\x89\x54\x24\x08", 8, MOV, 8, 10, true, 0, "67 66 gs REX.WR (by hand)" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

TEST(insn_mov_store_imm_and_xchg_64bit)
{
	static const struct dcase cases[] = {
		{ 64, "\xc7\x00\x78\x56\x34\x12", 6, IMM, 4, 0, true, 0x12345678, "mov dword [rax],0x12345678" },
		{ 64, "\xc7\x00\xff\xff\xff\xff", 6, IMM, 4, 0, true, 0xffffffff, "4-byte imm: no sign extension" },
		{ 64, "\x48\xc7\x00\xfe\xff\xff\xff", 7, IMM, 8, 0, true, 0xfffffffffffffffeULL, "mov qword [rax],-2" },
		{ 64, "\x48\xc7\x00\x00\x00\x00\x80", 7, IMM, 8, 0, true, 0xffffffff80000000ULL,
		  "mov qword [rax],-0x80000000 (by hand)" },
		{ 64, "\x48\xc7\x43\x10\xff\xff\xff\x7f", 8, IMM, 8, 0, true, 0x7fffffff, "mov qword [rbx+0x10],0x7fffffff" },
		{ 64, "\x66\xc7\x00\xef\xbe", 5, IMM, 2, 0, true, 0xbeef, "mov word [rax],0xbeef (imm16)" },
		{ 64, "\x66\x48\xc7\x00\x78\x56\x34\x12", 8, IMM, 8, 0, true, 0x12345678,
		  "66 REX.W C7: imm32 (by hand)" },
		{ 64, "\xc7\x80\x00\x03\x00\x00\x00\x45\x0c\x00", 10, IMM, 4, 0, true, 0xc4500,
		  "mov dword [rax+0x300],0xc4500 (disp32 + imm32)" },
		{ 64, "\xc7\x05\x00\x01\x00\x00\x00\x45\x0c\x00", 10, IMM, 4, 0, true, 0xc4500,
		  "mov dword [rip+0x100],0xc4500 (by hand)" },
		{ 64, "\xc7\x04\x25\x00\x03\xe0\xfe\x00\x45\x0c\x00", 11, IMM, 4, 0, true, 0xc4500,
		  "mov dword [abs via SIB],0xc4500 (by hand)" },
		{ 64, "\x44\xc7\x00\x01\x00\x00\x00", 7, IMM, 4, 0, true, 1, "C7 /0 with REX.R (by hand)" },
		{ 64, "\xc7\xc0\x78\x56\x34\x12", 6, IMM, 4, 0, false, 0x12345678, "mov eax,0x12345678 (C7 form)" },
		{ 64, "\x87\x10", 2, XCHG, 4, 2, true, 0, "xchg [rax],edx" },
		{ 64, "\x87\x00", 2, XCHG, 4, 0, true, 0, "xchg [rax],eax" },
		{ 64, "\x4c\x87\x54\x94\x08", 5, XCHG, 8, 10, true, 0, "xchg [rsp+rdx*4+8],r10" },
		{ 64, "\xf0\x87\x11", 3, XCHG, 4, 2, true, 0, "lock xchg [rcx],edx" },
		{ 64, "\x66\x87\x15\x00\x03\x00\x00", 7, XCHG, 2, 2, true, 0, "xchg [rip+0x300],dx (by hand)" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

/* What an OS does to a memory-mapped local APIC (base 0xfee00000): ICR low at 0x300, EOI at 0xb0. */
TEST(insn_apic_writes_as_emitted_by_oses)
{
	static const struct dcase cases[] = {
		/* Linux native_apic_mem_write: "movl %0, %P1" (or "xchgl" on X86_BUG_11AP) to a constant
		 * fixmap address, a sign-extended disp32 through SIB with neither base nor index. */
		{ 64, "\x89\x04\x25\x00\xd3\x5f\xff", 7, MOV, 4, 0, true, 0, "mov [0xffffffffff5fd300],eax" },
		{ 64, "\x87\x04\x25\x00\xd3\x5f\xff", 7, XCHG, 4, 0, true, 0, "xchg [0xffffffffff5fd300],eax" },
		{ 64, "\x89\x14\x25\x00\x03\xe0\xfe", 7, MOV, 4, 2, true, 0, "mov [abs32 via SIB],edx" },
		/* Through a pointer register. */
		{ 64, "\x89\x37", 2, MOV, 4, 6, true, 0, "mov [rdi],esi" },
		{ 64, "\x89\x90\x00\x03\x00\x00", 6, MOV, 4, 2, true, 0, "mov [rax+0x300],edx" },
		{ 64, "\x41\x89\x84\x24\xb0\x00\x00\x00", 8, MOV, 4, 0, true, 0, "mov [r12+0xb0],eax" },
		{ 64, "\x87\x90\x00\x03\x00\x00", 6, XCHG, 4, 2, true, 0, "xchg [rax+0x300],edx (apic_write xchg)" },
		{ 64, "\xc7\x04\x25\xb0\x00\xe0\xfe\x00\x00\x00\x00", 11, IMM, 4, 0, true, 0, "mov dword [EOI],0" },
		/* 32-bit kernels and HALs: absolute disp32 without SIB. */
		{ 32, "\x89\x15\x00\x03\xe0\xfe", 6, MOV, 4, 2, true, 0, "mov [0xfee00300],edx" },
		{ 32, "\x89\x81\x00\x03\x00\x00", 6, MOV, 4, 0, true, 0, "mov [ecx+0x300],eax" },
		{ 32, "\xc7\x05\x00\x03\xe0\xfe\x00\x45\x0c\x00", 10, IMM, 4, 0, true, 0xc4500,
		  "mov dword [0xfee00300],0xc4500" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

TEST(insn_mov_store_32bit_code)
{
	static const struct dcase cases[] = {
		{ 32, "\x89\x10", 2, MOV, 4, 2, true, 0, "mov [eax],edx" },
		{ 32, "\x89\x04\x25\x00\x03\xe0\xfe", 7, MOV, 4, 0, true, 0, "mov [disp32 via SIB],eax (by hand)" },
		{ 32, "\x89\x93\x00\x03\x00\x00", 6, MOV, 4, 2, true, 0, "mov [ebx+0x300],edx" },
		{ 32, "\x89\x54\x24\x08", 4, MOV, 4, 2, true, 0, "mov [esp+8],edx" },
		{ 32, "\x89\x54\xb5\x00", 4, MOV, 4, 2, true, 0, "mov [ebp+esi*4+0],edx" },
		{ 32, "\x89\x14\xf5\x10\x00\x00\x00", 7, MOV, 4, 2, true, 0, "mov [esi*8+0x10],edx" },
		{ 32, "\x66\x89\x10", 3, MOV, 2, 2, true, 0, "mov [eax],dx" },
		{ 32, "\x26\x89\x17", 3, MOV, 4, 2, true, 0, "mov es:[edi],edx" },
		{ 32, "\x87\x15\x00\x03\xe0\xfe", 6, XCHG, 4, 2, true, 0, "xchg [0xfee00300],edx" },
		{ 32, "\xf0\x87\x11", 3, XCHG, 4, 2, true, 0, "lock xchg [ecx],edx" },
		{ 32, "\x66\xc7\x00\x34\x12", 5, IMM, 2, 0, true, 0x1234, "mov word [eax],0x1234" },
		{ 32, "\xc7\x00\x00\x00\x00\x80", 6, IMM, 4, 0, true, 0x80000000, "mov dword [eax],0x80000000" },
		/* 0x67: 16-bit addressing (Table 2-1): no SIB, rm=6 mod=0 is disp16. */
		{ 32, "\x67\x89\x10", 3, MOV, 4, 2, true, 0, "mov [bx+si],edx" },
		{ 32, "\x67\x89\x14", 3, MOV, 4, 2, true, 0, "mov [si],edx: rm=4 is no SIB (by hand)" },
		{ 32, "\x67\x89\x16\x00\x03", 5, MOV, 4, 2, true, 0, "mov [0x300],edx (disp16, by hand)" },
		{ 32, "\x67\x89\x96\x34\x12", 5, MOV, 4, 2, true, 0, "mov [bp+0x1234],edx" },
		{ 32, "\x67\x89\x56\x00", 4, MOV, 4, 2, true, 0, "mov [bp+0],edx (by hand)" },
		{ 32, "\x67\x66\xc7\x06\x00\x03\x34\x12", 8, IMM, 2, 0, true, 0x1234, "mov word [0x300],0x1234 (by hand)" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

TEST(insn_mov_store_16bit_code)
{
	static const struct dcase cases[] = {
		{ 16, "\x89\x10", 2, MOV, 2, 2, true, 0, "mov [bx+si],dx" },
		{ 16, "\x89\x11", 2, MOV, 2, 2, true, 0, "mov [bx+di],dx" },
		{ 16, "\x89\x12", 2, MOV, 2, 2, true, 0, "mov [bp+si],dx" },
		{ 16, "\x89\x14", 2, MOV, 2, 2, true, 0, "mov [si],dx" },
		{ 16, "\x89\x17", 2, MOV, 2, 2, true, 0, "mov [bx],dx" },
		{ 16, "\x89\x16\x00\x03", 4, MOV, 2, 2, true, 0, "mov [0x300],dx (mod=0 rm=6: disp16)" },
		{ 16, "\x89\x56\x00", 3, MOV, 2, 2, true, 0, "mov [bp+0],dx" },
		{ 16, "\x89\x57\x10", 3, MOV, 2, 2, true, 0, "mov [bx+0x10],dx (disp8)" },
		{ 16, "\x89\x53\xfe", 3, MOV, 2, 2, true, 0, "mov [bp+di-2],dx" },
		{ 16, "\x89\x90\x34\x12", 4, MOV, 2, 2, true, 0, "mov [bx+si+0x1234],dx (disp16)" },
		{ 16, "\x89\x96\x34\x12", 4, MOV, 2, 2, true, 0, "mov [bp+0x1234],dx" },
		{ 16, "\x89\xd0", 2, MOV, 2, 2, false, 0, "mov ax,dx" },
		{ 16, "\x64\x89\x50\x10", 4, MOV, 2, 2, true, 0, "mov fs:[bx+si+0x10],dx" },
		{ 16, "\x87\x15", 2, XCHG, 2, 2, true, 0, "xchg [di],dx" },
		/* 0x66: 32-bit operand. */
		{ 16, "\x66\x89\x17", 3, MOV, 4, 2, true, 0, "mov [bx],edx" },
		{ 16, "\x66\x89\x16\x00\x03", 5, MOV, 4, 2, true, 0, "mov [0x300],edx" },
		/* 0x67: 32-bit addressing, SIB included. */
		{ 16, "\x67\x89\x10", 3, MOV, 2, 2, true, 0, "mov [eax],dx" },
		{ 16, "\x67\x66\x89\x15\x00\x03\xe0\xfe", 8, MOV, 4, 2, true, 0, "mov [0xfee00300],edx" },
		{ 16, "\x67\x66\x89\x54\x88\x10", 6, MOV, 4, 2, true, 0, "mov [eax+ecx*4+0x10],edx" },
		{ 16, "\x67\x89\x14\x25\x00\x03\xe0\xfe", 8, MOV, 2, 2, true, 0, "mov [disp32 via SIB],dx (by hand)" },
		/* Immediates: imm16, or imm32 with 0x66. */
		{ 16, "\xc7\x06\x00\x03\x34\x12", 6, IMM, 2, 0, true, 0x1234, "mov word [0x300],0x1234" },
		{ 16, "\xc7\x06\x00\x03\x00\x80", 6, IMM, 2, 0, true, 0x8000, "mov word [0x300],0x8000 (no sign ext.)" },
		{ 16, "\x66\xc7\x06\x00\x03\x78\x56\x34\x12", 9, IMM, 4, 0, true, 0x12345678, "mov dword [0x300],imm32" },
		{ 16, "\x67\x66\xc7\x05\x00\x03\xe0\xfe\x78\x56\x34\x12", 12, IMM, 4, 0, true, 0x12345678,
		  "mov dword [0xfee00300],imm32" },
	};
	check_cases(cases, ARRAY_SIZE(cases));
}

TEST(insn_rejected)
{
	static const struct {
		u32 bits;
		const char *bytes;
		u32 n;
		const char *what;
	} cases[] = {
		{ 64, "\x8b\x10", 2, "mov edx,[rax] (8b: a load)" },
		{ 64, "\x0f\xb1\x10", 3, "cmpxchg [rax],edx (0f b1)" },
		{ 64, "\x0f\x11\x00", 3, "movups [rax],xmm0 (0f 11)" },
		{ 64, "\x0f\x38\xf1\x10", 4, "movbe [rax],edx" },
		{ 64, "\xf3\xa5", 2, "rep movsd" },
		{ 64, "\xff\x30", 2, "push [rax]" },
		{ 64, "\xc7\x08\x78\x56\x34\x12", 6, "C7 /1" },
		{ 64, "\xc7\x48\x10\x78\x56\x34\x12", 7, "C7 /1 disp8" },
		{ 64, "\xc7\x38\x78\x56\x34\x12", 6, "C7 /7" },
		{ 64, "\xc7\xf8\x00\x00\x00\x00", 6, "xbegin (C7 F8)" },
		{ 64, "\x48\xc7\x20\x78\x56\x34\x12", 7, "REX.W C7 /4" },
		{ 16, "\xc7\x0e\x00\x03\x34\x12", 6, "C7 /1 16-bit" },
		/* 40-4f are INC/DEC outside 64-bit mode, not REX. */
		{ 32, "\x48\x89\x10", 3, "dec eax in 32-bit code" },
		{ 16, "\x40\x89\x10", 3, "inc ax in 16-bit code" },
		/* More than 15 bytes. */
		{ 64, "\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x89\x10", 16, "16-byte mov" },
		{ 64, "\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x66\x48\xc7\x00\x01\x00\x00\x00", 19,
		  "19-byte mov imm" },
		{ 32, "\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x89\x10", 18, "all prefixes" },
		/* Nothing at all, or only prefixes. */
		{ 64, "", 0, "empty" },
		{ 64, "\x66\x67\x2e", 3, "prefixes only" },
		{ 64, "\x48", 1, "REX only" },
	};
	for (u32 k = 0; k < ARRAY_SIZE(cases); k++) {
		struct mmio_cpu cpu;
		struct mmio_store st;
		struct reads r = { 0, 0 };
		u8 padded[32];

		store_cpu(&cpu, cases[k].bits);
		if (!CHECK_EQ(emulate_exact(cases[k].bytes, cases[k].n, &cpu, &r, &st), -1))
			unit_fail(__FILE__, __LINE__, "  in case \"%s\"", cases[k].what);
		/* Followed by more bytes (nops): still rejected. */
		memset(padded, 0x90, sizeof(padded));
		memcpy(padded, cases[k].bytes, cases[k].n);
		if (!CHECK_EQ(mmio_store_emulate(padded, sizeof(padded), &cpu, read_old, &r, &st), -1))
			unit_fail(__FILE__, __LINE__, "  in case \"%s\" (padded)", cases[k].what);
	}
}

TEST(insn_longest_accepted)
{
	/* 13 prefixes + mov [rax],edx: 15 bytes, the architectural limit. */
	static const char b[] = "\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x89\x10";
	static const char c[] = "\x3e\x3e\x3e\x66\x48\xc7\x84\x88\x00\x01\x00\x00\x78\x56\x34\x12";
	struct mmio_cpu cpu;
	struct mmio_store st;
	struct reads r = { 0, 0 };

	store_cpu(&cpu, 64);
	CHECK_EQ(emulate_exact(b, 15, &cpu, &r, &st), 0);
	CHECK_EQ(st.length, 15);
	CHECK_EQ(st.size, 4);
	/* 3 prefixes, REX, C7, ModR/M, SIB, disp32, imm32 = 15 bytes; with one more prefix, 16. */
	store_cpu(&cpu, 64);
	CHECK_EQ(emulate_exact(c + 1, 15, &cpu, &r, &st), 0);
	CHECK_EQ(st.length, 15);
	CHECK_EQ(st.size, 8);
	CHECK_EQ(st.value, 0x12345678);
	store_cpu(&cpu, 64);
	CHECK_EQ(emulate_exact(c, 16, &cpu, &r, &st), -1);
}

/* ------------------------------------------------------------------------------------------------ */
/* Guest page walks. Guest-physical memory [0, MEM_SIZE) is a host buffer. */

#define MEM_SIZE (16u << 20)
#define P 0x1ULL
#define RW 0x2ULL
#define US 0x4ULL
#define A 0x20ULL
#define D 0x40ULL
#define PS 0x80ULL
#define G 0x100ULL
#define NX (1ULL << 63)

struct gmem {
	u8 *buf;
	u32 reads;
	bool strict; /* fail reads that leave the 4 KiB page (an implementation mapping one page) */
};

static bool read_phys(void *ctx, u64 gpa, u64 *value)
{
	struct gmem *m = ctx;

	m->reads++;
	if (gpa > MEM_SIZE - 8)
		return false;
	if (m->strict && (gpa & 0xfff) > 0xff8)
		return false;
	memcpy(value, m->buf + gpa, 8);
	return true;
}

static struct gmem *gmem_new(void)
{
	struct gmem *m = calloc(1, sizeof(*m));

	m->buf = calloc(1, MEM_SIZE);
	m->strict = true;
	return m;
}

static void gmem_free(struct gmem *m)
{
	free(m->buf);
	free(m);
}

static void put32(struct gmem *m, u64 gpa, u32 v)
{
	memcpy(m->buf + gpa, &v, 4);
}

static void put64(struct gmem *m, u64 gpa, u64 v)
{
	memcpy(m->buf + gpa, &v, 8);
}

/* Translates, returning the gpa, or ~0 for -1. */
static u64 walk(struct gmem *m, enum guest_paging mode, u64 cr3, const u64 *pdpte, bool pse, u64 linear)
{
	u64 gpa = 0x5a5a5a5a5a5a5a5aULL;
	int r = guest_linear_to_phys(mode, cr3, pdpte, pse, linear, read_phys, m, &gpa);

	if (r != 0) {
		CHECK_EQ(r, -1);
		return ~0ULL;
	}
	return gpa;
}

#define FAIL ~0ULL

TEST(paging_none_is_identity)
{
	struct gmem *m = gmem_new();
	static const u64 lin[] = { 0, 0x300, 0xfee00300, 0xffffffff, 0x123456789aULL };

	for (u32 k = 0; k < ARRAY_SIZE(lin); k++) {
		CHECK_EQ(walk(m, GUEST_PAGING_NONE, 0x1000, NULL, false, lin[k]), lin[k]);
		CHECK_EQ(walk(m, GUEST_PAGING_NONE, 0x1000, NULL, true, lin[k]), lin[k]);
	}
	CHECK_EQ(m->reads, 0);
	gmem_free(m);
}

/* 32-bit paging (SDM 4.3): CR3[31:12] -> PD (1024 x 4 bytes, index linear[31:22]) -> PT (index
 * linear[21:12]) -> page. */
TEST(paging_32bit_4k)
{
	struct gmem *m = gmem_new();
	const u64 pd = 0x1000, pt = 0x2000, pt2 = 0xfff000; /* pt2: the last page of memory */
	/* CR3 with PWT|PCD and ignored low bits set. */
	const u64 cr3 = pd | 0x18 | 0x7;

	/* 0xfee00000: PD index 0x3fb, PT index 0x200. Ignored bits 11:9, G, PAT, D, A in the PTE. */
	put32(m, pd + 0x3fb * 4, (u32)pt | 0xe00 | A | US | RW | P);
	put32(m, pt + 0x200 * 4, 0x00345000 | 0xe00 | G | PS | D | A | RW | P);
	/* Its neighbours, all ones: must not leak into the adjacent entry (4-byte entries). */
	put32(m, pt + 0x1ff * 4, 0xffffffff);
	put32(m, pt + 0x201 * 4, 0xffffffff);
	put32(m, pd + 0x3fa * 4, 0xfffff000); /* not present */
	put32(m, pd + 0x3fc * 4, 0xffffffff & ~0x81u);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee00300), 0x345300);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, true, 0xfee00300), 0x345300);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee00000), 0x345000);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee00fff), 0x345fff);
	/* The all-ones neighbours are present. */
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfedff123), 0xfffff123);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee01123), 0xfffff123);
	/* PDE not present (with address bits set). */
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfe800000), FAIL);
	/* PDE index 0 zero. */
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x1000), FAIL);
	/* PTE not present. */
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee02000), FAIL);
	put32(m, pt + 0x202 * 4, 0x00777000 | RW); /* address but P=0 */
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee02000), FAIL);
	put32(m, pt + 0x202 * 4, 0x00777000 | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfee02abc), 0x777abc);

	/* Even and odd entries, and the last entry of both tables (the PT in the last page). */
	put32(m, pd + 0 * 4, (u32)pt2 | P);
	put32(m, pd + 1 * 4, (u32)pt2 | P);
	put32(m, pd + 1023 * 4, (u32)pt2 | P);
	put32(m, pt2 + 0 * 4, 0x00100000 | P);
	put32(m, pt2 + 1 * 4, 0x00101000 | P);
	put32(m, pt2 + 1022 * 4, 0x00102000 | P);
	put32(m, pt2 + 1023 * 4, 0x00103000 | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x00000010), 0x100010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x00001010), 0x101010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x003fe010), 0x102010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x003ff010), 0x103010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0x007ff010), 0x103010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xfffff010), 0x103010);
	CHECK_EQ(walk(m, GUEST_PAGING_32, cr3, NULL, false, 0xffc00fff), 0x100fff);

	/* A PD outside memory: unreadable. */
	CHECK_EQ(walk(m, GUEST_PAGING_32, 0xff000000, NULL, false, 0xfee00300), FAIL);
	gmem_free(m);
}

/* 4 MiB pages (SDM 4.3, Table 4-5): PDE.PS with CR4.PSE; bits 31:22 and, PSE-36, bits 20:13 as
 * physical address bits 39:32; bit 12 is PAT. Without CR4.PSE, PS is ignored. */
TEST(paging_32bit_4m_pse)
{
	struct gmem *m = gmem_new();
	const u64 pd = 0x1000;

	/* linear 0x00400000-0x007fffff -> 0x00800000 with PSE; the same PDE as a PT pointer
	 * otherwise (PT at 0x00800000). */
	put32(m, pd + 1 * 4, 0x00800000 | PS | D | A | RW | P);
	put32(m, 0x00800000 + 0x123 * 4, 0x00abc000 | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x00523456), 0x00923456);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x00400000), 0x00800000);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x007fffff), 0x00bfffff);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, false, 0x00523456), 0x00abc456);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, false, 0x00524456), FAIL); /* PTE 0x124 empty */

	/* PAT (bit 12), G, ignored bits 11:9: not address bits. */
	put32(m, pd + 2 * 4, 0xffc00000 | 0x1000 | 0xe00 | G | PS | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x00812345), 0xffc12345);
	/* PSE-36/40: PDE bits 20:13 -> physical 39:32. */
	put32(m, pd + 3 * 4, 0x40000000 | (0xa5u << 13) | 0x1000 | PS | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x00c00004), 0xa540000004ULL);
	put32(m, pd + 4 * 4, 0x40000000 | (0xffu << 13) | PS | P);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x013fffff), 0xff403fffffULL);
	/* Not present with PS. */
	put32(m, pd + 5 * 4, 0x00800000 | PS);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, true, 0x01400000), FAIL);
	CHECK_EQ(walk(m, GUEST_PAGING_32, pd, NULL, false, 0x01400000), FAIL);
	gmem_free(m);
}

/* PAE (SDM 4.4): PDPTE[linear 31:30] (from the VMCS) -> PD (512 x 8, index 29:21) -> PT (20:12). */
TEST(paging_pae)
{
	struct gmem *m = gmem_new();
	const u64 pd3 = 0x5000, pd1 = 0x6000, pt = 0x7000;
	u64 pdpte[4] = { 0, pd1 | P, 0, pd3 | P };
	const u64 junk_cr3 = 0xfffff000; /* ignored: the PDPTEs are given */

	/* 0xfee00300: PDPTE 3, PD index 0x1f7, PT index 0. */
	put64(m, pd3 + 0x1f7 * 8, pt | A | RW | P);
	put64(m, pt + 0 * 8, NX | (0x7ffULL << 52) | 0x123456789000ULL | 0xe00 | G | PS | D | A | P);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfee00300), 0x123456789300ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, true, 0xfee00fff), 0x123456789fffULL);
	/* The next PTE not present, then present but with P=0. */
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfee01000), FAIL);
	put64(m, pt + 1 * 8, 0x9000ULL | RW);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfee01000), FAIL);
	put64(m, pt + 511 * 8, 0xa000ULL | P);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfeffffff), 0xafffULL);

	/* 2 MiB page: PAT (bit 12) and NX are not address bits. */
	put64(m, pd1 + 0x10 * 8, NX | 0xabcde00000ULL | 0x1000 | PS | D | A | P);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x42000000), 0xabcde00000ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x421fffff), 0xabcdffffffULL);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x42012345), 0xabcde12345ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x42200000), FAIL); /* PDE 0x11 */
	put64(m, pd1 + 0x11 * 8, 0xabcde00000ULL | PS); /* not present */
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x42200000), FAIL);

	/* PDPTEs 0 and 2 not present; a present PDPTE whose upper bits are set. */
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x00001000), FAIL);
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x80000000), FAIL);
	pdpte[2] = (0x7ffULL << 52) | pd1 | 0x18 | P; /* (reserved bits in a real PDPTE: not address bits) */
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0x82012345), 0xabcde12345ULL);
	pdpte[3] = pd3; /* P clear */
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfee00300), FAIL);
	/* A PD outside memory. */
	pdpte[3] = 0x100000000ULL | P;
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, junk_cr3, pdpte, false, 0xfee00300), FAIL);
	gmem_free(m);
}

/* 4-level paging (SDM 4.5): PML4 (47:39) -> PDPT (38:30, PS: 1 GiB) -> PD (29:21, PS: 2 MiB) ->
 * PT (20:12). */
TEST(paging_4level)
{
	struct gmem *m = gmem_new();
	const u64 pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	const u64 cr3 = pml4 | 0xabc; /* PCID */
	const u64 hi = NX | (0xfULL << 59) | (0x7fULL << 52); /* XD, protection key, ignored bits */
	/* 0xffff888012345678: PML4 0x111, PDPT 0x000, PD 0x091, PT 0x145 (worked out by hand:
	 * 0x888012345678 >> 39 = 0x111, >> 30 & 511 = 0, >> 21 & 511 = 0x91, >> 12 & 511 = 0x145). */
	const u64 lin = 0xffff888012345678ULL;

	put64(m, pml4 + 0x111 * 8, hi | pdpt | 0xe00 | A | US | RW | P);
	put64(m, pdpt + 0x000 * 8, hi | pd | 0xe00 | A | RW | P);
	put64(m, pd + 0x091 * 8, hi | pt | 0xe00 | A | RW | P);
	put64(m, pt + 0x145 * 8, hi | 0x000fffffffffe000ULL | 0xe00 | G | PS | D | A | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), 0x000fffffffffe678ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin | 0xfff), 0x000fffffffffefffULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin & ~0xfffULL), 0x000fffffffffe000ULL);

	/* Not present at each level. */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin + 0x1000), FAIL);        /* PTE */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin + 0x200000), FAIL);      /* PDE */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin + 0x40000000), FAIL);    /* PDPTE */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin + 0x8000000000ULL), FAIL); /* PML4E */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0x12345678), FAIL);          /* PML4E 0 */
	/* Present bits cleared one level at a time, addresses kept. */
	put64(m, pt + 0x145 * 8, 0x0000000000345000ULL | RW);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), FAIL);
	put64(m, pt + 0x145 * 8, 0x0000000000345000ULL | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), 0x345678);
	put64(m, pd + 0x091 * 8, pt | RW);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), FAIL);
	put64(m, pd + 0x091 * 8, pt | P);
	put64(m, pdpt + 0x000 * 8, pd | RW);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), FAIL);
	put64(m, pdpt + 0x000 * 8, pd | P);
	put64(m, pml4 + 0x111 * 8, pdpt | RW);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), FAIL);
	put64(m, pml4 + 0x111 * 8, pdpt | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, lin), 0x345678);

	/* 2 MiB page in PD entry 0x092 (linear 0xffff888012400000): PAT bit 12 not an address bit. */
	put64(m, pd + 0x092 * 8, hi | 0x000fffffffe00000ULL | 0x1000 | PS | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff888012400000ULL), 0x000fffffffe00000ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff8880125abcdeULL), 0x000ffffffffabcdeULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff8880125fffffULL), 0x000fffffffffffffULL);
	put64(m, pd + 0x093 * 8, 0x40000000ULL | PS); /* not present */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff888012600000ULL), FAIL);

	/* 1 GiB page in PDPT entry 1 (linear 0xffff888040000000). */
	put64(m, pdpt + 1 * 8, hi | 0x0000123440000000ULL | 0x1000 | PS | D | A | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff888040000000ULL), 0x123440000000ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff88807edcba98ULL), 0x12347edcba98ULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff88807fffffffULL), 0x12347fffffffULL);
	put64(m, pdpt + 2 * 8, 0x0000123480000000ULL | PS); /* not present */
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0xffff888080000000ULL), FAIL);

	/* The last entries of each table, low half: linear 0x00007fffffffffff. */
	put64(m, pml4 + 255 * 8, pdpt | P);
	put64(m, pdpt + 511 * 8, pd | P);
	put64(m, pd + 511 * 8, pt | P);
	put64(m, pt + 511 * 8, 0xfff000 | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0x00007fffffffffffULL), 0xffffffULL);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0x00007ffffffff000ULL), 0xfff000ULL);

	/* A table outside memory. */
	put64(m, pml4 + 1 * 8, 0x40000000ULL | P);
	CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, cr3, NULL, false, 0x0000008000000000ULL), FAIL);
	gmem_free(m);
}

/* Every 4 KiB page of a region mapped by 4 KiB, 2 MiB and 1 GiB pages through the same tables as
 * 4-level and (the lower 4 GiB) PAE paging: the walk with a random offset agrees with the map. */
TEST(paging_page_sizes_agree)
{
	struct gmem *m = gmem_new();
	const u64 pml4 = 0x20000, pdpt = 0x21000, pd = 0x22000, pt = 0x23000;
	u64 pdpte[4] = { pd | P, 0, 0, 0 };
	u32 seed = 12345;

	/* Linear [0, 2 MiB): 4 KiB pages, page i -> 0x400000 + 0x1000 * (511 - i).
	 * Linear [2 MiB, 1 GiB): 2 MiB pages, page j -> 0x80000000 + 2 MiB * j.
	 * Linear [1 GiB, 2 GiB): one 1 GiB page -> 0x3c0000000 (4-level only). */
	put64(m, pml4, pdpt | P);
	put64(m, pdpt, pd | P);
	put64(m, pdpt + 8, 0x3c0000000ULL | PS | P);
	put64(m, pd, pt | P);
	for (u64 i = 0; i < 512; i++)
		put64(m, pt + i * 8, NX | (0x400000 + 0x1000 * (511 - i)) | P);
	for (u64 j = 1; j < 512; j++)
		put64(m, pd + j * 8, NX | (0x80000000ULL + (j << 21)) | PS | P);

	for (u64 lin = 0; lin < (2ULL << 30); lin += 0x1000) {
		u64 off, want;

		seed = seed * 1103515245u + 12345u;
		off = (seed >> 8) & 0xfff;
		if (lin < (2 << 20))
			want = 0x400000 + 0x1000 * (511 - (lin >> 12)) + off;
		else if (lin < (1ULL << 30))
			want = 0x80000000ULL + lin + off;
		else
			want = 0x3c0000000ULL + (lin - (1ULL << 30)) + off;
		if (!CHECK_EQ(walk(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, lin + off), want))
			break;
		if (lin < (1ULL << 30) && !CHECK_EQ(walk(m, GUEST_PAGING_PAE, 0, pdpte, false, lin + off), want))
			break;
	}
	CHECK_EQ(walk(m, GUEST_PAGING_PAE, 0, pdpte, false, 1ULL << 30), FAIL);
	gmem_free(m);
}

/* ------------------------------------------------------------------------------------------------
 * mmio_store_emulate: one store to the APIC page, emulated from its bytes.
 */


struct scase {
	u32 bits;
	const char *as; /* GNU as spelling (check-encodings.py), "" if worked out by hand */
	const char *bytes;
	u32 len;
	u32 size;  /* bytes stored */
	u64 value; /* value stored */
};

static void check_store_cases(const struct scase *cases, u32 n)
{
	for (u32 k = 0; k < n; k++) {
		const struct scase *c = &cases[k];
		struct mmio_cpu cpu, ref;
		struct mmio_store st;
		struct reads r = { 0 };
		u8 padded[32];
		bool ok = true;

		store_cpu(&cpu, c->bits);
		ok &= CHECK_EQ(emulate_exact(c->bytes, c->len, &cpu, &r, &st), 0);
		ok &= CHECK_EQ(st.length, c->len);
		ok &= CHECK_EQ(st.size, c->size);
		ok &= CHECK_EQ(st.value, c->value);
		ok &= CHECK(st.write);
		ok &= CHECK(r.calls <= 1);
		if (r.calls)
			ok &= CHECK_EQ(r.size, c->size);

		/* Followed by more code: the same store. */
		store_cpu(&cpu, c->bits);
		memset(padded, 0xcc, sizeof(padded));
		memcpy(padded, c->bytes, c->len);
		ok &= CHECK_EQ(mmio_store_emulate(padded, sizeof(padded), &cpu, read_old, &r, &st), 0);
		ok &= CHECK_EQ(st.length, c->len);
		ok &= CHECK_EQ(st.value, c->value);

		/* Truncated anywhere: refused, nothing read, nothing changed. */
		for (u32 a = 0; a < c->len; a++) {
			store_cpu(&cpu, c->bits);
			ref = cpu;
			r.calls = 0;
			if (!CHECK_EQ(emulate_exact(c->bytes, a, &cpu, &r, &st), -1) || !CHECK_EQ(r.calls, 0) ||
			    !CHECK(memcmp(&cpu, &ref, sizeof(cpu)) == 0)) {
				unit_fail(__FILE__, __LINE__, "  with avail %u", a);
				ok = false;
				break;
			}
		}
		if (!ok)
			unit_fail(__FILE__, __LINE__, "  in case %u-bit \"%s\"", c->bits, c->as);
	}
}

TEST(mmio_store_encodings)
{
	static const struct scase cases[] = {
		{ 64, "mov %eax,(%rbx)", "\x89\x03", 2, 4, 0xb0a09080ULL },
		{ 64, "mov %al,(%rbx)", "\x88\x03", 2, 1, 0x80ULL },
		{ 64, "mov %ah,(%rbx)", "\x88\x23", 2, 1, 0x90ULL },
		{ 64, "mov %bh,0x10(%rax)", "\x88\x78\x10", 3, 1, 0x93ULL },
		{ 64, "mov %sil,(%rbx)", "\x40\x88\x33", 3, 1, 0x86ULL },
		{ 64, "mov %r9b,(%rbx)", "\x44\x88\x0b", 3, 1, 0x89ULL },
		{ 64, "mov %ax,(%rbx)", "\x66\x89\x03", 3, 2, 0x9080ULL },
		{ 64, "mov %rax,(%rbx)", "\x48\x89\x03", 3, 8, 0xf0e0d0c0b0a09080ULL },
		{ 64, "mov %r15d,0x80(%r12,%r13,8)", "\x47\x89\xbc\xec\x80\x00\x00\x00", 8, 4, 0xbfaf9f8fULL },
		{ 64, "mov %r8,-0x80(%rbp)", "\x4c\x89\x45\x80", 4, 8, 0xf8e8d8c8b8a89888ULL },
		{ 64, "mov %edx,0x300(%rip)", "\x89\x15\x00\x03\x00\x00", 6, 4, 0xb2a29282ULL },
		{ 64, "mov %ecx,%fs:0x10(%rax)", "\x64\x89\x48\x10", 4, 4, 0xb1a19181ULL },
		{ 64, "mov %eax,%ss:(%rbx)", "\x36\x89\x03", 3, 4, 0xb0a09080ULL },
		{ 64, "addr32 mov %eax,(%ebx)", "\x67\x89\x03", 3, 4, 0xb0a09080ULL },
		{ 64, "addr32 mov %edi,0x300(%eip)", "\x67\x89\x3d\x00\x03\x00\x00", 7, 4, 0xb7a79787ULL },
		{ 64, "mov %eax,0xfffffffffee00300", "\x89\x04\x25\x00\x03\xe0\xfe", 7, 4, 0xb0a09080ULL },
		{ 64, "mov %esi,-0x11fd00(,%rcx,1)", "\x89\x34\x0d\x00\x03\xee\xff", 7, 4, 0xb6a69686ULL },
		{ 64, "mov %r10w,(%r11)", "\x66\x45\x89\x13", 4, 2, 0x9a8aULL },
		{ 64, "xrelease movl %eax,(%rbx)", "\xf3\x89\x03", 3, 4, 0xb0a09080ULL },
		{ 64, "movabs %eax,0xfee00310", "\xa3\x10\x03\xe0\xfe\x00\x00\x00\x00", 9, 4, 0xb0a09080ULL },
		{ 64, "movabs %al,0xfee00310", "\xa2\x10\x03\xe0\xfe\x00\x00\x00\x00", 9, 1, 0x80ULL },
		{ 64, "movabs %ax,0xfee00310", "\x66\xa3\x10\x03\xe0\xfe\x00\x00\x00\x00", 10, 2, 0x9080ULL },
		{ 64, "movabs %rax,0xfee00310", "\x48\xa3\x10\x03\xe0\xfe\x00\x00\x00\x00", 10, 8, 0xf0e0d0c0b0a09080ULL },
		{ 64, "addr32 movabs %eax,0xfee00310", "\x67\xa3\x10\x03\xe0\xfe", 6, 4, 0xb0a09080ULL },
		{ 64, "movabs %eax,%gs:0xfee00310", "\x65\xa3\x10\x03\xe0\xfe\x00\x00\x00\x00", 10, 4, 0xb0a09080ULL },
		{ 64, "movb $0x5a,(%rbx)", "\xc6\x03\x5a", 3, 1, 0x5aULL },
		{ 64, "movw $0x1234,(%rbx)", "\x66\xc7\x03\x34\x12", 5, 2, 0x1234ULL },
		{ 64, "movl $0x12345678,0x80(%rbx)", "\xc7\x83\x80\x00\x00\x00\x78\x56\x34\x12", 10, 4, 0x12345678ULL },
		{ 64, "movl $0xc4500,0x100(%rip)", "\xc7\x05\x00\x01\x00\x00\x00\x45\x0c\x00", 10, 4, 0xc4500ULL },
		{ 64, "movq $-2,(%rbx)", "\x48\xc7\x03\xfe\xff\xff\xff", 7, 8, 0xfffffffffffffffeULL },
		{ 64, "movq $0x7fffffff,0x10(%rbx,%rcx,2)", "\x48\xc7\x44\x4b\x10\xff\xff\xff\x7f", 9, 8, 0x7fffffffULL },
		{ 64, "xchg %eax,(%rbx)", "\x87\x03", 2, 4, 0xb0a09080ULL },
		{ 64, "xchg %ah,(%rbx)", "\x86\x23", 2, 1, 0x90ULL },
		{ 64, "lock xchg %r10,(%rbx)", "\xf0\x4c\x87\x13", 4, 8, 0xfaeadacabaaa9a8aULL },
		{ 64, "xchg %dx,0x300(%rax)", "\x66\x87\x90\x00\x03\x00\x00", 7, 2, 0x9282ULL },
		{ 64, "stosb", "\xaa", 1, 1, 0x80ULL },
		{ 64, "stosw", "\x66\xab", 2, 2, 0x9080ULL },
		{ 64, "stosl", "\xab", 1, 4, 0xb0a09080ULL },
		{ 64, "stosq", "\x48\xab", 2, 8, 0xf0e0d0c0b0a09080ULL },
		{ 64, "addr32 stosl", "\x67\xab", 2, 4, 0xb0a09080ULL },
		{ 64, "add %eax,(%rbx)", "\x01\x03", 2, 4, 0x3a4c5e6fULL },
		{ 64, "add %al,(%rbx)", "\x00\x03", 2, 1, 0x6fULL },
		{ 64, "or %ecx,(%rbx)", "\x09\x0b", 2, 4, 0xb9abddefULL },
		{ 64, "adc %edx,(%rbx)", "\x11\x13", 2, 4, 0x3c4e6072ULL },
		{ 64, "sbb %rsi,(%rbx)", "\x48\x19\x33", 3, 8, 0xa3c6ea0d3053768ULL },
		{ 64, "and %di,(%rbx)", "\x66\x21\x3b", 3, 2, 0x8587ULL },
		{ 64, "sub %r8d,(%rbx)", "\x44\x29\x03", 3, 4, 0xd1033567ULL },
		{ 64, "xor %bh,(%rax)", "\x30\x38", 2, 1, 0x7cULL },
		{ 64, "lock or %eax,0x300(%rbx)", "\xf0\x09\x83\x00\x03\x00\x00", 7, 4, 0xb9abddefULL },
		{ 64, "lock add %r15,(%r14)", "\xf0\x4d\x01\x3e", 4, 8, 0x1132537495b6d7eULL },
		{ 64, "addb $0x11,(%rbx)", "\x80\x03\x11", 3, 1, 0x0ULL },
		{ 64, "orl $0x10000,(%rbx)", "\x81\x0b\x00\x00\x01\x00", 6, 4, 0x89abcdefULL },
		{ 64, "andl $-16,(%rbx)", "\x83\x23\xf0", 3, 4, 0x89abcde0ULL },
		{ 64, "andq $-16,(%rbx)", "\x48\x83\x23\xf0", 4, 8, 0x123456789abcde0ULL },
		{ 64, "subq $0x7fffffff,(%rbx)", "\x48\x81\x2b\xff\xff\xff\x7f", 7, 8, 0x123456709abcdf0ULL },
		{ 64, "xorq $-0x80000000,(%rbx)", "\x48\x81\x33\x00\x00\x00\x80", 7, 8, 0xfedcba9809abcdefULL },
		{ 64, "adcw $0x1234,(%rbx)", "\x66\x81\x13\x34\x12", 5, 2, 0xe024ULL },
		{ 64, "sbbl $1,(%rbx)", "\x83\x1b\x01", 3, 4, 0x89abcdedULL },
		{ 64, "lock addl $8,0x300(%rbx)", "\xf0\x83\x83\x00\x03\x00\x00\x08", 8, 4, 0x89abcdf7ULL },
		{ 64, "xorb $0xff,(%rbx)", "\x80\x33\xff", 3, 1, 0x10ULL },
		{ 64, "incb (%rbx)", "\xfe\x03", 2, 1, 0xf0ULL },
		{ 64, "incl (%rbx)", "\xff\x03", 2, 4, 0x89abcdf0ULL },
		{ 64, "decw (%rbx)", "\x66\xff\x0b", 3, 2, 0xcdeeULL },
		{ 64, "lock decq (%rbx)", "\xf0\x48\xff\x0b", 4, 8, 0x123456789abcdeeULL },
		{ 64, "notl (%rbx)", "\xf7\x13", 2, 4, 0x76543210ULL },
		{ 64, "notb (%rbx)", "\xf6\x13", 2, 1, 0x10ULL },
		{ 64, "negl (%rbx)", "\xf7\x1b", 2, 4, 0x76543211ULL },
		{ 64, "negq 0x300(%rbx)", "\x48\xf7\x9b\x00\x03\x00\x00", 7, 8, 0xfedcba9876543211ULL },
		{ 64, "bts %eax,(%rbx)", "\x0f\xab\x03", 3, 4, 0x89abcdefULL },
		{ 64, "btr %ecx,(%rbx)", "\x0f\xb3\x0b", 3, 4, 0x89abcdedULL },
		{ 64, "btc %rdx,(%rbx)", "\x48\x0f\xbb\x13", 4, 8, 0x123456789abcdebULL },
		{ 64, "btsw %si,(%rbx)", "\x66\x0f\xab\x33", 4, 2, 0xcdefULL },
		{ 64, "btsl $5,(%rbx)", "\x0f\xba\x2b\x05", 4, 4, 0x89abcdefULL },
		{ 64, "btrl $0x23,(%rbx)", "\x0f\xba\x33\x23", 4, 4, 0x89abcde7ULL },
		{ 64, "btcq $63,(%rbx)", "\x48\x0f\xba\x3b\x3f", 5, 8, 0x8123456789abcdefULL },
		{ 64, "lock btsl $1,0x300(%rbx)", "\xf0\x0f\xba\xab\x00\x03\x00\x00\x01", 9, 4, 0x89abcdefULL },
		{ 64, "movnti %eax,(%rbx)", "\x0f\xc3\x03", 3, 4, 0xb0a09080ULL },
		{ 64, "movnti %rax,(%rbx)", "\x48\x0f\xc3\x03", 4, 8, 0xf0e0d0c0b0a09080ULL },
		{ 64, "movnti %r9d,(%r10)", "\x45\x0f\xc3\x0a", 4, 4, 0xb9a99989ULL },
		{ 32, "mov %eax,0xfee00300", "\xa3\x00\x03\xe0\xfe", 5, 4, 0xb0a09080ULL },
		{ 32, "mov %edx,0xfee00300", "\x89\x15\x00\x03\xe0\xfe", 6, 4, 0xb2a29282ULL },
		{ 32, "mov %dx,(%ebx)", "\x66\x89\x13", 3, 2, 0x9282ULL },
		{ 32, "mov %ch,0x10(%ebx,%esi,4)", "\x88\x6c\xb3\x10", 4, 1, 0x91ULL },
		{ 32, "addr16 mov %eax,(%bx,%si)", "\x67\x89\x00", 3, 4, 0xb0a09080ULL },
		{ 32, "addr16 mov %eax,0x300", "\x67\xa3\x00\x03", 4, 4, 0xb0a09080ULL },
		{ 32, "movl $0xc4500,0xfee00300", "\xc7\x05\x00\x03\xe0\xfe\x00\x45\x0c\x00", 10, 4, 0xc4500ULL },
		{ 32, "xchg %eax,0x300(%ecx)", "\x87\x81\x00\x03\x00\x00", 6, 4, 0xb0a09080ULL },
		{ 32, "stosl", "\xab", 1, 4, 0xb0a09080ULL },
		{ 32, "addr16 stosl", "\x67\xab", 2, 4, 0xb0a09080ULL },
		{ 32, "lock orl $1,(%ebx)", "\xf0\x83\x0b\x01", 4, 4, 0x89abcdefULL },
		{ 32, "incl 0x300(%ecx)", "\xff\x81\x00\x03\x00\x00", 6, 4, 0x89abcdf0ULL },
		{ 32, "btsl $3,(%ebx)", "\x0f\xba\x2b\x03", 4, 4, 0x89abcdefULL },
		{ 32, "movnti %eax,(%ebx)", "\x0f\xc3\x03", 3, 4, 0xb0a09080ULL },
		{ 16, "mov %ax,(%bx,%si)", "\x89\x00", 2, 2, 0x9080ULL },
		{ 16, "mov %eax,(%bx)", "\x66\x89\x07", 3, 4, 0xb0a09080ULL },
		{ 16, "mov %ax,0x300", "\xa3\x00\x03", 3, 2, 0x9080ULL },
		{ 16, "addr32 mov %ax,0xfee00300", "\x67\xa3\x00\x03\xe0\xfe", 6, 2, 0x9080ULL },
		{ 16, "mov %ax,0x10(%bp,%di)", "\x89\x43\x10", 3, 2, 0x9080ULL },
		{ 16, "mov %dl,0x1234(%bx)", "\x88\x97\x34\x12", 4, 1, 0x82ULL },
		{ 16, "movw $0x1234,0x300(%bx)", "\xc7\x87\x00\x03\x34\x12", 6, 2, 0x1234ULL },
		{ 16, "movl $0xc4500,(%bx)", "\x66\xc7\x07\x00\x45\x0c\x00", 7, 4, 0xc4500ULL },
		{ 16, "addr32 mov %eax,(%ebx,%ecx,4)", "\x67\x66\x89\x04\x8b", 5, 4, 0xb0a09080ULL },
		{ 16, "stosw", "\xab", 1, 2, 0x9080ULL },
		{ 16, "stosl", "\x66\xab", 2, 4, 0xb0a09080ULL },
		{ 16, "lock btsw $3,(%bx)", "\xf0\x0f\xba\x2f\x03", 5, 2, 0xcdefULL },
		{ 16, "addw $1,(%di)", "\x83\x05\x01", 3, 2, 0xcdf0ULL },
		{ 16, "negl (%bx)", "\x66\xf7\x1f", 3, 4, 0x76543211ULL },

		/* Worked out by hand (no assembler spelling). */
		{ 32, "", "\x82\x0b\x10", 3, 1, 0xff },            /* 82 /1 ib outside 64-bit mode: OR */
		{ 64, "", "\x48\x66\x89\x03", 4, 2, 0x9080 },     /* REX before 66 is ignored: 16 bits */
		{ 64, "", "\x66\x48\x89\x03", 4, 8, 0xf0e0d0c0b0a09080ULL }, /* REX.W beats 66 */
		{ 64, "", "\x40\x88\x23", 3, 1, 0x84 },           /* empty REX: SPL, not AH */
		{ 64, "", "\x44\x88\x23", 3, 1, 0x8c },           /* REX.R: R12B */
		{ 64, "", "\x41\x89\x55\x00", 4, 4, 0xb2a29282 }, /* [r13+0]: mod=1 */
		{ 64, "", "\xf2\xf0\x09\x03", 4, 4, 0x89abcdef | 0xb0a09080 }, /* XACQUIRE LOCK OR */
		{ 64, "", "\x26\x2e\x36\x3e\x64\x65\x66\x67\x26\x2e\x36\x3e\x64\x89\x03", 15, 2, 0x9080 },
	};
	check_store_cases(cases, ARRAY_SIZE(cases));
}

/* Runs one instruction from the store_cpu state (with changes applied by the caller). */
static int run_store(u32 bits, const char *bytes, u32 len, struct mmio_cpu *c, struct mmio_store *st)
{
	struct reads r = { 0 };

	c->cs_bits = bits;
	return emulate_exact(bytes, len, c, &r, st);
}

TEST(mmio_store_xchg_writes_the_register)
{
	struct mmio_cpu c, ref;
	struct mmio_store st;

	/* A 32-bit register gets the old value zero-extended (SDM Vol. 1, 3.4.1.1). */
	store_cpu(&c, 64);
	ref = c;
	CHECK_EQ(run_store(64, "\x87\x03", 2, &c, &st), 0);
	CHECK_EQ(st.value, 0xb0a09080);
	CHECK_EQ(c.gpr[0], 0x89abcdef);
	ref.gpr[0] = c.gpr[0];
	CHECK(memcmp(&c, &ref, sizeof(c)) == 0); /* nothing else, flags included */
	/* AH: bits 15:8 only. */
	store_cpu(&c, 64);
	CHECK_EQ(run_store(64, "\x86\x23", 2, &c, &st), 0);
	CHECK_EQ(c.gpr[0], 0xf0e0d0c0b0a0ef80ULL);
	/* DX: bits 15:0 only. */
	store_cpu(&c, 64);
	CHECK_EQ(run_store(64, "\x66\x87\x90\x00\x03\x00\x00", 7, &c, &st), 0);
	CHECK_EQ(c.gpr[2], 0xf2e2d2c2b2a2cdefULL);
	/* R10, 64 bits, with LOCK. */
	store_cpu(&c, 64);
	CHECK_EQ(run_store(64, "\xf0\x4c\x87\x13", 4, &c, &st), 0);
	CHECK_EQ(st.value, 0xfaeadacabaaa9a8aULL);
	CHECK_EQ(c.gpr[10], OLD_VALUE);
}

TEST(mmio_store_stos_steps_rdi_and_rcx)
{
	struct mmio_cpu c;
	struct mmio_store st;

	/* STOSD in 64-bit mode: RDI += 4; with DF, -= 4; STOSB: 1; STOSQ: 8. */
	store_cpu(&c, 64);
	c.gpr[7] = 0xfee00080;
	CHECK_EQ(run_store(64, "\xab", 1, &c, &st), 0);
	CHECK_EQ(c.gpr[7], 0xfee00084);
	CHECK_EQ(st.length, 1);
	c.gpr[7] = 0xfee00080;
	c.rflags |= 1ULL << 10;
	CHECK_EQ(run_store(64, "\xab", 1, &c, &st), 0);
	CHECK_EQ(c.gpr[7], 0xfee0007c);
	CHECK_EQ(c.rflags & RFLAGS_ARITH, 1); /* flags as they were */
	c.rflags &= ~(1ULL << 10);
	CHECK_EQ(run_store(64, "\xaa", 1, &c, &st), 0);
	CHECK_EQ(c.gpr[7], 0xfee0007d);
	CHECK_EQ(run_store(64, "\x48\xab", 2, &c, &st), 0);
	CHECK_EQ(c.gpr[7], 0xfee00085);
	CHECK_EQ(c.gpr[1], 0xf1e1d1c1b1a19181ULL); /* no REP: RCX untouched */

	/* 67h: EDI, zero-extended into RDI (as Bochs 2.7 and the SDM's 32-bit register writes). */
	store_cpu(&c, 64);
	c.gpr[7] = 0x12345678fffffffeULL;
	CHECK_EQ(run_store(64, "\x67\xab", 2, &c, &st), 0);
	CHECK_EQ(c.gpr[7], 0x2);

	/* 16-bit addressing: DI wraps in 16 bits, bits 63:16 kept. */
	store_cpu(&c, 16);
	c.gpr[7] = 0xabcd0000ffffULL;
	CHECK_EQ(run_store(16, "\xab", 1, &c, &st), 0);
	CHECK_EQ(st.size, 2);
	CHECK_EQ(c.gpr[7], 0xabcd00000001ULL);

	/* REP with iterations left: one store, RCX - 1, RIP stays (length 0) to run the next one. */
	store_cpu(&c, 64);
	c.gpr[1] = 3;
	c.gpr[7] = 0xfee00080;
	CHECK_EQ(run_store(64, "\xf3\xab", 2, &c, &st), 0);
	CHECK(st.write);
	CHECK_EQ(st.length, 0);
	CHECK_EQ(c.gpr[1], 2);
	CHECK_EQ(c.gpr[7], 0xfee00084);
	c.gpr[1] = 1;
	CHECK_EQ(run_store(64, "\xf3\xab", 2, &c, &st), 0);
	CHECK_EQ(st.length, 2);
	CHECK_EQ(c.gpr[1], 0);
	/* A zero count: no store, nothing changed, the instruction is done. */
	CHECK_EQ(run_store(64, "\xf3\xab", 2, &c, &st), 0);
	CHECK(!st.write);
	CHECK_EQ(st.length, 2);
	CHECK_EQ(c.gpr[7], 0xfee00088);
	/* F2 (REPNE) repeats STOS like F3. */
	c.gpr[1] = 2;
	CHECK_EQ(run_store(64, "\xf2\xab", 2, &c, &st), 0);
	CHECK_EQ(st.length, 0);
	CHECK_EQ(c.gpr[1], 1);
	/* 67h REP: the count is ECX (RCX's upper half ignored), written back zero-extended. */
	c.gpr[1] = 0xffffffff00000000ULL;
	CHECK_EQ(run_store(64, "\x67\xf3\xab", 3, &c, &st), 0);
	CHECK(!st.write);
	c.gpr[1] = 0xffffffff00000001ULL;
	CHECK_EQ(run_store(64, "\x67\xf3\xab", 3, &c, &st), 0);
	CHECK(st.write);
	CHECK_EQ(st.length, 3);
	CHECK_EQ(c.gpr[1], 0);
	/* 16-bit: CX. */
	store_cpu(&c, 16);
	c.gpr[1] = 0x50000;
	CHECK_EQ(run_store(16, "\xf3\xab", 2, &c, &st), 0);
	CHECK(!st.write);
	c.gpr[1] = 0x50002;
	CHECK_EQ(run_store(16, "\xf3\xab", 2, &c, &st), 0);
	CHECK_EQ(c.gpr[1], 0x50001);
	CHECK_EQ(st.length, 0);
}

TEST(mmio_store_alu_sets_rflags)
{
	struct mmio_cpu c;
	struct mmio_store st;
	u64 fl;

	/* add %eax,(%rbx): 0x89abcdef + 0xb0a09080 = 0x13a4c5e6f: CF, OF (two negatives, positive sum). */
	store_cpu(&c, 64);
	CHECK_EQ(run_store(64, "\x01\x03", 2, &c, &st), 0);
	fl = 0x3;
	CHECK_EQ(st.value, mmio_alu(ALU_ADD, 4, OLD_VALUE, 0xb0a09080, &fl));
	CHECK_EQ(c.rflags, fl);
	CHECK_EQ(c.rflags & (RFLAGS_CF | RFLAGS_OF | RFLAGS_ZF), RFLAGS_CF | RFLAGS_OF);
	/* NOT: no flags. */
	store_cpu(&c, 64);
	c.rflags = 0x8d7;
	CHECK_EQ(run_store(64, "\xf7\x13", 2, &c, &st), 0);
	CHECK_EQ(c.rflags, 0x8d7);
	/* BTS $0,(%rbx): old bit 0 of 0x...ef is 1: CF=1, nothing else changed. */
	store_cpu(&c, 64);
	c.rflags = 0x8d6;
	CHECK_EQ(run_store(64, "\x0f\xba\x2b\x00", 4, &c, &st), 0);
	CHECK_EQ(c.rflags, 0x8d7);
	/* BTR $4: bit 4 of 0xef is 0: CF cleared. */
	CHECK_EQ(run_store(64, "\x0f\xba\x33\x04", 4, &c, &st), 0);
	CHECK_EQ(c.rflags, 0x8d6);
	/* INC keeps CF; DEC of 0x...ef gives 0x...ee. */
	store_cpu(&c, 64);
	CHECK_EQ(run_store(64, "\xff\x0b", 2, &c, &st), 0);
	CHECK_EQ(st.value, 0x89abcdee);
	CHECK_EQ(c.rflags & RFLAGS_CF, RFLAGS_CF);
	CHECK_EQ(c.rflags & RFLAGS_SF, RFLAGS_SF);
	/* Logic ops: CF OF AF cleared; xor %eax,(%rbx) with itself is not possible, so and with 0. */
	store_cpu(&c, 64);
	c.rflags = 0x8d7 & ~RFLAGS_ZF;
	CHECK_EQ(run_store(64, "\x83\x23\x00", 3, &c, &st), 0);
	CHECK_EQ(st.value, 0);
	CHECK_EQ(c.rflags & RFLAGS_ARITH, RFLAGS_ZF | RFLAGS_PF);
}

/* Not stores this emulator handles: refused, with nothing read or changed (the runtime injects #GP). */
TEST(mmio_store_refused_forms)
{
	static const struct {
		u32 bits;
		const char *bytes;
		u32 len;
		const char *what;
	} cases[] = {
		{ 64, "\x39\x03", 2, "cmp %eax,(%rbx): no store" },
		{ 64, "\x83\x3b\x01", 3, "cmpl $1,(%rbx)" },
		{ 64, "\xf7\x03\x01\x00\x00\x00", 6, "testl $1,(%rbx)" },
		{ 64, "\xf7\x23", 2, "mull (%rbx)" },
		{ 64, "\xff\x33", 2, "pushq (%rbx): stores to the stack" },
		{ 64, "\xff\x13", 2, "call *(%rbx)" },
		{ 64, "\x0f\xba\x23\x03", 4, "btl $3,(%rbx)" },
		{ 64, "\x0f\xa3\x03", 3, "bt %eax,(%rbx)" },
		{ 64, "\xf0\x89\x03", 3, "lock mov: #UD on the CPU" },
		{ 64, "\xf0\xab", 2, "lock stos" },
		{ 64, "\xa5", 1, "movsl" },
		{ 64, "\x66\x0f\x7e\x03", 4, "movd %xmm0,(%rbx)" },
		{ 64, "\x0f\xb1\x0b", 3, "cmpxchg %ecx,(%rbx)" },
		{ 64, "\x0f\xc1\x0b", 3, "xadd %ecx,(%rbx)" },
		{ 64, "\xd1\x23", 2, "shll (%rbx)" },
		{ 64, "\x0f\x95\x03", 3, "setne (%rbx)" },
		{ 64, "\x89\xc3", 2, "mov %eax,%ebx: register destination" },
		{ 64, "\xff\xc0", 2, "inc %eax" },
		{ 64, "\xc7\xc8\x01\x00\x00\x00", 6, "c7 /1" },
		{ 64, "\x82\x0b\x01", 3, "82 is invalid in 64-bit mode" },
		{ 64, "\x66\x0f\xc3\x03", 4, "66 0f c3: not MOVNTI" },
		{ 64, "\xf3\x0f\xc3\x03", 4, "f3 0f c3: not MOVNTI" },
		{ 64, "\x0f\xc3\xc3", 3, "movnti to a register" },
		{ 64, "\x0f", 1, "lone 0f" },
		{ 64, "\x66\x66\x66", 3, "prefixes only" },
		{ 64, "\x48", 1, "REX only" },
		{ 64, "\x26\x2e\x36\x3e\x64\x65\x66\x67\x26\x2e\x36\x3e\x64\x65\x89\x03", 16,
		  "16 bytes: longer than an instruction may be" },
		{ 32, "\x48\x89\x03", 3, "48 is DEC EAX in 32-bit mode: not a store" },
	};

	for (u32 k = 0; k < ARRAY_SIZE(cases); k++) {
		struct mmio_cpu c, ref;
		struct mmio_store st;
		struct reads r = { 0 };

		store_cpu(&c, cases[k].bits);
		ref = c;
		if (!CHECK_EQ(emulate_exact(cases[k].bytes, cases[k].len, &c, &r, &st), -1) || !CHECK_EQ(r.calls, 0) ||
		    !CHECK(memcmp(&c, &ref, sizeof(c)) == 0))
			unit_fail(__FILE__, __LINE__, "  in \"%s\"", cases[k].what);
	}
}

/* ------------------------------------------------------------------------------------------------
 * mmio_alu against the host CPU running the same instruction on memory.
 */
#if defined(__x86_64__)
/* The host's red zone is below RSP: step over it before pushing. */
#define HOST(text)                                                                                      \
	__asm__ volatile("lea -128(%%rsp), %%rsp\n\tpush %[f]\n\tpopfq\n\t" text "\n\t"                 \
			 "pushfq\n\tpop %[f]\n\tlea 128(%%rsp), %%rsp"                                  \
			 : [f] "+r"(f)                                                                  \
			 : [p] "r"(&mem), [s] "r"(s)                                                    \
			 : "memory", "cc")
#define BINARY(op, mn)                                                                                  \
	case op * 16 + 1: HOST(mn "b %b[s], (%[p])"); break;                                            \
	case op * 16 + 2: HOST(mn "w %w[s], (%[p])"); break;                                            \
	case op * 16 + 4: HOST(mn "l %k[s], (%[p])"); break;                                            \
	case op * 16 + 8: HOST(mn "q %q[s], (%[p])"); break;
#define UNARY(op, mn)                                                                                   \
	case op * 16 + 1: HOST(mn "b (%[p])"); break;                                                   \
	case op * 16 + 2: HOST(mn "w (%[p])"); break;                                                   \
	case op * 16 + 4: HOST(mn "l (%[p])"); break;                                                   \
	case op * 16 + 8: HOST(mn "q (%[p])"); break;
#define BITS(op, mn)                                                                                    \
	case op * 16 + 2: HOST(mn "w %w[s], (%[p])"); break;                                            \
	case op * 16 + 4: HOST(mn "l %k[s], (%[p])"); break;                                            \
	case op * 16 + 8: HOST(mn "q %q[s], (%[p])"); break;

static u64 host_alu(enum mmio_alu op, u32 size, u64 dst, u64 src, u64 *rflags)
{
	u64 mem = dst, f = *rflags, s = src;

	switch (op * 16 + size) {
	BINARY(ALU_ADD, "add")
	BINARY(ALU_OR, "or")
	BINARY(ALU_ADC, "adc")
	BINARY(ALU_SBB, "sbb")
	BINARY(ALU_AND, "and")
	BINARY(ALU_SUB, "sub")
	BINARY(ALU_XOR, "xor")
	UNARY(ALU_INC, "inc")
	UNARY(ALU_DEC, "dec")
	UNARY(ALU_NOT, "not")
	UNARY(ALU_NEG, "neg")
	BITS(ALU_BTS, "bts")
	BITS(ALU_BTR, "btr")
	BITS(ALU_BTC, "btc")
	}
	*rflags = f;
	return size == 8 ? mem : mem & ((1ULL << (8 * size)) - 1);
}

TEST(mmio_alu_matches_the_host_cpu)
{
	static const u64 values[] = {
		0, 1, 2, 0x0f, 0x10, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
		0xffffffff, 0x7fffffffffffffffULL, 0x8000000000000000ULL, ~0ULL, 0x0123456789abcdefULL,
		0xfedcba9876543210ULL, 0x5555aaaa5555aaaaULL,
	};
	static const u64 flags_in[] = { 0x2, 0x3, 0x2 | RFLAGS_ARITH };
	static const u32 sizes[] = { 1, 2, 4, 8 };
	u32 failures = 0;

	for (u32 op = ALU_ADD; op <= ALU_BTC; op++)
		for (u32 z = 0; z < ARRAY_SIZE(sizes); z++)
			for (u32 i = 0; i < ARRAY_SIZE(values); i++)
				for (u32 j = 0; j < ARRAY_SIZE(values); j++)
					for (u32 f = 0; f < ARRAY_SIZE(flags_in); f++) {
						u32 size = sizes[z];
						u64 src = values[j], fl_host = flags_in[f], fl = flags_in[f], cmp = RFLAGS_ARITH;
						u64 want, got;

						if (op >= ALU_BTS) {
							if (size == 1)
								continue; /* no byte form */
							/* In range: a larger register offset moves the host's access. */
							src &= 8 * size - 1;
							cmp = RFLAGS_CF; /* the rest undefined */
						}
						if (op == ALU_OR || op == ALU_AND || op == ALU_XOR)
							cmp &= ~RFLAGS_AF; /* undefined */
						want = host_alu(op, size, values[i], src, &fl_host);
						got = mmio_alu(op, size, values[i], src, &fl);
						if (got != want || (fl & cmp) != (fl_host & cmp)) {
							if (failures++ < 10)
								unit_fail(__FILE__, __LINE__,
									  "op %u size %u: 0x%llx, 0x%llx, flags 0x%llx: "
									  "result 0x%llx flags 0x%llx, host 0x%llx 0x%llx",
									  op, size, (unsigned long long)values[i],
									  (unsigned long long)src,
									  (unsigned long long)flags_in[f],
									  (unsigned long long)got, (unsigned long long)fl,
									  (unsigned long long)want, (unsigned long long)fl_host);
						}
						/* What the SDM leaves undefined is left as it was (BT*), AF cleared
						 * (logic), and nothing outside the arithmetic flags moves. */
						if (op >= ALU_BTS)
							CHECK_EQ(fl & ~RFLAGS_CF, flags_in[f] & ~RFLAGS_CF);
						else if (op == ALU_OR || op == ALU_AND || op == ALU_XOR)
							CHECK_EQ(fl & RFLAGS_AF, 0);
						CHECK_EQ(fl & ~RFLAGS_ARITH, flags_in[f] & ~RFLAGS_ARITH);
					}
	CHECK_EQ(failures, 0);
}
#endif

/* The rights guest_linear_walk reports: R/W and U/S ANDed over every paging-structure entry (SDM
 * 4.6.1), the PAE PDPTEs (which have neither bit) left out; both without paging. */
static u32 rights_of(struct gmem *m, enum guest_paging mode, u64 cr3, const u64 *pdpte, bool pse, u64 linear)
{
	u64 gpa;
	struct guest_walk w = { .rights = 0xdead };

	CHECK_EQ(guest_linear_walk(mode, cr3, pdpte, pse, linear, read_phys, m, &gpa, &w), 0);
	return w.rights;
}

TEST(paging_rights)
{
	struct gmem *m = gmem_new();
	const u64 pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	const u64 W = GUEST_PAGE_WRITE, U = GUEST_PAGE_USER;

	CHECK_EQ(rights_of(m, GUEST_PAGING_NONE, 0, NULL, false, 0x1234), W | U);
	/* 4-level: 0x1000 through PML4E 0, PDPTE 0, PDE 0, PTE 1; 0x200000 a 2 MiB page (PDE 1). */
	put64(m, pml4, pdpt | US | RW | P);
	put64(m, pdpt, pd | US | RW | P);
	put64(m, pd, pt | US | RW | P);
	put64(m, pt + 8, 0x345000 | US | RW | P);
	put64(m, pd + 8, 0x400000 | PS | US | P);
	CHECK_EQ(rights_of(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x1000), W | U);
	CHECK_EQ(rights_of(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x200000), U);
	put64(m, pt + 8, 0x345000 | RW | P);
	CHECK_EQ(rights_of(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x1000), W);
	put64(m, pt + 8, 0x345000 | US | RW | P);
	put64(m, pdpt, pd | US | P);                  /* read-only high up: nothing below is writable */
	CHECK_EQ(rights_of(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x1000), U);
	put64(m, pml4, pdpt | RW | P);
	CHECK_EQ(rights_of(m, GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x1000), 0);
	/* PAE: the PDPTE's bits 1 and 2 are reserved, not rights. */
	{
		const u64 pdpte[4] = { pd | P, 0, 0, 0 };
		put64(m, pd, pt | US | RW | P);
		CHECK_EQ(rights_of(m, GUEST_PAGING_PAE, 0, pdpte, false, 0x1000), W | U);
	}
	/* 32-bit paging: PDE and PTE; a 4 MiB page with PSE. */
	put32(m, 0x20000, 0x21000 | US | RW | P);
	put32(m, 0x21000 + 4, 0x345000 | US | P);
	put32(m, 0x20000 + 4, 0x400000 | PS | RW | P);
	CHECK_EQ(rights_of(m, GUEST_PAGING_32, 0x20000, NULL, false, 0x1000), U);
	CHECK_EQ(rights_of(m, GUEST_PAGING_32, 0x20000, NULL, true, 0x400000), W);
	gmem_free(m);
}

/* The entries guest_linear_walk used, for the accessed and dirty flags: every level down to the leaf
 * (a large page ends early), not the PAE PDPTEs; 4-byte entries in 32-bit paging. */
TEST(paging_walk_entries)
{
	struct gmem *m = gmem_new();
	const u64 pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	struct guest_walk w;
	u64 gpa;

	put64(m, pml4, pdpt | RW | P);
	put64(m, pdpt, pd | RW | P);
	put64(m, pd, pt | RW | P);
	put64(m, pt + 8, 0x345000 | RW | P);
	put64(m, pd + 8, 0x400000 | PS | RW | P);
	CHECK_EQ(guest_linear_walk(GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x1234, read_phys, m, &gpa, &w), 0);
	CHECK_EQ(w.nentries, 4);
	CHECK_EQ(w.entry_bytes, 8);
	CHECK_EQ(w.entry[0], pml4);
	CHECK_EQ(w.entry[1], pdpt);
	CHECK_EQ(w.entry[2], pd);
	CHECK_EQ(w.entry[3], pt + 8);
	CHECK_EQ(guest_linear_walk(GUEST_PAGING_4LEVEL, pml4, NULL, false, 0x200000, read_phys, m, &gpa, &w), 0);
	CHECK_EQ(w.nentries, 3);
	CHECK_EQ(w.entry[2], pd + 8);
	{
		const u64 pdpte[4] = { pd | P, 0, 0, 0 };
		CHECK_EQ(guest_linear_walk(GUEST_PAGING_PAE, 0, pdpte, false, 0x1234, read_phys, m, &gpa, &w), 0);
		CHECK_EQ(w.nentries, 2);
		CHECK_EQ(w.entry[0], pd);
		CHECK_EQ(w.entry[1], pt + 8);
	}
	put32(m, 0x20000, 0x21000 | RW | P);
	put32(m, 0x21000 + 4, 0x345000 | P);
	CHECK_EQ(guest_linear_walk(GUEST_PAGING_32, 0x20000, NULL, false, 0x1234, read_phys, m, &gpa, &w), 0);
	CHECK_EQ(w.nentries, 2);
	CHECK_EQ(w.entry_bytes, 4);
	CHECK_EQ(w.entry[0], 0x20000);
	CHECK_EQ(w.entry[1], 0x21004);
	CHECK_EQ(guest_linear_walk(GUEST_PAGING_NONE, 0, NULL, false, 0x1234, read_phys, m, &gpa, &w), 0);
	CHECK_EQ(w.nentries, 0);
	gmem_free(m);
}
