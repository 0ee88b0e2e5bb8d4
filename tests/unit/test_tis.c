/* The TPM FIFO protocol (lib/tis.c) against a model of the device: burst counts, the Expect bit,
 * dataAvail, locality; and TPMs that are absent, 1.2, or stop answering at each step. */
#include <lib/tis.h>
#include "unit.h"

struct model {
	u8 access;          /* TPM_ACCESS */
	u32 intf_caps;
	u32 did_vid;
	bool grant_locality;
	u32 burst;          /* burst count offered (0: the FIFO never takes or gives bytes) */
	bool ready_dead;    /* commandReady never comes */
	bool never_done;    /* tpmGo never produces a response */
	u8 cmd[64];
	u32 cmd_len;
	u32 sent_len;       /* command bytes when tpmGo was written */
	u32 expect_len;     /* command bytes the device waits for */
	bool ready, go;
	u8 resp[64];
	u32 resp_len, resp_pos;
	u32 delays;
};

static u8 m_rd8(void *ctx, u32 off)
{
	struct model *m = ctx;
	u8 sts = TIS_STS_VALID;

	switch (off) {
	case TIS_ACCESS:
		return m->access;
	case TIS_RID:
		return 1;
	case TIS_DATA_FIFO:
		return m->resp_pos < m->resp_len ? m->resp[m->resp_pos++] : 0xff;
	case TIS_STS:
		if (m->ready)
			sts |= TIS_STS_COMMAND_READY;
		if (m->cmd_len > 0 && m->cmd_len < m->expect_len)
			sts |= TIS_STS_EXPECT;
		if (m->go && !m->never_done && m->resp_pos < m->resp_len)
			sts |= TIS_STS_DATA_AVAIL;
		return sts;
	}
	return 0xff;
}

static u32 m_rd32(void *ctx, u32 off)
{
	struct model *m = ctx;

	if (off == TIS_DID_VID)
		return m->did_vid;
	if (off == TIS_INTF_CAPABILITY)
		return m->intf_caps;
	if (off == TIS_STS)
		return m_rd8(ctx, off) | (m->burst << 8);
	return 0xffffffffu;
}

static void m_wr8(void *ctx, u32 off, u8 v)
{
	struct model *m = ctx;

	if (off == TIS_ACCESS && v == TIS_ACCESS_REQUEST_USE && m->grant_locality)
		m->access |= TIS_ACCESS_ACTIVE_LOCALITY;
	if (off == TIS_ACCESS && v == TIS_ACCESS_ACTIVE_LOCALITY)
		m->access &= (u8)~TIS_ACCESS_ACTIVE_LOCALITY;
	if (off == TIS_STS && v == TIS_STS_COMMAND_READY) {
		m->ready = !m->ready_dead;
		m->cmd_len = 0;
		m->go = false;
	}
	if (off == TIS_STS && v == TIS_STS_GO) {
		m->go = true;
		m->sent_len = m->cmd_len;
	}
	if (off == TIS_DATA_FIFO && m->cmd_len < sizeof(m->cmd))
		m->cmd[m->cmd_len++] = v;
}

static void m_delay(void *ctx)
{
	((struct model *)ctx)->delays++;
}

static struct model good_tpm(void)
{
	struct model m = { .access = TIS_ACCESS_VALID, .intf_caps = 3u << 28, .did_vid = 0x00011014,
			   .grant_locality = true, .burst = 3, .expect_len = 12 };
	static const u8 r[] = { 0x80, 0x01, 0, 0, 0, 0x0e, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef };

	memcpy(m.resp, r, sizeof(r));
	m.resp_len = sizeof(r);
	return m;
}

static const u8 startup[12] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0 };

TEST(tis_probe_kinds)
{
	struct model m = good_tpm();
	struct tis_io io = { m_rd8, m_rd32, m_wr8, m_delay, &m };
	struct tis t;

	CHECK_EQ(tis_probe(&io, &t), TIS_TPM20);
	CHECK(m.access & TIS_ACCESS_ACTIVE_LOCALITY);
	CHECK_EQ(t.did_vid, 0x00011014);
	tis_release(&io);
	CHECK(!(m.access & TIS_ACCESS_ACTIVE_LOCALITY));

	m = good_tpm();
	m.access = 0xff;
	CHECK_EQ(tis_probe(&io, &t), TIS_ABSENT);
	m = good_tpm();
	m.did_vid = 0xffffffffu;
	CHECK_EQ(tis_probe(&io, &t), TIS_ABSENT);
	m = good_tpm();
	m.intf_caps = 0;
	CHECK_EQ(tis_probe(&io, &t), TIS_TPM12);
	m = good_tpm();
	m.access = 0;
	CHECK_EQ(tis_probe(&io, &t), TIS_NO_ANSWER);
	m = good_tpm();
	m.grant_locality = false;
	CHECK_EQ(tis_probe(&io, &t), TIS_NO_ANSWER);
	CHECK(m.delays >= 2000000);    /* waited PTP timeout B */
}

TEST(tis_transmit_bursts)
{
	struct model m = good_tpm();
	struct tis_io io = { m_rd8, m_rd32, m_wr8, m_delay, &m };
	u8 resp[32];
	const char *why = NULL;

	CHECK_EQ(tis_transmit(&io, startup, sizeof(startup), resp, sizeof(resp), &why), 14);
	CHECK_EQ(m.sent_len, 12);
	CHECK(memcmp(m.cmd, startup, 12) == 0);
	CHECK_EQ(resp[13], 0xef);
	CHECK(m.ready);  /* back to idle */
	CHECK(why == NULL);
}

static void expect_fail(const char *file, int line, struct model m, const char *want)
{
	struct tis_io io = { m_rd8, m_rd32, m_wr8, m_delay, &m };
	u8 resp[12];
	const char *why = "";
	u32 n = tis_transmit(&io, startup, sizeof(startup), resp, sizeof(resp), &why);

	if (n != 0 || !why || !strstr(why, want))
		unit_fail(file, line, "got %u bytes, reason '%s'; want a failure with '%s'", n, why ? why : "", want);
}
#define EXPECT_FAIL(m, want) expect_fail(__FILE__, __LINE__, m, want)

TEST(tis_transmit_failures)
{
	struct model m = good_tpm();

	m.ready_dead = true;
	EXPECT_FAIL(m, "did not become ready");
	m = good_tpm();
	m.burst = 0;
	EXPECT_FAIL(m, "took no command bytes");
	m = good_tpm();
	m.expect_len = 20;
	EXPECT_FAIL(m, "expects more command bytes");
	m = good_tpm();
	m.never_done = true;
	EXPECT_FAIL(m, "no response");
	m = good_tpm();                /* 14-byte response into a 12-byte buffer */
	EXPECT_FAIL(m, "out of range");
	m = good_tpm();
	m.resp[5] = 4;                 /* a size below the header */
	EXPECT_FAIL(m, "out of range");
}
