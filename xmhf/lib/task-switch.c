/* Hardware task switch emulation (SDM Vol. 3, 7.3); see lib/task-switch.h. */
#include <lib/task-switch.h>
#include <lib/string.h>

#define EFL_NT (1u << 14)
#define EFL_VM (1u << 17)
/* The EFLAGS bits a task switch loads (CF PF AF ZF SF TF IF DF OF IOPL NT RF VM AC VIF VIP ID); bit 1
 * is always set. */
#define EFL_LOADABLE 0x003f7fd5u
#define CR0_TS_BIT (1ULL << 3)
#define DR7_LOCAL_ENABLES 0x155ULL /* L0-L3 and LE, cleared by every task switch (SDM 17.2.4) */
#define DESC_BUSY (1u << 9)	   /* in a TSS descriptor's high dword */
#define DESC_ACCESSED (1u << 8)

enum { VEC_DB = 1, VEC_TS = 10, VEC_NP = 11, VEC_SS = 12, VEC_GP = 13 };

/* AR fields (SDM 24.4.1). */
#define AR_TYPE(ar) ((ar) & 0xf)
#define AR_S(ar) (((ar) >> 4) & 1)
#define AR_DPL(ar) (((ar) >> 5) & 3)
#define AR_P(ar) (((ar) >> 7) & 1)
#define AR_DB(ar) (((ar) >> 14) & 1)
#define TYPE_CODE 8u
#define TYPE_CONFORMING 4u /* code */
#define TYPE_RW 2u	   /* readable code, writable data */

/* The VMCS form of a descriptor's two dwords. */
static struct vmx_segment decode(u32 lo, u32 hi)
{
	struct vmx_segment s = { 0, 0, 0, 0 };

	seg_decode((u64)hi << 32 | lo, &s);
	return s;
}

static u32 desc_ar(u32 lo, u32 hi)
{
	return decode(lo, hi).ar;
}

static u32 get16(const u8 *p, u32 off)
{
	return p[off] | (u32)p[off + 1] << 8;
}

static u32 get32(const u8 *p, u32 off)
{
	return get16(p, off) | get16(p, off + 2) << 16;
}

static void put16(u8 *p, u32 off, u32 v)
{
	p[off] = (u8)v;
	p[off + 1] = (u8)(v >> 8);
}

static void put32(u8 *p, u32 off, u32 v)
{
	put16(p, off, v);
	put16(p, off + 2, v >> 16);
}

/* Linear addresses outside 64-bit mode are 32 bits wide: they wrap at 4 GiB. */
static bool rd(const struct ts_env *env, u64 la, void *buf, u32 n)
{
	return env->read(env->ctx, (u32)la, buf, n);
}

static bool wr(const struct ts_env *env, u64 la, const void *buf, u32 n)
{
	return env->write(env->ctx, (u32)la, buf, n);
}

struct desc {
	u32 lo, hi;
	u64 addr; /* linear address of the descriptor */
};

enum fetch { FETCH_OK, FETCH_LIMIT, FETCH_FAULT };

/* The descriptor a selector names, from the GDT or (TI = 1) the current LDT. */
static enum fetch fetch_desc(const struct ts_cpu *c, const struct ts_env *env, u32 sel, struct desc *d)
{
	u64 base = c->gdtr_base;
	u32 limit = c->gdtr_limit, v[2];

	if (sel & 4) {
		if (c->seg[TS_LDTR].ar & SEG_AR_UNUSABLE)
			return FETCH_LIMIT;
		base = c->seg[TS_LDTR].base;
		limit = c->seg[TS_LDTR].limit;
	}
	if ((sel & ~7u) + 7 > limit)
		return FETCH_LIMIT;
	d->addr = base + (sel & ~7u);
	if (!rd(env, d->addr, v, 8))
		return FETCH_FAULT;
	d->lo = v[0];
	d->hi = v[1];
	return FETCH_OK;
}

/* Loading a segment sets its descriptor's accessed flag (SDM 3.4.5.1), as the CPU does. */
static bool touch(const struct ts_env *env, struct desc *d)
{
	u8 byte;

	if (d->hi & DESC_ACCESSED)
		return true;
	d->hi |= DESC_ACCESSED;
	byte = (u8)(d->hi >> 8);
	return wr(env, d->addr + 5, &byte, 1);
}

static void load(struct vmx_segment *s, const struct desc *d)
{
	struct vmx_segment v = decode(d->lo, d->hi);

	s->base = v.base;
	s->limit = v.limit;
	s->ar = v.ar;
}

/* Outcome helpers: each returns false so callers can write 'return fault(...)'. */
static bool fault(struct ts_outcome *out, int vector, u32 error_code)
{
	out->vector = vector;
	out->error_code = error_code;
	return false;
}

static bool mem_fault(struct ts_outcome *out)
{
	out->mem_fault = true;
	return false;
}

/* The new task's segment registers (SDM 7.3 step 13; Bochs task_switch and task_switch_load_selector):
 * what each may hold, and which fault when it may not. */
enum seg_role { ROLE_DATA, ROLE_SS, ROLE_CS };

static bool load_segment(struct ts_cpu *c, const struct ts_env *env, enum ts_seg i, enum seg_role role,
			 struct ts_outcome *out)
{
	struct vmx_segment *s = &c->seg[i];
	u32 sel = s->sel, rpl = sel & 3, cs_rpl = c->seg[TS_CS].sel & 3u, ar, type, dpl;
	bool bad_type, bad_dpl;
	struct desc d;
	enum fetch f;

	if (!(sel & 0xfffc)) /* null: DS-GS stay unusable; SS and CS may not be null */
		return role == ROLE_DATA ? true : fault(out, VEC_TS, sel & 0xfffc);
	f = fetch_desc(c, env, sel, &d);
	if (f == FETCH_FAULT)
		return mem_fault(out);
	if (f == FETCH_LIMIT)
		return fault(out, VEC_TS, sel & 0xfffc);
	ar = desc_ar(d.lo, d.hi);
	type = AR_TYPE(ar);
	dpl = AR_DPL(ar);
	switch (role) {
	case ROLE_DATA: /* data or readable code; data and non-conforming code need RPL, CPL <= DPL */
		bad_type = !AR_S(ar) || ((type & TYPE_CODE) && !(type & TYPE_RW));
		bad_dpl = (!(type & TYPE_CODE) || !(type & TYPE_CONFORMING)) && (rpl > dpl || cs_rpl > dpl);
		break;
	case ROLE_SS: /* writable data, DPL = CS.RPL = SS.RPL; not present is #SS, checked before DPL */
		bad_type = !AR_S(ar) || (type & TYPE_CODE) || !(type & TYPE_RW);
		bad_dpl = dpl != cs_rpl || dpl != rpl;
		if (!bad_type && !AR_P(ar))
			return fault(out, VEC_SS, sel & 0xfffc);
		break;
	default: /* code; non-conforming DPL = RPL, conforming DPL <= RPL */
		bad_type = !AR_S(ar) || !(type & TYPE_CODE);
		bad_dpl = (type & TYPE_CONFORMING) ? dpl > rpl : dpl != rpl;
		break;
	}
	if (bad_type || bad_dpl)
		return fault(out, VEC_TS, sel & 0xfffc);
	if (!AR_P(ar))
		return fault(out, VEC_NP, sel & 0xfffc);
	if (!touch(env, &d))
		return mem_fault(out);
	load(s, &d);
	return true;
}

static bool load_ldtr(struct ts_cpu *c, const struct ts_env *env, struct ts_outcome *out)
{
	struct vmx_segment *s = &c->seg[TS_LDTR];
	u32 sel = s->sel, ar;
	struct desc d;
	enum fetch f;

	if (sel & 4) /* the LDT's descriptor must be in the GDT */
		return fault(out, VEC_TS, sel & 0xfffc);
	if (!(sel & 0xfffc))
		return true;
	f = fetch_desc(c, env, sel, &d);
	if (f == FETCH_FAULT)
		return mem_fault(out);
	ar = desc_ar(d.lo, d.hi);
	if (f == FETCH_LIMIT || AR_S(ar) || AR_TYPE(ar) != 2 || !AR_P(ar))
		return fault(out, VEC_TS, sel & 0xfffc);
	load(s, &d);
	return true;
}

/* The error code of an exception delivered through a task gate goes on the new task's stack. */
static bool push_error_code(struct ts_cpu *c, const struct ts_env *env, bool tss32, u32 error_code,
			    struct ts_outcome *out)
{
	struct vmx_segment *ss = &c->seg[TS_SS];
	u32 size = tss32 ? 4 : 2, top = AR_DB(ss->ar) ? 0xffffffffu : 0xffffu;
	u32 sp = (u32)c->gpr[4] & top, new_sp = (sp - size) & top;
	u8 buf[4];

	if (!seg_access_ok(ss, new_sp, size, true))
		return fault(out, VEC_SS, 0);
	put32(buf, 0, error_code);
	if (!wr(env, ss->base + new_sp, buf, size))
		return mem_fault(out);
	c->gpr[4] = AR_DB(ss->ar) ? new_sp : ((c->gpr[4] & ~0xffffULL) | new_sp);
	return true;
}

/* TSS layouts (SDM 7.2.1 and 7.6): where each saved field lives. EIP, EFLAGS and the registers are
 * dwords in a 32-bit TSS and words in a 16-bit one; selectors are words in both, 4 bytes apart in a
 * 32-bit TSS; a 16-bit TSS has no FS and GS. Loading a 16-bit TSS, the upper halves of the registers
 * read as ones and FS/GS become null, as on Bochs (SDM 7.6 leaves them unspecified). */
struct tss_layout {
	u32 size;      /* bytes up to the last field the switch reads (limit + 1) */
	u32 save_off;  /* first byte of the save area (EIP/IP) */
	u32 save_size; /* up to the last selector saved */
	u32 eflags, gpr, word, es, sel_step, ldt;
	u32 last_sel;  /* the last segment register the TSS holds */
	u32 gpr_fill;  /* what the bits above the word hold when a register is loaded */
};
static const struct tss_layout tss32_layout = { 0x68, 0x20, 0x40, 0x24, 0x28, 4, 0x48, 4, 0x60, TS_GS, 0 };
static const struct tss_layout tss16_layout = { 0x2c, 0x0e, 0x1c, 0x10, 0x12, 2, 0x22, 2, 0x2a, TS_DS,
						0xffff0000u };

static bool switch_tasks(struct ts_cpu *c, const struct ts_request *req, const struct ts_env *env,
			 struct ts_outcome *out)
{
	struct vmx_segment *tr = &c->seg[TS_TR];
	bool call_like = req->source == TS_FROM_CALL || req->source == TS_FROM_GATE;
	bool jmp_or_iret = req->source == TS_FROM_JMP || req->source == TS_FROM_IRET;
	u32 sel = req->selector, ntype, nbase, nlimit, eflags;
	const struct tss_layout *nl, *ol;
	u8 tss[0x68], save[0x40];
	struct desc nd;

	/* The new TSS's descriptor. The CPU checked it before the exit; it is read again from guest
	 * memory, so it is checked again as the CPU would have (SDM 7.3 steps 2-3). */
	if ((sel & 4) || (sel & ~7u) + 7 > c->gdtr_limit)
		return fault(out, VEC_GP, sel & 0xfffc);
	nd.addr = c->gdtr_base + (sel & ~7u);
	{
		u32 v[2];
		if (!rd(env, nd.addr, v, 8))
			return mem_fault(out);
		nd.lo = v[0];
		nd.hi = v[1];
	}
	ntype = AR_TYPE(desc_ar(nd.lo, nd.hi));
	if (AR_S(desc_ar(nd.lo, nd.hi)) || (ntype & 5) != 1)
		return fault(out, VEC_GP, sel & 0xfffc);
	nl = (ntype & 8) ? &tss32_layout : &tss16_layout;
	ol = (AR_TYPE(tr->ar) & 8) ? &tss32_layout : &tss16_layout;
	nbase = (u32)decode(nd.lo, nd.hi).base;
	nlimit = decode(nd.lo, nd.hi).limit;
	if (nlimit < nl->size - 1)
		return fault(out, VEC_TS, sel & 0xfffc);
	/* The old TSS must hold the whole save area (0x5f / 0x29: up to GS / DS). */
	if (tr->limit < ol->save_off + ol->save_size - 1)
		return fault(out, VEC_TS, tr->sel & 0xfffc);
	/* Every access the switch makes before the commit point is tried first, so that a #PF leaves
	 * everything unchanged (Bochs probes the same pages). */
	if (!rd(env, nbase, tss, nl->size) || (call_like && !wr(env, nbase, tss, 2)))
		return mem_fault(out);

	/* Save the old task's state (step 5); IRET clears NT in the saved image (step 4). */
	if (!rd(env, tr->base + ol->save_off, save, ol->save_size))
		return mem_fault(out);
	eflags = (u32)c->rflags & (req->source == TS_FROM_IRET ? ~EFL_NT : ~0u);
	void (*put)(u8 *, u32, u32) = ol->word == 4 ? put32 : put16;
	put(save, 0, (u32)req->return_rip);
	put(save, ol->eflags - ol->save_off, eflags);
	for (u32 i = 0; i < 8; i++)
		put(save, ol->gpr - ol->save_off + ol->word * i, (u32)c->gpr[i]);
	for (u32 i = TS_ES; i <= ol->last_sel; i++)
		put16(save, ol->es - ol->save_off + ol->sel_step * i, c->seg[i].sel);
	if (!wr(env, tr->base + ol->save_off, save, ol->save_size))
		return mem_fault(out);

	/* Busy flags and the link (steps 4, 7, 10; SDM Table 7-2). */
	if (jmp_or_iret) {
		u32 hi;
		u64 a = c->gdtr_base + (tr->sel & ~7u) + 4;
		if (!rd(env, a, &hi, 4))
			return mem_fault(out);
		hi &= ~DESC_BUSY;
		if (!wr(env, a, &hi, 4))
			return mem_fault(out);
	}
	if (call_like) {
		u8 link[2];
		put16(link, 0, tr->sel);
		if (!wr(env, nbase, link, 2))
			return mem_fault(out);
	}
	/* Read the new task's state after the writes: the two TSSs may be the same or overlap. */
	if (!rd(env, nbase, tss, nl->size))
		return mem_fault(out);
	if (req->source != TS_FROM_IRET) {
		nd.hi |= DESC_BUSY;
		if (!wr(env, nd.addr + 4, &nd.hi, 4))
			return mem_fault(out);
	}

	/* Commit point (step 8 on): TR, CR0.TS, DR7, then the new task's registers. Segment registers
	 * get their selectors now and their descriptors as each passes its checks; a fault on the way is
	 * delivered in the new task with the rest unusable. */
	out->committed = true;
	tr->sel = (u16)sel;
	tr->base = nbase;
	tr->limit = nlimit;
	tr->ar = desc_ar(nd.lo, nd.hi) | 2;
	c->cr0 |= CR0_TS_BIT;
	c->dr7 &= ~DR7_LOCAL_ENABLES;
	u32 (*get)(const u8 *, u32) = nl->word == 4 ? get32 : get16;
	c->rip = get(tss, nl->save_off);
	eflags = get(tss, nl->eflags);
	for (u32 i = 0; i < 8; i++)
		c->gpr[i] = nl->gpr_fill | get(tss, nl->gpr + nl->word * i);
	for (u32 i = TS_ES; i <= TS_GS; i++)
		c->seg[i].sel = i <= nl->last_sel ? (u16)get16(tss, nl->es + nl->sel_step * i) : 0;
	c->seg[TS_LDTR].sel = (u16)get16(tss, nl->ldt);
	if (call_like)
		eflags |= EFL_NT;
	c->rflags = (eflags & EFL_LOADABLE) | 2;
	for (u32 i = TS_ES; i <= TS_LDTR; i++)
		if (i != TS_CS)
			c->seg[i].ar |= SEG_AR_UNUSABLE;

	if (nl == &tss32_layout && env->paging && get32(tss, 0x1c) != (u32)c->cr3) {
		c->cr3 = get32(tss, 0x1c);
		if (!env->load_cr3(env->ctx, c->cr3))
			return fault(out, VEC_TS, 0);
	}
	if (!load_ldtr(c, env, out))
		return false;
	if (c->rflags & EFL_VM) {
		/* Virtual-8086 mode: every segment is real-mode style (SDM 20.2.1; VMX wants AR 0xf3). */
		for (u32 i = TS_ES; i <= TS_GS; i++) {
			c->seg[i].base = (u64)c->seg[i].sel << 4;
			c->seg[i].limit = 0xffff;
			c->seg[i].ar = 0xf3;
		}
	} else {
		static const enum ts_seg data[] = { TS_DS, TS_ES, TS_FS, TS_GS };

		if (!load_segment(c, env, TS_SS, ROLE_SS, out))
			return false;
		for (u32 i = 0; i < 4; i++)
			if (!load_segment(c, env, data[i], ROLE_DATA, out))
				return false;
		if (!load_segment(c, env, TS_CS, ROLE_CS, out))
			return false;
	}
	if (req->push_error && !push_error_code(c, env, nl == &tss32_layout, req->error_code, out))
		return false;
	if (c->rip > c->seg[TS_CS].limit)
		return fault(out, VEC_GP, 0);
	out->debug_trap = nl == &tss32_layout && (get16(tss, 0x64) & 1);
	return true;
}

void task_switch_emulate(struct ts_cpu *cpu, const struct ts_request *req, const struct ts_env *env,
			 struct ts_outcome *out)
{
	struct ts_cpu before = *cpu;

	*out = (struct ts_outcome){ .vector = -1 };
	switch_tasks(cpu, req, env, out);
	if (!out->committed)
		*cpu = before;
}
