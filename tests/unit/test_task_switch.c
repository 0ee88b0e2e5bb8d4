/* Hardware task switch emulation (lib/task-switch.c) on a flat 64 KiB guest memory, paging off. */
#include <lib/task-switch.h>
#include "unit.h"

#define MEM 0x10000u
#define GDT 0x1000u
#define TSS_A 0x2000u /* the current task */
#define TSS_B 0x2100u
#define TSS_16 0x2200u
#define LDT 0x3000u
#define STACK_B 0x8000u

/* GDT slots */
enum { SEL_CODE = 0x08, SEL_DATA = 0x10, SEL_TSS_A = 0x18, SEL_TSS_B = 0x20, SEL_TSS_16 = 0x28,
       SEL_LDT = 0x30, SEL_CODE_XO = 0x38, SEL_DATA_NP = 0x40, SEL_CODE3 = 0x48 };

struct fake {
	unsigned char m[MEM];
	unsigned fault_at; /* a linear address whose access faults (0: none) */
	int faults, cr3_loads;
	unsigned long long last_cr3;
};

static bool fake_read(void *ctx, u64 la, void *buf, u32 n)
{
	struct fake *f = ctx;
	if (la + n > MEM || (f->fault_at && la <= f->fault_at && f->fault_at < la + n)) {
		f->faults++;
		return false;
	}
	memcpy(buf, f->m + la, n);
	return true;
}

static bool fake_write(void *ctx, u64 la, const void *buf, u32 n)
{
	struct fake *f = ctx;
	if (la + n > MEM || (f->fault_at && la <= f->fault_at && f->fault_at < la + n)) {
		f->faults++;
		return false;
	}
	memcpy(f->m + la, buf, n);
	return true;
}

static bool fake_cr3(void *ctx, u64 cr3)
{
	struct fake *f = ctx;
	f->cr3_loads++;
	f->last_cr3 = cr3;
	return true;
}

static void put32(struct fake *f, u32 a, u32 v) { memcpy(f->m + a, &v, 4); }
static void put16(struct fake *f, u32 a, u16 v) { memcpy(f->m + a, &v, 2); }
static u32 get32(struct fake *f, u32 a) { u32 v; memcpy(&v, f->m + a, 4); return v; }
static u16 get16(struct fake *f, u32 a) { u16 v; memcpy(&v, f->m + a, 2); return v; }

/* A descriptor: base, limit (bytes, G=0 if < 1 MiB), access byte, flags nibble (G D/B L AVL). */
static void desc(struct fake *f, u32 slot_addr, u32 base, u32 limit, u8 access, u8 flags)
{
	u32 lo = (limit & 0xffff) | (base << 16);
	u32 hi = ((base >> 16) & 0xff) | ((u32)access << 8) | (limit & 0xf0000) | ((u32)flags << 20) |
		 (base & 0xff000000u);
	put32(f, slot_addr, lo);
	put32(f, slot_addr + 4, hi);
}

static void setup(struct fake *f, struct ts_cpu *c, struct ts_env *env)
{
	memset(f, 0, sizeof(*f));
	memset(c, 0, sizeof(*c));
	desc(f, GDT + SEL_CODE, 0, 0xfffff, 0x9b, 0xc);     /* ring-0 code, 4 GiB, accessed */
	desc(f, GDT + SEL_DATA, 0, 0xfffff, 0x92, 0xc);     /* ring-0 data, not accessed */
	desc(f, GDT + SEL_TSS_A, TSS_A, 0x67, 0x8b, 0);     /* busy 32-bit TSS */
	desc(f, GDT + SEL_TSS_B, TSS_B, 0x67, 0x89, 0);     /* available 32-bit TSS */
	desc(f, GDT + SEL_TSS_16, TSS_16, 0x2b, 0x81, 0);   /* available 16-bit TSS */
	desc(f, GDT + SEL_LDT, LDT, 0x17, 0x82, 0);
	desc(f, GDT + SEL_CODE_XO, 0, 0xfffff, 0x99, 0xc);  /* execute-only code */
	desc(f, GDT + SEL_DATA_NP, 0, 0xfffff, 0x12, 0xc);  /* data, not present */
	desc(f, GDT + SEL_CODE3, 0, 0xfffff, 0xfb, 0xc);    /* ring-3 code */
	desc(f, LDT + 8, 0x100000, 0xffff, 0x93, 0x4);       /* LDT slot 1: data at 1 MiB */
	/* Task B: EIP 0x4000, registers 0x11..0x88, flat segments, its own stack. */
	put32(f, TSS_B + 0x1c, 0x5000); /* CR3 */
	put32(f, TSS_B + 0x20, 0x4000);
	put32(f, TSS_B + 0x24, 0x202);
	for (u32 i = 0; i < 8; i++)
		put32(f, TSS_B + 0x28 + 4 * i, 0x11 * (i + 1));
	put32(f, TSS_B + 0x38, STACK_B);
	put16(f, TSS_B + 0x48, SEL_DATA);
	put16(f, TSS_B + 0x4c, SEL_CODE);
	put16(f, TSS_B + 0x50, SEL_DATA);
	put16(f, TSS_B + 0x54, SEL_DATA);
	/* 16-bit task: IP 0x1234, AX 0xaaaa, SP 0x7000, DS in the LDT. */
	put16(f, TSS_16 + 14, 0x1234);
	put16(f, TSS_16 + 16, 0x2);
	put16(f, TSS_16 + 18, 0xaaaa);
	put16(f, TSS_16 + 26, 0x7000);
	put16(f, TSS_16 + 34, SEL_DATA);
	put16(f, TSS_16 + 36, SEL_CODE);
	put16(f, TSS_16 + 38, SEL_DATA);
	put16(f, TSS_16 + 40, 0x0c); /* LDT slot 1, TI */
	put16(f, TSS_16 + 42, SEL_LDT);

	c->gdtr_base = GDT;
	c->gdtr_limit = 0x4f;
	for (u32 i = TS_ES; i <= TS_GS; i++)
		c->seg[i] = (struct vmx_segment){ .sel = SEL_DATA, .limit = 0xffffffff, .ar = 0xc093, .base = 0 };
	c->seg[TS_CS] = (struct vmx_segment){ .sel = SEL_CODE, .limit = 0xffffffff, .ar = 0xc09b, .base = 0 };
	c->seg[TS_LDTR] = (struct vmx_segment){ .sel = 0, .limit = 0, .ar = SEG_AR_UNUSABLE, .base = 0 };
	c->seg[TS_TR] = (struct vmx_segment){ .sel = SEL_TSS_A, .limit = 0x67, .ar = 0x8b, .base = TSS_A };
	for (u32 i = 0; i < 8; i++)
		c->gpr[i] = 0xa0 + i;
	c->rip = 0x1000;
	c->rflags = 0x4246; /* NT, ZF, PF */
	c->cr0 = 0x11;
	c->cr3 = 0x9000;
	c->dr7 = 0x7ff;
	*env = (struct ts_env){ fake_read, fake_write, fake_cr3, true, f };
}

static bool busy(struct fake *f, u32 sel)
{
	return (get32(f, GDT + sel + 4) >> 9) & 1;
}

TEST(task_switch_descriptor_fields)
{
	/* base 0x12345678, limit 0xabcde pages, type 0xb, S, DPL 3, P, G, D/B */
	struct vmx_segment s;

	seg_decode((u64)0x12cafb34 << 32 | 0x5678bcde, &s);
	CHECK_EQ(s.base, 0x12345678);
	CHECK_EQ(s.limit, 0xabcdefff);
	CHECK_EQ(s.ar, 0xc0fb);
}

TEST(task_switch_jmp_saves_loads_and_moves_busy)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_B, TS_FROM_JMP, 0x1007, false, 0 };

	setup(&f, &c, &env);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed);
	CHECK_EQ(out.vector, -1);
	CHECK(!out.mem_fault);
	/* old task's state in TSS A */
	CHECK_EQ(get32(&f, TSS_A + 0x20), 0x1007);
	CHECK_EQ(get32(&f, TSS_A + 0x24), 0x4246); /* NT kept on JMP */
	CHECK_EQ(get32(&f, TSS_A + 0x28), 0xa0);
	CHECK_EQ(get32(&f, TSS_A + 0x44), 0xa7);
	CHECK_EQ(get16(&f, TSS_A + 0x4c), SEL_CODE);
	CHECK_EQ(get16(&f, TSS_A + 0x5c), SEL_DATA);
	CHECK_EQ(get16(&f, TSS_B), 0); /* no link on JMP */
	CHECK(!busy(&f, SEL_TSS_A));
	CHECK(busy(&f, SEL_TSS_B));
	/* new task's state */
	CHECK_EQ(c.rip, 0x4000);
	CHECK_EQ(c.rflags, 0x202);
	CHECK_EQ(c.gpr[0], 0x11);
	CHECK_EQ(c.gpr[4], STACK_B);
	CHECK_EQ(c.gpr[7], 0x88);
	CHECK_EQ(c.seg[TS_TR].sel, SEL_TSS_B);
	CHECK_EQ(c.seg[TS_TR].base, TSS_B);
	CHECK_EQ(c.seg[TS_TR].ar, 0x8b);
	CHECK_EQ(c.cr0, 0x19); /* TS */
	CHECK_EQ(c.dr7, 0x7ff & ~0x155);
	CHECK_EQ(c.cr3, 0x5000);
	CHECK_EQ(f.cr3_loads, 1);
	CHECK_EQ(c.seg[TS_SS].ar, 0xc093); /* accessed set */
	CHECK_EQ(get32(&f, GDT + SEL_DATA + 4) & 0x100, 0x100);
	CHECK(c.seg[TS_FS].ar & SEG_AR_UNUSABLE); /* null FS in B's TSS */
	CHECK(c.seg[TS_LDTR].ar & SEG_AR_UNUSABLE);
	CHECK_EQ(c.seg[TS_CS].ar, 0xc09b);
}

TEST(task_switch_call_links_and_iret_returns)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request call = { SEL_TSS_B, TS_FROM_CALL, 0x1007, false, 0 };
	struct ts_request iret = { SEL_TSS_A, TS_FROM_IRET, 0x4001, false, 0 };

	setup(&f, &c, &env);
	c.rflags = 0x246;
	task_switch_emulate(&c, &call, &env, &out);
	CHECK(out.committed && out.vector == -1);
	CHECK_EQ(get16(&f, TSS_B), SEL_TSS_A); /* back link */
	CHECK(busy(&f, SEL_TSS_A));
	CHECK(busy(&f, SEL_TSS_B));
	CHECK_EQ(c.rflags, 0x4202); /* NT set */
	/* IRET back: B's saved EFLAGS have NT clear, B is free again, A resumes after the CALL. */
	task_switch_emulate(&c, &iret, &env, &out);
	CHECK(out.committed && out.vector == -1);
	CHECK_EQ(get32(&f, TSS_B + 0x24), 0x202);
	CHECK_EQ(get32(&f, TSS_B + 0x20), 0x4001);
	CHECK(!busy(&f, SEL_TSS_B));
	CHECK(busy(&f, SEL_TSS_A));
	CHECK_EQ(c.rip, 0x1007);
	CHECK_EQ(c.rflags, 0x246);
	CHECK_EQ(c.gpr[0], 0xa0);
}

TEST(task_switch_gate_pushes_error_code)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_B, TS_FROM_GATE, 0x1000, true, 0x1234 };

	setup(&f, &c, &env);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed && out.vector == -1);
	CHECK_EQ(c.gpr[4], STACK_B - 4);
	CHECK_EQ(get32(&f, STACK_B - 4), 0x1234);
	CHECK_EQ(get16(&f, TSS_B), SEL_TSS_A);
	CHECK_EQ(c.rflags & (1u << 14), 1u << 14);
}

TEST(task_switch_16bit_tss_with_ldt)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_16, TS_FROM_JMP, 0x1007, false, 0 };

	setup(&f, &c, &env);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed && out.vector == -1);
	CHECK_EQ(c.rip, 0x1234);
	CHECK_EQ(c.gpr[0], 0xffffaaaa);
	CHECK_EQ(c.gpr[4], 0xffff7000);
	CHECK_EQ(c.seg[TS_LDTR].base, LDT);
	CHECK_EQ(c.seg[TS_DS].base, 0x100000);
	CHECK(c.seg[TS_GS].ar & SEG_AR_UNUSABLE);
	CHECK_EQ(c.seg[TS_TR].ar, 0x83);
	CHECK_EQ(f.cr3_loads, 0); /* no CR3 in a 16-bit TSS */
	CHECK_EQ(c.cr3, 0x9000);
}

TEST(task_switch_faults_before_commit_change_nothing)
{
	struct fake f;
	struct ts_cpu c, before;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_B, TS_FROM_JMP, 0x1007, false, 0 };
	unsigned char mem_before[MEM];

	/* old TSS too small for the save area: #TS(old TR) */
	setup(&f, &c, &env);
	c.seg[TS_TR].limit = 0x5e;
	before = c;
	memcpy(mem_before, f.m, MEM);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(!out.committed);
	CHECK_EQ(out.vector, 10);
	CHECK_EQ(out.error_code, SEL_TSS_A);
	CHECK(!memcmp(&c, &before, sizeof(c)));
	CHECK(!memcmp(mem_before, f.m, MEM));

	/* the new TSS's last byte faults: nothing written */
	setup(&f, &c, &env);
	f.fault_at = TSS_B + 0x60;
	before = c;
	memcpy(mem_before, f.m, MEM);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(!out.committed && out.mem_fault && out.vector == -1);
	CHECK(!memcmp(&c, &before, sizeof(c)));
	CHECK(!memcmp(mem_before, f.m, MEM));

	/* the old TSS's save area faults: nothing written either */
	setup(&f, &c, &env);
	f.fault_at = TSS_A + 0x5c;
	memcpy(mem_before, f.m, MEM);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(!out.committed && out.mem_fault);
	CHECK(!memcmp(mem_before, f.m, MEM));
}

TEST(task_switch_faults_after_commit_in_new_task)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_B, TS_FROM_JMP, 0x1007, false, 0 };

	/* DS is execute-only code: #TS(DS); ES..GS and CS not loaded yet */
	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x54, SEL_CODE_XO);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed);
	CHECK_EQ(out.vector, 10);
	CHECK_EQ(out.error_code, SEL_CODE_XO);
	CHECK_EQ(c.seg[TS_TR].sel, SEL_TSS_B);
	CHECK_EQ(c.seg[TS_DS].sel, SEL_CODE_XO);
	CHECK(c.seg[TS_DS].ar & SEG_AR_UNUSABLE);
	CHECK(!(c.seg[TS_SS].ar & SEG_AR_UNUSABLE));
	CHECK(busy(&f, SEL_TSS_B));

	/* ES not present: #NP(ES) */
	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x48, SEL_DATA_NP | 0);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK_EQ(out.vector, 11);
	CHECK_EQ(out.error_code, SEL_DATA_NP);

	/* SS RPL 3 with a ring-0 CS: #TS(SS) */
	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x50, SEL_DATA | 3);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK_EQ(out.vector, 10);
	CHECK_EQ(out.error_code, SEL_DATA);

	/* LDT selector with TI set: #TS */
	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x60, SEL_LDT | 4);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK_EQ(out.vector, 10);
	CHECK_EQ(out.error_code, SEL_LDT | 4);

	/* ring-3 CS with ring-0 SS: #TS(SS), checked before CS */
	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x4c, SEL_CODE3 | 3);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK_EQ(out.vector, 10);
	CHECK_EQ(out.error_code, SEL_DATA);

	/* EIP beyond CS's limit: #GP(0) after everything loaded */
	setup(&f, &c, &env);
	desc(&f, GDT + SEL_CODE, 0, 0x3fff, 0x9b, 0x4);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK_EQ(out.vector, 13);
	CHECK_EQ(out.error_code, 0);
	CHECK_EQ(c.seg[TS_CS].limit, 0x3fff);
}

TEST(task_switch_trap_flag_and_vm86)
{
	struct fake f;
	struct ts_cpu c;
	struct ts_env env;
	struct ts_outcome out;
	struct ts_request req = { SEL_TSS_B, TS_FROM_JMP, 0x1007, false, 0 };

	setup(&f, &c, &env);
	put16(&f, TSS_B + 0x64, 1);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed && out.vector == -1 && out.debug_trap);

	setup(&f, &c, &env);
	put32(&f, TSS_B + 0x24, 0x20202); /* VM */
	put16(&f, TSS_B + 0x4c, 0x1234);
	task_switch_emulate(&c, &req, &env, &out);
	CHECK(out.committed && out.vector == -1);
	CHECK_EQ(c.seg[TS_CS].base, 0x12340);
	CHECK_EQ(c.seg[TS_CS].ar, 0xf3);
	CHECK_EQ(c.seg[TS_SS].limit, 0xffff);
}
