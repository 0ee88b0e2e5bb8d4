/* cmdline_parse: defaults, accepted forms, and every kind of rejected value. */
#include <lib/cmdline.h>
#include "unit.h"

static void check_defaults_except_unknown(const struct boot_cmdline *c)
{
	CHECK_EQ(c->baud, 115200);
	CHECK_EQ(c->data_bits, 8);
	CHECK_EQ(c->parity, 'n');
	CHECK_EQ(c->stop_bits, 1);
	CHECK_EQ(c->serial_port, 0x3f8);
	CHECK_EQ(c->boot_drive, 0x80);
	CHECK_EQ(c->on_ready, ON_READY_GUEST);
	CHECK_EQ(c->on_stop, ON_STOP_HALT);
}

TEST(cmdline_defaults)
{
	struct boot_cmdline c;
	char err[64] = "stale";

	CHECK_EQ(cmdline_parse(NULL, &c, err, sizeof(err)), 0);
	check_defaults_except_unknown(&c);
	CHECK_EQ(c.unknown_keys, 0);
	CHECK_STR_EQ(err, "");

	memset(&c, 0xa5, sizeof(c));
	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	check_defaults_except_unknown(&c);
	CHECK_EQ(c.unknown_keys, 0);

	CHECK_EQ(cmdline_parse("   \t ", &c, NULL, 0), 0);
	check_defaults_except_unknown(&c);
}

TEST(cmdline_grub_full)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("/boot/init-x86-amd64.bin serial=115200,8n1,0x3f8 boot_drive=0x80", &c, err,
			       sizeof(err)), 0);
	check_defaults_except_unknown(&c);
	CHECK_EQ(c.unknown_keys, 0);
}

TEST(cmdline_serial_forms)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("serial=9600,7e2,0x2f8", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.baud, 9600);
	CHECK_EQ(c.data_bits, 7);
	CHECK_EQ(c.parity, 'e');
	CHECK_EQ(c.stop_bits, 2);
	CHECK_EQ(c.serial_port, 0x2f8);

	CHECK_EQ(cmdline_parse("serial=115200", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.baud, 115200);
	CHECK_EQ(c.data_bits, 8);
	CHECK_EQ(c.parity, 'n');
	CHECK_EQ(c.stop_bits, 1);
	CHECK_EQ(c.serial_port, 0x3f8);

	CHECK_EQ(cmdline_parse("serial=57600,5O1", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.baud, 57600);
	CHECK_EQ(c.data_bits, 5);
	CHECK_EQ(c.parity, 'o');
	CHECK_EQ(c.serial_port, 0x3f8);

	/* Decimal port, and the largest one. */
	CHECK_EQ(cmdline_parse("serial=38400,8n1,760", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.serial_port, 760);
	CHECK_EQ(cmdline_parse("serial=38400,8n1,0xffff", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.serial_port, 0xffff);
	CHECK_EQ(cmdline_parse("serial=38400,8n1,0XE000", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.serial_port, 0xe000);
}

TEST(cmdline_boot_drive_and_on_ready)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("boot_drive=129", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.boot_drive, 129);
	CHECK_EQ(cmdline_parse("x boot_drive=0xff", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.boot_drive, 0xff);
	CHECK_EQ(cmdline_parse("boot_drive=0", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.boot_drive, 0);

	CHECK_EQ(cmdline_parse("on_ready=poweroff", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_ready, ON_READY_POWEROFF);
	CHECK_EQ(cmdline_parse("on_ready=poweroff on_ready=halt", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_ready, ON_READY_HALT);
	CHECK_EQ(c.unknown_keys, 0);
	CHECK_EQ(cmdline_parse("on_ready=guest", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_ready, ON_READY_GUEST);
	CHECK_EQ(cmdline_parse("on_ready=later", &c, err, sizeof(err)), -1);
}

TEST(cmdline_nested)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.nested, 1); /* on by default */
	CHECK_EQ(cmdline_parse("nested=0", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.nested, 0);
	CHECK_EQ(cmdline_parse("nested=1", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.nested, 1);
	CHECK_EQ(cmdline_parse("nested=yes", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "nested") != NULL);
	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.apic, APIC_AUTO);
	CHECK_EQ(cmdline_parse("apic=trap", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.apic, APIC_TRAP);
	CHECK_EQ(cmdline_parse("apic=init-exit", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.apic, APIC_INIT_EXIT);
	CHECK_EQ(cmdline_parse("apic=auto", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.apic, APIC_AUTO);
	CHECK_EQ(cmdline_parse("apic=x2", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "apic") != NULL);
}

TEST(cmdline_selftest)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("selftest=exception", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, 1);
	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, 0);
	CHECK_EQ(cmdline_parse("selftest=null", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, SELFTEST_NULL);
	CHECK_EQ(cmdline_parse("selftest=write-text", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, SELFTEST_WRITE_TEXT);
	CHECK_EQ(cmdline_parse("selftest=exec-heap", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, SELFTEST_EXEC_HEAP);
	CHECK_EQ(cmdline_parse("selftest=boom", &c, err, sizeof(err)), -1);
}

TEST(cmdline_ept01_top)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.ept01_top_gib, 0);
	CHECK_EQ(cmdline_parse("ept01_top=2", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.ept01_top_gib, 2);
	CHECK_EQ(cmdline_parse("ept01_top=0", &c, err, sizeof(err)), -1);
	CHECK_EQ(cmdline_parse("ept01_top=65536", &c, err, sizeof(err)), -1);
}

TEST(cmdline_ept02_drop)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.ept02_drop, 0);
	CHECK_EQ(cmdline_parse("ept02_drop=1", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.ept02_drop, 1);
	CHECK_EQ(cmdline_parse("ept02_drop=yes", &c, err, sizeof(err)), -1);
}

TEST(cmdline_on_stop)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("on_stop=reset", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_stop, ON_STOP_RESET);
	CHECK_EQ(cmdline_parse("on_stop=poweroff", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_stop, ON_STOP_POWEROFF);
	CHECK_EQ(cmdline_parse("on_stop=halt", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.on_stop, ON_STOP_HALT);
	CHECK_EQ(cmdline_parse("on_stop=explode", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "on_stop") != NULL);
}

TEST(cmdline_unknown_keys)
{
	struct boot_cmdline c;
	char err[64];

	/* The first word is the kernel path when it has no '='. */
	CHECK_EQ(cmdline_parse("/boot/init.bin loglvl=3 foo  serial=9600\tbar=", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.unknown_keys, 3);
	CHECK_EQ(c.baud, 9600);

	CHECK_EQ(cmdline_parse("loglvl=3 foo", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.unknown_keys, 2);
	CHECK_EQ(cmdline_parse("foo", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.unknown_keys, 0);
	/* Prefixes of known keys are not known keys. */
	CHECK_EQ(cmdline_parse("k seria=1 serial_x=2 =3", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.unknown_keys, 3);
	CHECK_EQ(c.baud, 115200);
}

/* The line must fail, and the message must start with prefix and quote the bad value. */
static void expect_fail(const char *file, int line, const char *s, const char *prefix, const char *bad)
{
	struct boot_cmdline c;
	char err[96] = "";
	char quoted[64];

	if (cmdline_parse(s, &c, err, sizeof(err)) != -1) {
		unit_fail(file, line, "\"%s\" parsed, expected failure", s);
		return;
	}
	snprintf(quoted, sizeof(quoted), "'%s'", bad);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, quoted))
		unit_fail(file, line, "\"%s\": message \"%s\" lacks \"%s\" or %s", s, err, prefix, quoted);
}

#define EXPECT_FAIL(s, prefix, bad) expect_fail(__FILE__, __LINE__, s, prefix, bad)

TEST(cmdline_errors)
{
	EXPECT_FAIL("serial=garbage", "serial: bad baud rate", "garbage");
	EXPECT_FAIL("/boot/x serial=115200,9x1,0x3f8", "serial: bad data", "9x1");
	EXPECT_FAIL("serial=115200,8n1,0xzz", "serial: bad I/O port", "0xzz");
	EXPECT_FAIL("serial=0,8n1,0x3f8", "serial: bad baud rate", "0");
	EXPECT_FAIL("serial=115200,8n1,0x10000", "serial: bad I/O port", "0x10000");
	EXPECT_FAIL("serial=115200,8n1,65536", "serial: bad I/O port", "65536");
	EXPECT_FAIL("serial=115200,8n1,0", "serial: bad I/O port", "0");
	EXPECT_FAIL("serial=115200,8n1,", "serial: bad I/O port", "");
	EXPECT_FAIL("serial=115200,8n1,0x3f8,1", "serial: bad I/O port", "0x3f8,1");
	EXPECT_FAIL("serial=", "serial: bad baud rate", "");
	EXPECT_FAIL("serial=,8n1", "serial: bad baud rate", "");
	EXPECT_FAIL("serial=115200,", "serial: bad data", "");
	EXPECT_FAIL("serial=115200,8n3", "serial: bad data", "8n3");
	EXPECT_FAIL("serial=115200,4n1", "serial: bad data", "4n1");
	EXPECT_FAIL("serial=115200,8n11", "serial: bad data", "8n11");
	EXPECT_FAIL("serial=99999999999", "serial: bad baud rate", "99999999999");
	EXPECT_FAIL("serial=0x", "serial: bad baud rate", "0x");
	EXPECT_FAIL("boot_drive=0x100", "boot_drive:", "0x100");
	EXPECT_FAIL("boot_drive=256", "boot_drive:", "256");
	EXPECT_FAIL("boot_drive=", "boot_drive:", "");
	EXPECT_FAIL("boot_drive=-1", "boot_drive:", "-1");
	EXPECT_FAIL("on_ready=maybe", "on_ready:", "maybe");
	EXPECT_FAIL("on_ready=", "on_ready:", "");
	EXPECT_FAIL("on_ready=halted", "on_ready:", "halted");
}

TEST(cmdline_error_truncated)
{
	struct boot_cmdline c;
	char err[8];

	memset(err, 'X', sizeof(err));
	CHECK_EQ(cmdline_parse("serial=garbage", &c, err, 6), -1);
	CHECK_STR_EQ(err, "seria");
	CHECK_EQ(err[6], 'X');
	/* No buffer at all is fine too. */
	CHECK_EQ(cmdline_parse("serial=garbage", &c, NULL, 0), -1);
}

TEST(cmdline_dryrun)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("serial=115200,8n1,0x3f8", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.dryrun, 0);
	CHECK_EQ(cmdline_parse("dryrun=1", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.dryrun, 1);
	CHECK_EQ(c.unknown_keys, 0);
	CHECK_EQ(cmdline_parse("dryrun=maybe", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "dryrun") != NULL);
}

TEST(cmdline_tpm_vtd)
{
	struct boot_cmdline c;
	char err[64];

	CHECK_EQ(cmdline_parse("", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.tpm, TRUST_AUTO);
	CHECK_EQ(c.vtd, TRUST_AUTO);
	CHECK_EQ(cmdline_parse("tpm=required vtd=off", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.tpm, TRUST_REQUIRED);
	CHECK_EQ(c.vtd, TRUST_OFF);
	CHECK_EQ(cmdline_parse("tpm=off vtd=required selftest=dma", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.tpm, TRUST_OFF);
	CHECK_EQ(c.vtd, TRUST_REQUIRED);
	CHECK_EQ(c.selftest, SELFTEST_DMA);
	CHECK_EQ(cmdline_parse("selftest=dma-early", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, SELFTEST_DMA_EARLY);
	CHECK_EQ(cmdline_parse("selftest=tpm-log", &c, err, sizeof(err)), 0);
	CHECK_EQ(c.selftest, SELFTEST_TPM_LOG);
	CHECK_EQ(cmdline_parse("tpm=1", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "tpm:") != NULL);
	CHECK_EQ(cmdline_parse("vtd=yes", &c, err, sizeof(err)), -1);
	CHECK(strstr(err, "vtd:") != NULL);
}
