/* Segment descriptors -> VMCS segment fields (see lib/segdesc.h). */
#include <lib/segdesc.h>
#include <lib/string.h>

static int bad(const char **err, const char *why)
{
	*err = why;
	return -1;
}

void seg_decode(u64 d, struct vmx_segment *out)
{
	out->ar = (u32)((d >> 40) & 0xf0ff);
	out->limit = (u32)((d & 0xffff) | ((d >> 32) & 0xf0000));
	if (out->ar & SEG_AR_G)
		out->limit = (out->limit << 12) | 0xfff;
	out->base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
}

int seg_from_gdt(const u8 *gdt, u32 gdt_limit, u16 sel, enum seg_kind kind, struct vmx_segment *out,
		 const char **err)
{
	u32 index = sel & ~7U;
	bool system = kind == SEG_TR || kind == SEG_LDTR;
	u64 d, hi = 0;

	*err = NULL;
	out->sel = sel;
	if (index == 0) {
		if (kind == SEG_CODE)
			return bad(err, "CS is a null selector");
		out->base = 0;
		if (kind == SEG_TR) {
			out->limit = 0x67;
			out->ar = SEG_AR_P | 0xb; /* busy 64-bit TSS */
		} else {
			out->limit = 0;
			out->ar = SEG_AR_UNUSABLE;
		}
		return 0;
	}
	if (sel & 4)
		return bad(err, "the selector points into the LDT");
	if ((u64)index + (system ? 15 : 7) > gdt_limit)
		return bad(err, "the selector is beyond the GDT limit");
	memcpy(&d, gdt + index, 8);
	if (system)
		memcpy(&hi, gdt + index + 8, 8);
	seg_decode(d, out);
	if (system)
		out->base |= (hi & 0xffffffffULL) << 32;
	if (!(out->ar & SEG_AR_P))
		return bad(err, "the descriptor is not present");
	switch (kind) {
	case SEG_CODE:
		if (!(out->ar & SEG_AR_S) || !(out->ar & 8))
			return bad(err, "CS does not name a code segment");
		if (!(out->ar & SEG_AR_L) || (out->ar & SEG_AR_DB))
			return bad(err, "CS is not a 64-bit code segment (L=1, D=0)");
		out->ar |= 1; /* accessed: VM entry requires it of CS (27.3.1.2) */
		break;
	case SEG_DATA:
		if (!(out->ar & SEG_AR_S) || ((out->ar & 8) && !(out->ar & 2)))
			return bad(err, "a data segment register names a system or execute-only descriptor");
		out->ar |= 1; /* accessed: VM entry requires it of usable data segments (27.3.1.2) */
		break;
	case SEG_TR:
		if ((out->ar & SEG_AR_S) || ((out->ar & 0xf) != 0x9 && (out->ar & 0xf) != 0xb))
			return bad(err, "TR does not name a 64-bit TSS");
		out->ar |= 2; /* TR holds a busy TSS once loaded */
		break;
	case SEG_LDTR:
		if ((out->ar & SEG_AR_S) || (out->ar & 0xf) != 0x2)
			return bad(err, "LDTR does not name an LDT");
		break;
	}
	return 0;
}

bool seg_access_ok(const struct vmx_segment *s, u32 offset, u32 size, bool write)
{
	u32 type = s->ar & 0xf;
	u64 end = (u64)offset + size - 1;

	if ((s->ar & SEG_AR_UNUSABLE) || !(s->ar & SEG_AR_S))
		return false;
	if (type & 8) { /* code: never written, read only when readable */
		if (write || !(type & 2))
			return false;
	} else if (write && !(type & 2)) {
		return false;
	}
	if (!(type & 8) && (type & 4)) /* expand-down data: offsets above the limit */
		return offset > s->limit && end <= ((s->ar & SEG_AR_DB) ? 0xffffffffULL : 0xffffULL);
	return (s->limit == 0xffffffffu && s->base == 0) || end <= s->limit;
}
