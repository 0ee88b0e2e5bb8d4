/* One guest store to a trapped MMIO page, emulated from its instruction bytes (lib/mmio-store.h).
 * Encoding: SDM Vol. 2, 2.1-2.2 (prefixes, REX, ModR/M, SIB, displacement, immediate) and the
 * opcode maps of Appendix A; behaviour: each instruction's page in Vol. 2, chapters 3-4. */
#include <lib/mmio-store.h>
#include <lib/insn.h>

#define REG_RAX 0
#define REG_RCX 1
#define REG_RDI 7

static u64 size_mask(u32 size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* PF: set when the low byte of the result has an even number of 1 bits. */
static bool parity_even(u64 v)
{
	u8 b = (u8)v;

	b ^= b >> 4;
	b ^= b >> 2;
	b ^= b >> 1;
	return !(b & 1);
}

u64 mmio_alu(enum mmio_alu op, u32 size, u64 dst, u64 src, u64 *rflags)
{
	u64 mask = size_mask(size), sign = 1ULL << (8 * size - 1), fl = *rflags, r;
	bool cf = (fl & RFLAGS_CF) != 0, of = false, af = false;
	u64 carry_in = cf;
	u32 bit;

	dst &= mask;
	src &= mask;
	switch (op) {
	case ALU_ADD:
	case ALU_ADC:
		if (op == ALU_ADD)
			carry_in = 0;
		r = (dst + src + carry_in) & mask;
		cf = carry_in ? r <= dst : r < dst;
		of = ((dst ^ r) & (src ^ r) & sign) != 0;
		af = ((dst ^ src ^ r) & 0x10) != 0;
		break;
	case ALU_SUB:
	case ALU_SBB:
		if (op == ALU_SUB)
			carry_in = 0;
		r = (dst - src - carry_in) & mask;
		cf = carry_in ? dst <= src : dst < src; /* borrow: dst < src + carry_in */
		of = ((dst ^ src) & (dst ^ r) & sign) != 0;
		af = ((dst ^ src ^ r) & 0x10) != 0;
		break;
	case ALU_OR:
	case ALU_AND:
	case ALU_XOR:
		/* CF and OF cleared; AF undefined (cleared: Bochs's lazy flags give 0). */
		r = op == ALU_OR ? dst | src : op == ALU_AND ? dst & src : dst ^ src;
		cf = false;
		break;
	case ALU_INC:
	case ALU_DEC:
		/* As ADD/SUB of 1, but CF is not affected. */
		r = (op == ALU_INC ? dst + 1 : dst - 1) & mask;
		of = op == ALU_INC ? r == sign : dst == sign;
		af = ((dst ^ 1 ^ r) & 0x10) != 0;
		break;
	case ALU_NEG:
		/* 0 - dst: CF = (dst != 0). */
		r = (0 - dst) & mask;
		cf = dst != 0;
		of = dst == sign;
		af = ((dst ^ r) & 0x10) != 0;
		break;
	case ALU_NOT:
		return ~dst & mask; /* no flags */
	case ALU_BTS:
	case ALU_BTR:
	case ALU_BTC:
		/* CF = the bit before; OF SF AF PF undefined, ZF unaffected: left as they were. The bit
		 * offset is taken modulo the operand size: the CPU has already applied the part that
		 * selects the dword (the address that faulted). */
		bit = (u32)(src & (8 * size - 1));
		cf = (dst >> bit) & 1;
		r = op == ALU_BTS ? dst | (1ULL << bit) : op == ALU_BTR ? dst & ~(1ULL << bit) : dst ^ (1ULL << bit);
		*rflags = (fl & ~RFLAGS_CF) | (cf ? RFLAGS_CF : 0);
		return r & mask;
	default:
		return dst;
	}
	fl &= ~RFLAGS_ARITH;
	fl |= (cf ? RFLAGS_CF : 0) | (of ? RFLAGS_OF : 0) | (af ? RFLAGS_AF : 0) | (r == 0 ? RFLAGS_ZF : 0) |
	      ((r & sign) ? RFLAGS_SF : 0) | (parity_even(r) ? RFLAGS_PF : 0);
	*rflags = fl;
	return r;
}

/* Byte registers 4-7 without any REX prefix are AH CH DH BH (SDM Vol. 2, 3.1.1.1); with one, SPL BPL
 * SIL DIL. */
static u64 reg_read(const struct mmio_cpu *c, u32 r, u32 size, u8 rex)
{
	if (size == 1 && !rex && r >= 4 && r < 8)
		return (c->gpr[r - 4] >> 8) & 0xff;
	return c->gpr[r] & size_mask(size);
}

static void reg_write(struct mmio_cpu *c, u32 r, u32 size, u8 rex, u64 v)
{
	if (size == 1 && !rex && r >= 4 && r < 8)
		c->gpr[r - 4] = (c->gpr[r - 4] & ~0xff00ULL) | ((v & 0xff) << 8);
	else if (size == 4)
		c->gpr[r] = (u32)v; /* a 32-bit result is zero-extended (SDM Vol. 1, 3.4.1.1) */
	else
		c->gpr[r] = (c->gpr[r] & ~size_mask(size)) | (v & size_mask(size));
}

static u64 sign_extend(u64 v, u32 from_bytes)
{
	u64 sign = 1ULL << (8 * from_bytes - 1);

	v &= size_mask(from_bytes);
	return (v ^ sign) - sign;
}

enum form {
	F_NONE,
	F_MOV_REG,  /* 88/89, MOVNTI: the register is stored */
	F_MOV_AX,   /* A2/A3: AL/rAX to a moffs */
	F_MOV_IMM,  /* C6/C7 /0 */
	F_XCHG,     /* 86/87 */
	F_STOS,     /* AA/AB */
	F_ALU_REG,  /* dst op reg: 00-31, 0F AB/B3/BB */
	F_ALU_IMM,  /* dst op imm: 80-83, 0F BA */
	F_ALU_NONE, /* INC DEC NOT NEG */
};

int mmio_store_emulate(const u8 *b, u32 avail, struct mmio_cpu *cpu, mmio_read_fn read, void *ctx,
		       struct mmio_store *out)
{
	struct mmio_cpu c = *cpu;
	u32 lim = avail < 15 ? avail : 15, i = 0, abits, vsize, size, imm_bytes = 0, reg = 0;
	bool opsize = false, addrsize = false, lock = false, rep = false, mandatory = false, two = false,
	     byte = false, modrm = true;
	enum form form = F_NONE;
	enum mmio_alu alu = ALU_ADD;
	u8 rex = 0, op;
	u64 imm = 0, value = 0;

	/* Legacy prefixes in any order; a REX prefix counts only right before the opcode (2.2.1). */
	for (;; i++) {
		if (i >= lim)
			return -1;
		u8 p = b[i];
		if (cpu->cs_bits == 64 && (p & 0xf0) == 0x40) {
			rex = p;
			continue;
		}
		if (p == 0x66)
			opsize = true;
		else if (p == 0x67)
			addrsize = true;
		else if (p == 0xf0)
			lock = true;
		else if (p == 0xf2 || p == 0xf3)
			rep = true; /* REP for STOS; XACQUIRE/XRELEASE hints otherwise */
		else if (p != 0x26 && p != 0x2e && p != 0x36 && p != 0x3e && p != 0x64 && p != 0x65)
			break;
		rex = 0;
	}
	op = b[i++];
	if (op == 0x0f) {
		if (i >= lim)
			return -1;
		op = b[i++];
		two = true;
	}
	if (cpu->cs_bits == 64)
		abits = addrsize ? 32 : 64;
	else if (cpu->cs_bits == 32)
		abits = addrsize ? 16 : 32;
	else
		abits = addrsize ? 32 : 16;
	vsize = (rex & 8) ? 8 : cpu->cs_bits == 16 ? (opsize ? 4 : 2) : (opsize ? 2 : 4);

	if (!two) {
		if (op <= 0x31 && (op & 7) <= 1 && (op >> 3) <= 6) {
			form = F_ALU_REG;
			alu = (enum mmio_alu)(op >> 3);
			byte = !(op & 1);
		} else if (op >= 0x80 && op <= 0x83 && !(op == 0x82 && cpu->cs_bits == 64)) {
			form = F_ALU_IMM; /* the operation is the ModR/M reg field, below */
			byte = op != 0x81 && op != 0x83;
			imm_bytes = op == 0x81 ? (vsize == 2 ? 2 : 4) : 1;
		} else if (op == 0x88 || op == 0x89) {
			form = F_MOV_REG;
			byte = op == 0x88;
		} else if (op == 0x86 || op == 0x87) {
			form = F_XCHG;
			byte = op == 0x86;
		} else if (op == 0xc6 || op == 0xc7) {
			form = F_MOV_IMM;
			byte = op == 0xc6;
			imm_bytes = byte ? 1 : vsize == 2 ? 2 : 4;
		} else if (op == 0xfe || op == 0xff || op == 0xf6 || op == 0xf7) {
			form = F_ALU_NONE;
			byte = !(op & 1);
		} else if (op == 0xa2 || op == 0xa3) {
			form = F_MOV_AX;
			byte = op == 0xa2;
			modrm = false;
		} else if (op == 0xaa || op == 0xab) {
			form = F_STOS;
			byte = op == 0xaa;
			modrm = false;
		}
	} else if (op == 0xab || op == 0xb3 || op == 0xbb) {
		form = F_ALU_REG;
		alu = op == 0xab ? ALU_BTS : op == 0xb3 ? ALU_BTR : ALU_BTC;
	} else if (op == 0xba) {
		form = F_ALU_IMM;
		imm_bytes = 1;
	} else if (op == 0xc3) {
		form = F_MOV_REG; /* MOVNTI: 32 or 64 bits; with 66, F2 or F3 it is not MOVNTI */
		mandatory = true;
	}
	if (form == F_NONE)
		return -1;
	if (mandatory && (opsize || rep))
		return -1;
	/* LOCK only with a read-modify-write destination (else #UD, which the CPU raised already). */
	if (lock && (form == F_MOV_REG || form == F_MOV_AX || form == F_MOV_IMM || form == F_STOS))
		return -1;
	size = byte ? 1 : vsize;

	if (modrm) {
		int mlen = insn_modrm_length(b + i, lim - i, abits);
		u8 m;

		if (mlen < 0 || i + (u32)mlen > lim)
			return -1;
		m = b[i];
		if ((m >> 6) == 3)
			return -1; /* a register destination: not a store */
		reg = ((m >> 3) & 7) | ((rex & 4) ? 8 : 0);
		i += (u32)mlen;
		switch (two ? 0x100 | op : op) {
		case 0x80: case 0x81: case 0x82: case 0x83:
			if ((reg & 7) == 7)
				return -1; /* CMP: no store */
			alu = (enum mmio_alu)(reg & 7);
			break;
		case 0xc6: case 0xc7:
			if ((reg & 7) != 0)
				return -1;
			break;
		case 0xfe: case 0xff:
			if ((reg & 7) > 1)
				return -1; /* CALL, JMP, PUSH: not stores to the operand */
			alu = (reg & 7) ? ALU_DEC : ALU_INC;
			break;
		case 0xf6: case 0xf7:
			if ((reg & 7) != 2 && (reg & 7) != 3)
				return -1; /* TEST, MUL, DIV: no store */
			alu = (reg & 7) == 2 ? ALU_NOT : ALU_NEG;
			break;
		case 0x1ba:
			if ((reg & 7) < 5)
				return -1; /* BT: no store */
			alu = (reg & 7) == 5 ? ALU_BTS : (reg & 7) == 6 ? ALU_BTR : ALU_BTC;
			break;
		case 0x1c3:
			size = (rex & 8) ? 8 : 4;
			break;
		}
	} else if (form == F_MOV_AX) {
		i += abits / 8; /* moffs: as wide as the address size (2.2.1.4) */
	}
	if (i + imm_bytes > lim)
		return -1;
	for (u32 k = 0; k < imm_bytes; k++)
		imm |= (u64)b[i + k] << (8 * k);
	i += imm_bytes;
	if (imm_bytes)
		imm = sign_extend(imm, imm_bytes) & size_mask(size); /* 83, 0F BA ib; imm32 for 64 bits */

	*out = (struct mmio_store){ .length = i, .size = size, .write = true, .opcode = op, .two_byte = two };
	switch (form) {
	case F_MOV_REG:
		value = reg_read(&c, reg, size, rex);
		break;
	case F_MOV_AX:
		value = reg_read(&c, REG_RAX, size, rex);
		break;
	case F_MOV_IMM:
		value = imm;
		break;
	case F_XCHG: {
		u64 old = read(ctx, size);
		value = reg_read(&c, reg, size, rex);
		reg_write(&c, reg, size, rex, old);
		break;
	}
	case F_STOS: {
		/* rCX and rDI as wide as the address size; DF steps down (SDM Vol. 2, STOS, REP). */
		u64 amask = size_mask(abits / 8), count = c.gpr[REG_RCX] & amask;
		u64 rdi = c.gpr[REG_RDI] & amask;

		value = reg_read(&c, REG_RAX, size, rex);
		if (rep && count == 0) {
			out->write = false;
			break;
		}
		rdi = (c.rflags & (1ULL << 10)) ? rdi - size : rdi + size;
		reg_write(&c, REG_RDI, abits / 8, 0, rdi);
		if (rep) {
			reg_write(&c, REG_RCX, abits / 8, 0, --count);
			if (count)
				out->length = 0; /* the next iteration runs the instruction again */
		}
		break;
	}
	case F_ALU_REG:
		value = mmio_alu(alu, size, read(ctx, size), reg_read(&c, reg, size, rex), &c.rflags);
		break;
	case F_ALU_IMM:
		value = mmio_alu(alu, size, read(ctx, size), imm, &c.rflags);
		break;
	case F_ALU_NONE:
		value = mmio_alu(alu, size, read(ctx, size), 0, &c.rflags);
		break;
	case F_NONE:
		return -1;
	}
	out->value = value & size_mask(size);
	*cpu = c;
	return 0;
}
