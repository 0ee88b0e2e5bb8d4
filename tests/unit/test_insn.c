/* Guest instruction decoding and guest page walks (lib/insn.c).
 *
 * insn_decode_store against the SDM Vol. 2, 2.1-2.2 (prefixes, REX, ModR/M, SIB, displacement,
 * immediate; Tables 2-1/2-2/2-3 for 16- and 32-bit addressing, 2.2.1.6 for RIP-relative). The
 * encodings below were produced by GNU as (--64, --32, .code16) and their lengths checked with
 * objdump; those marked "by hand" have no assembler spelling and were worked out from the tables.
 * Each instruction is also decoded from every truncated prefix of itself (must fail, and must not
 * read past avail: the buffers are exact-size heap blocks under ASan) and with trailing bytes.
 *
 * guest_linear_to_phys against the SDM Vol. 3, 4.3 (32-bit paging, PSE-36), 4.4 (PAE) and 4.5
 * (4-level), with page tables built in a buffer standing for guest-physical memory. */
#include <stdlib.h>
#include <lib/insn.h>
#include "unit.h"

#define MOV INSN_MOV_STORE_REG
#define IMM INSN_MOV_STORE_IMM
#define XCHG INSN_XCHG_REG

struct dcase {
	u32 bits;
	const char *bytes;
	u32 len; /* = number of bytes */
	enum insn_kind kind;
	u32 size, reg;
	bool mem;
	u64 imm;
	const char *what;
};

static int decode_exact(const char *bytes, u32 avail, u32 bits, struct insn_store *out)
{
	u8 *buf = malloc(avail ? avail : 1);
	int r;

	memcpy(buf, bytes, avail);
	r = insn_decode_store(buf, avail, bits, out);
	free(buf);
	return r;
}

static void check_cases(const struct dcase *cases, u32 n)
{
	for (u32 k = 0; k < n; k++) {
		const struct dcase *c = &cases[k];
		struct insn_store s;
		u8 padded[32];
		bool ok = true;

		ok &= CHECK_EQ(decode_exact(c->bytes, c->len, c->bits, &s), 0);
		ok &= CHECK_EQ(s.kind, c->kind);
		ok &= CHECK_EQ(s.length, c->len);
		ok &= CHECK_EQ(s.size, c->size);
		ok &= CHECK_EQ(s.reg, c->reg);
		ok &= CHECK_EQ(s.mem, c->mem);
		ok &= CHECK_EQ(s.imm, c->imm);

		/* Followed by more code: the same instruction. */
		memset(padded, 0xcc, sizeof(padded));
		memcpy(padded, c->bytes, c->len);
		ok &= CHECK_EQ(insn_decode_store(padded, sizeof(padded), c->bits, &s), 0);
		ok &= CHECK_EQ(s.length, c->len);
		ok &= CHECK_EQ(s.size, c->size);
		ok &= CHECK_EQ(s.imm, c->imm);

		/* Truncated anywhere: rejected. */
		for (u32 a = 0; a < c->len; a++)
			if (!CHECK_EQ(decode_exact(c->bytes, a, c->bits, &s), -1)) {
				unit_fail(__FILE__, __LINE__, "  with avail %u", a);
				ok = false;
				break;
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
		{ 64, "\x88\x10", 2, "mov byte [rax],dl (88)" },
		{ 64, "\x8b\x10", 2, "mov edx,[rax] (8b: a load)" },
		{ 64, "\x0f\xb1\x10", 3, "cmpxchg [rax],edx (0f b1)" },
		{ 64, "\x0f\x11\x00", 3, "movups [rax],xmm0 (0f 11)" },
		{ 64, "\x0f\x38\xf1\x10", 4, "movbe [rax],edx" },
		{ 64, "\xa3\x00\x03\xe0\xfe\x00\x00\x00\x00", 9, "mov [moffs64],eax (a3)" },
		{ 32, "\xa3\x00\x03\xe0\xfe", 5, "mov [moffs32],eax (a3)" },
		{ 64, "\xc6\x00\x12", 3, "mov byte [rax],0x12 (c6)" },
		{ 64, "\x01\x10", 2, "add [rax],edx" },
		{ 64, "\x86\x10", 2, "xchg [rax],dl (86)" },
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
		struct insn_store s;
		u8 padded[32];

		if (!CHECK_EQ(decode_exact(cases[k].bytes, cases[k].n, cases[k].bits, &s), -1))
			unit_fail(__FILE__, __LINE__, "  in case \"%s\"", cases[k].what);
		/* Followed by more bytes (nops): still rejected. */
		memset(padded, 0x90, sizeof(padded));
		memcpy(padded, cases[k].bytes, cases[k].n);
		if (!CHECK_EQ(insn_decode_store(padded, sizeof(padded), cases[k].bits, &s), -1))
			unit_fail(__FILE__, __LINE__, "  in case \"%s\" (padded)", cases[k].what);
	}
}

TEST(insn_longest_accepted)
{
	/* 13 prefixes + mov [rax],edx: 15 bytes, the architectural limit. */
	static const char b[] = "\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x3e\x89\x10";
	static const char c[] = "\x3e\x3e\x3e\x66\x48\xc7\x84\x88\x00\x01\x00\x00\x78\x56\x34\x12";
	struct insn_store s;

	CHECK_EQ(decode_exact(b, 15, 64, &s), 0);
	CHECK_EQ(s.length, 15);
	CHECK_EQ(s.size, 4);
	/* 3 prefixes, REX, C7, ModR/M, SIB, disp32, imm32 = 15 bytes; with one more prefix, 16. */
	CHECK_EQ(decode_exact(c + 1, 15, 64, &s), 0);
	CHECK_EQ(s.length, 15);
	CHECK_EQ(s.size, 8);
	CHECK_EQ(s.imm, 0x12345678);
	CHECK_EQ(decode_exact(c, 16, 64, &s), -1);
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
