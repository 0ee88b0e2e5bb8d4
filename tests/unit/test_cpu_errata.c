/* CPU errata the guest is told about (lib/cpu-errata.c): TSC-deadline mode hidden exactly where the
 * CPU's TSC-deadline timer has Intel's erratum at its microcode revision. */
#include <lib/cpu-errata.h>
#include "unit.h"

static struct cpu_ident intel(u32 signature)
{
	struct cpu_ident id = { .intel = true };

	cpu_ident_signature(&id, signature);
	return id;
}

TEST(cpu_errata_signature)
{
	struct cpu_ident id = intel(0x50654); /* Bochs corei7_skylake_x: family 6, model 0x55, stepping 4 */

	CHECK_EQ(id.family, 6);
	CHECK_EQ(id.model, 0x55);
	CHECK_EQ(id.stepping, 4);
	id = intel(0x906ed); /* Coffee Lake refresh */
	CHECK_EQ(id.model, 0x9e);
	CHECK_EQ(id.stepping, 0xd);
	cpu_ident_signature(&id, 0x00a20f12); /* AMD family 0x19: extended family added */
	CHECK_EQ(id.family, 0x19);
	CHECK_EQ(id.model, 0x21);
}

TEST(cpu_errata_tsc_deadline)
{
	struct cpu_ident skx = intel(0x50654), clx = intel(0x50657), kbl = intel(0x906e9), adl = intel(0x90672);

	/* Bochs's Skylake-X stepping 4 reports microcode 0: bare Linux turns TSC-deadline mode off. */
	CHECK(cpu_tsc_deadline_erratum(&skx));
	skx.microcode = 0x02000013;
	CHECK(cpu_tsc_deadline_erratum(&skx));
	skx.microcode = 0x02000014;
	CHECK(!cpu_tsc_deadline_erratum(&skx));
	CHECK(!cpu_tsc_deadline_erratum(&clx)); /* stepping 5 and later: fixed in any microcode */
	CHECK(cpu_tsc_deadline_erratum(&kbl));
	kbl.microcode = 0x52;
	CHECK(!cpu_tsc_deadline_erratum(&kbl));
	CHECK(!cpu_tsc_deadline_erratum(&adl)); /* not listed */
	struct cpu_ident hsx = intel(0x306f3);   /* Haswell-EP stepping 3: no row */
	CHECK(!cpu_tsc_deadline_erratum(&hsx));
	hsx = intel(0x306f2);
	CHECK(cpu_tsc_deadline_erratum(&hsx));
	/* Under another hypervisor the timer is that hypervisor's. */
	skx.microcode = 0;
	skx.hypervisor = true;
	CHECK(!cpu_tsc_deadline_erratum(&skx));
}
