/* CPU errata the guest is told about: see lib/cpu-errata.h. */
#include <lib/cpu-errata.h>

void cpu_ident_signature(struct cpu_ident *id, u32 eax)
{
	u32 base = (eax >> 8) & 0xf, model = (eax >> 4) & 0xf;

	if (base == 0x6 || base == 0xf)
		model |= ((eax >> 16) & 0xf) << 4;
	id->family = base == 0xf ? base + ((eax >> 20) & 0xff) : base;
	id->model = model;
	id->stepping = eax & 0xf;
}

/* Intel family 6 models whose TSC-deadline timer has an erratum below a microcode revision (from Intel's
 * specification updates; the same list as Linux's deadline_match in arch/x86/kernel/apic/apic.c):
 * steppings first..last (0..0xff: all), and the first revision with the fix. */
static const struct {
	u8 model, first, last;
	u32 fixed_in;
} deadline_models[] = {
	{ 0x3f, 0x2, 0x2, 0x3a },       /* Haswell-EP */
	{ 0x3f, 0x4, 0x4, 0x0f },       /* Haswell-EX */
	{ 0x4f, 0x0, 0xff, 0x0b000020 }, /* Broadwell-EP/EX */
	{ 0x56, 0x2, 0x2, 0x00000011 }, /* Broadwell-DE */
	{ 0x56, 0x3, 0x3, 0x0700000e },
	{ 0x56, 0x4, 0x4, 0x0f00000c },
	{ 0x56, 0x5, 0x5, 0x0e000003 },
	{ 0x55, 0x3, 0x3, 0x01000136 }, /* Skylake-SP */
	{ 0x55, 0x4, 0x4, 0x02000014 }, /* (Bochs's corei7_skylake_x: stepping 4, microcode 0) */
	{ 0x55, 0x5, 0xf, 0 },          /* Cascade Lake and later: fixed */
	{ 0x3c, 0x0, 0xff, 0x22 },      /* Haswell */
	{ 0x45, 0x0, 0xff, 0x20 },      /* Haswell mobile */
	{ 0x46, 0x0, 0xff, 0x17 },      /* Haswell with GT3e */
	{ 0x3d, 0x0, 0xff, 0x25 },      /* Broadwell */
	{ 0x47, 0x0, 0xff, 0x17 },      /* Broadwell with GT3e */
	{ 0x4e, 0x0, 0xff, 0xb2 },      /* Skylake mobile */
	{ 0x5e, 0x0, 0xff, 0xb2 },      /* Skylake desktop */
	{ 0x8e, 0x0, 0xff, 0x52 },      /* Kaby Lake mobile */
	{ 0x9e, 0x0, 0xff, 0x52 },      /* Kaby Lake desktop */
};

bool cpu_tsc_deadline_erratum(const struct cpu_ident *id)
{
	if (!id->intel || id->hypervisor || id->family != 6)
		return false;
	/* The first row that matches decides. */
	for (u32 i = 0; i < sizeof(deadline_models) / sizeof(deadline_models[0]); i++)
		if (id->model == deadline_models[i].model && id->stepping >= deadline_models[i].first &&
		    id->stepping <= deadline_models[i].last)
			return id->microcode < deadline_models[i].fixed_in;
	return false;
}
