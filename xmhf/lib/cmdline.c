/* Parsing of init's multiboot command line (see cmdline.h). */
#include <lib/cmdline.h>
#include <lib/printf.h>
#include <lib/string.h>

/* A word of the command line: not NUL-terminated. */
struct tok {
	const char *s;
	size_t len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool tok_eq(struct tok t, const char *lit)
{
	size_t n = strlen(lit);

	return t.len == n && memcmp(t.s, lit, n) == 0;
}

/* Splits t at the first occurrence of c: *head gets the part before, t the part after. Returns false
 * (and takes all of t as head) if c does not occur. */
static bool tok_split(struct tok *t, char c, struct tok *head)
{
	for (size_t i = 0; i < t->len; i++) {
		if (t->s[i] == c) {
			head->s = t->s;
			head->len = i;
			t->s += i + 1;
			t->len -= i + 1;
			return true;
		}
	}
	*head = *t;
	t->s += t->len;
	t->len = 0;
	return false;
}

/* Hex (0x prefix) or decimal; the whole token must be consumed and the value <= max (max < 2^32,
 * so the accumulator never overflows and no 64-bit division is needed). */
static bool parse_uint(struct tok t, u32 max, u32 *out)
{
	unsigned base = 10;
	size_t i = 0;
	u64 v = 0;

	if (t.len > 2 && t.s[0] == '0' && (t.s[1] == 'x' || t.s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i >= t.len)
		return false;
	for (; i < t.len; i++) {
		char c = t.s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = v * base + d;
		if (v > max)
			return false;
	}
	*out = (u32)v;
	return true;
}

static int fail(char *err, size_t errlen, const char *what, struct tok t)
{
	if (err && errlen)
		lib_snprintf(err, errlen, "%s '%.*s'", what, (int)t.len, t.s);
	return -1;
}

/* serial=BAUD[,DPS[,PORT]], e.g. 115200,8n1,0x3f8 */
static int parse_serial(struct tok v, struct boot_cmdline *out, char *err, size_t errlen)
{
	struct tok f;
	bool more;
	u32 n;

	more = tok_split(&v, ',', &f);
	if (!parse_uint(f, 0xffffffffU, &n) || n == 0)
		return fail(err, errlen, "serial: bad baud rate", f);
	out->baud = n;
	if (!more)
		return 0;

	more = tok_split(&v, ',', &f);
	if (f.len != 3 || f.s[0] < '5' || f.s[0] > '8' ||
	    (f.s[1] != 'n' && f.s[1] != 'o' && f.s[1] != 'e' &&
	     f.s[1] != 'N' && f.s[1] != 'O' && f.s[1] != 'E') ||
	    (f.s[2] != '1' && f.s[2] != '2'))
		return fail(err, errlen, "serial: bad data/parity/stop bits (want e.g. 8n1)", f);
	out->data_bits = (u8)(f.s[0] - '0');
	out->parity = (char)(f.s[1] | 0x20);   /* lower case */
	out->stop_bits = (u8)(f.s[2] - '0');
	if (!more)
		return 0;

	/* The rest is the port; a further comma makes it fail to parse. */
	if (!parse_uint(v, 0xffff, &n) || n == 0)
		return fail(err, errlen, "serial: bad I/O port", v);
	out->serial_port = (u16)n;
	return 0;
}

static int apply_word(struct tok w, struct boot_cmdline *out, char *err, size_t errlen)
{
	struct tok key, val = w;
	u32 n;

	if (!tok_split(&val, '=', &key)) {
		out->unknown_keys++;
		return 0;
	}
	if (tok_eq(key, "serial"))
		return parse_serial(val, out, err, errlen);
	if (tok_eq(key, "boot_drive")) {
		if (!parse_uint(val, 0xff, &n))
			return fail(err, errlen, "boot_drive: bad drive number (0..0xff)", val);
		out->boot_drive = (u8)n;
		return 0;
	}
	if (tok_eq(key, "on_ready")) {
		if (tok_eq(val, "guest"))
			out->on_ready = ON_READY_GUEST;
		else if (tok_eq(val, "halt"))
			out->on_ready = ON_READY_HALT;
		else if (tok_eq(val, "poweroff"))
			out->on_ready = ON_READY_POWEROFF;
		else
			return fail(err, errlen, "on_ready: want guest, halt or poweroff, not", val);
		return 0;
	}
	if (tok_eq(key, "nested")) {
		if (tok_eq(val, "0"))
			out->nested = 0;
		else if (tok_eq(val, "1"))
			out->nested = 1;
		else
			return fail(err, errlen, "nested: want 0 or 1, not", val);
		return 0;
	}
	if (tok_eq(key, "apic")) {
		if (tok_eq(val, "auto"))
			out->apic = APIC_AUTO;
		else if (tok_eq(val, "trap"))
			out->apic = APIC_TRAP;
		else if (tok_eq(val, "init-exit"))
			out->apic = APIC_INIT_EXIT;
		else
			return fail(err, errlen, "apic: want auto, trap or init-exit, not", val);
		return 0;
	}
	if (tok_eq(key, "dryrun")) {
		if (tok_eq(val, "0"))
			out->dryrun = 0;
		else if (tok_eq(val, "1"))
			out->dryrun = 1;
		else
			return fail(err, errlen, "dryrun: want 0 or 1, not", val);
		return 0;
	}
	if (tok_eq(key, "selftest")) {
		if (tok_eq(val, "none"))
			out->selftest = 0;
		else if (tok_eq(val, "exception"))
			out->selftest = SELFTEST_EXCEPTION;
		else if (tok_eq(val, "null"))
			out->selftest = SELFTEST_NULL;
		else if (tok_eq(val, "write-text"))
			out->selftest = SELFTEST_WRITE_TEXT;
		else if (tok_eq(val, "exec-heap"))
			out->selftest = SELFTEST_EXEC_HEAP;
		else if (tok_eq(val, "dma"))
			out->selftest = SELFTEST_DMA;
		else if (tok_eq(val, "dma-early"))
			out->selftest = SELFTEST_DMA_EARLY;
		else if (tok_eq(val, "tpm-log"))
			out->selftest = SELFTEST_TPM_LOG;
		else
			return fail(err, errlen,
				    "selftest: want none, exception, null, write-text, exec-heap, dma, dma-early or tpm-log, not", val);
		return 0;
	}
	if (tok_eq(key, "tpm") || tok_eq(key, "vtd")) {
		u8 *v = tok_eq(key, "tpm") ? &out->tpm : &out->vtd;
		if (tok_eq(val, "auto"))
			*v = TRUST_AUTO;
		else if (tok_eq(val, "off"))
			*v = TRUST_OFF;
		else if (tok_eq(val, "required"))
			*v = TRUST_REQUIRED;
		else
			return fail(err, errlen, v == &out->tpm ? "tpm: want auto, off or required, not"
								: "vtd: want auto, off or required, not", val);
		return 0;
	}
	if (tok_eq(key, "ept01_top")) {
		if (!parse_uint(val, 0xffff, &n) || n == 0)
			return fail(err, errlen, "ept01_top: want a number of GiB (1..65535), not", val);
		out->ept01_top_gib = (u16)n;
		return 0;
	}
	if (tok_eq(key, "ept02_drop")) {
		if (!tok_eq(val, "0") && !tok_eq(val, "1"))
			return fail(err, errlen, "ept02_drop: want 0 or 1, not", val);
		out->ept02_drop = tok_eq(val, "1");
		return 0;
	}
	if (tok_eq(key, "on_stop")) {
		if (tok_eq(val, "halt"))
			out->on_stop = ON_STOP_HALT;
		else if (tok_eq(val, "reset"))
			out->on_stop = ON_STOP_RESET;
		else if (tok_eq(val, "poweroff"))
			out->on_stop = ON_STOP_POWEROFF;
		else
			return fail(err, errlen, "on_stop: want halt, reset or poweroff, not", val);
		return 0;
	}
	out->unknown_keys++;
	return 0;
}

int cmdline_parse(const char *s, struct boot_cmdline *out, char *err, size_t errlen)
{
	bool first = true;

	out->baud = 115200;
	out->data_bits = 8;
	out->parity = 'n';
	out->stop_bits = 1;
	out->serial_port = 0x3f8;
	out->boot_drive = 0x80;
	out->on_ready = ON_READY_GUEST;
	out->on_stop = ON_STOP_HALT;
	out->nested = 1; /* VMX for the guest: Hyper-V, KVM and others need it; nested=0 hides it */
	out->selftest = 0;
	out->dryrun = 0;
	out->ept01_top_gib = 0;
	out->ept02_drop = 0;
	out->tpm = TRUST_AUTO;
	out->vtd = TRUST_AUTO;
	out->apic = APIC_AUTO;
	out->unknown_keys = 0;
	if (err && errlen)
		err[0] = '\0';
	if (!s)
		return 0;

	for (;;) {
		struct tok w;
		bool has_eq = false;

		while (is_space(*s))
			s++;
		if (!*s)
			break;
		w.s = s;
		while (*s && !is_space(*s)) {
			if (*s == '=')
				has_eq = true;
			s++;
		}
		w.len = (size_t)(s - w.s);
		/* GRUB passes the kernel path first. */
		if (first && !has_eq) {
			first = false;
			continue;
		}
		first = false;
		if (apply_word(w, out, err, errlen))
			return -1;
	}
	return 0;
}
