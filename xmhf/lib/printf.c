/* Freestanding vsnprintf: integers, characters, strings and pointers; no floating point. */
#include <lib/printf.h>

#define F_LEFT  0x01
#define F_ZERO  0x02
#define F_PLUS  0x04
#define F_SPACE 0x08
#define F_ALT   0x10

enum len_mod { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

struct outbuf {
	char *buf;
	size_t size;
	size_t pos;     /* characters the full output has so far (may exceed size) */
};

static void out_c(struct outbuf *o, char c)
{
	if (o->pos + 1 < o->size)
		o->buf[o->pos] = c;
	o->pos++;
}

static void out_rep(struct outbuf *o, char c, int n)
{
	while (n-- > 0)
		out_c(o, c);
}

/* *n /= d, returning the remainder. Long division on 32-bit halves so that 32-bit builds need no
 * libgcc helper (__udivdi3/__umoddi3). */
static u32 divmod_u64_u32(u64 *n, u32 d)
{
	u32 hi = (u32)(*n >> 32), lo = (u32)*n;
	u32 qhi = hi / d;
	u64 r = hi % d;
	u32 qlo = 0;
	int i;

	if (hi == 0) {
		*n = lo / d;
		return lo % d;
	}
	for (i = 31; i >= 0; i--) {
		r = (r << 1) | ((lo >> i) & 1);
		if (r >= d) {
			r -= d;
			qlo |= 1U << i;
		}
	}
	*n = ((u64)qhi << 32) | qlo;
	return (u32)r;
}

/* Writes the digits of v into the end of buf (no terminator); returns the count. */
static int utoa(u64 v, unsigned base, bool upper, char *buf, int bufsz)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;

	do {
		unsigned d;

		if (base == 10) {
			d = divmod_u64_u32(&v, 10);
		} else {
			d = (unsigned)(v & (base - 1));
			v >>= (base == 16) ? 4 : 3;
		}
		buf[bufsz - 1 - n] = digits[d];
		n++;
	} while (v);
	return n;
}

struct spec {
	int flags;
	int width;
	int prec;       /* -1: none */
};

/* One integer conversion, with C99 rules: precision is the minimum digit count (0 with value 0
 * gives no digits) and disables '0' padding; '#' adds a leading 0 (octal) or 0x (hex, value != 0). */
static void fmt_int(struct outbuf *o, const struct spec *sp, u64 v, bool neg, unsigned base,
		    bool upper, bool force_0x)
{
	char digits[24];
	int nd = 0, zeros = 0, pad, plen = 0;
	char prefix[3];

	if (!(sp->prec == 0 && v == 0))
		nd = utoa(v, base, upper, digits, (int)sizeof(digits));
	if (sp->prec > nd)
		zeros = sp->prec - nd;

	if (neg)
		prefix[plen++] = '-';
	else if (sp->flags & F_PLUS)
		prefix[plen++] = '+';
	else if (sp->flags & F_SPACE)
		prefix[plen++] = ' ';

	if (base == 8 && (sp->flags & F_ALT) && zeros == 0 &&
	    (nd == 0 || digits[sizeof(digits) - nd] != '0'))
		zeros = 1;
	if (base == 16 && (force_0x || ((sp->flags & F_ALT) && v != 0))) {
		prefix[plen++] = '0';
		prefix[plen++] = upper ? 'X' : 'x';
	}

	pad = sp->width - (plen + zeros + nd);
	if (pad > 0 && !(sp->flags & F_LEFT) && (sp->flags & F_ZERO) && sp->prec < 0) {
		zeros += pad;
		pad = 0;
	}
	if (!(sp->flags & F_LEFT))
		out_rep(o, ' ', pad);
	for (int i = 0; i < plen; i++)
		out_c(o, prefix[i]);
	out_rep(o, '0', zeros);
	for (int i = 0; i < nd; i++)
		out_c(o, digits[sizeof(digits) - nd + i]);
	if (sp->flags & F_LEFT)
		out_rep(o, ' ', pad);
}

static void fmt_str(struct outbuf *o, const struct spec *sp, const char *s)
{
	int n = 0, pad;

	if (!s)
		s = "(null)";
	/* Never read past the precision: the string need not be terminated. */
	while ((sp->prec < 0 || n < sp->prec) && s[n])
		n++;
	pad = sp->width - n;
	if (!(sp->flags & F_LEFT))
		out_rep(o, ' ', pad);
	for (int i = 0; i < n; i++)
		out_c(o, s[i]);
	if (sp->flags & F_LEFT)
		out_rep(o, ' ', pad);
}

/* Reads a decimal number, saturating well below INT_MAX. */
static int read_num(const char **p)
{
	int v = 0;

	while (**p >= '0' && **p <= '9') {
		if (v < 100000000)
			v = v * 10 + (**p - '0');
		(*p)++;
	}
	return v;
}

int lib_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };
	const char *p = fmt;

	while (*p) {
		struct spec sp = { 0, 0, -1 };
		enum len_mod len = LEN_NONE;
		const char *start = p;
		u64 v = 0;
		bool neg = false;
		char c;

		if (*p != '%') {
			out_c(&o, *p++);
			continue;
		}
		p++;

		for (;; p++) {
			if (*p == '-')
				sp.flags |= F_LEFT;
			else if (*p == '0')
				sp.flags |= F_ZERO;
			else if (*p == '+')
				sp.flags |= F_PLUS;
			else if (*p == ' ')
				sp.flags |= F_SPACE;
			else if (*p == '#')
				sp.flags |= F_ALT;
			else
				break;
		}

		if (*p == '*') {
			int w = va_arg(ap, int);

			p++;
			if (w < 0) {
				sp.flags |= F_LEFT;
				w = (w < -100000000) ? 100000000 : -w;
			}
			sp.width = w;
		} else {
			sp.width = read_num(&p);
		}

		if (*p == '.') {
			p++;
			if (*p == '*') {
				int pr = va_arg(ap, int);

				p++;
				sp.prec = pr < 0 ? -1 : pr;   /* negative: as if omitted */
			} else {
				sp.prec = read_num(&p);
			}
		}

		switch (*p) {
		case 'h':
			p++;
			len = LEN_H;
			if (*p == 'h') {
				p++;
				len = LEN_HH;
			}
			break;
		case 'l':
			p++;
			len = LEN_L;
			if (*p == 'l') {
				p++;
				len = LEN_LL;
			}
			break;
		case 'z':
			p++;
			len = LEN_Z;
			break;
		case 'j':
			p++;
			len = LEN_J;
			break;
		case 't':
			p++;
			len = LEN_T;
			break;
		default:
			break;
		}

		c = *p;
		if (c)
			p++;
		switch (c) {
		case 'd':
		case 'i': {
			s64 sv;

			switch (len) {
			case LEN_HH: sv = (signed char)va_arg(ap, int); break;
			case LEN_H: sv = (short)va_arg(ap, int); break;
			case LEN_L: sv = va_arg(ap, long); break;
			case LEN_LL: sv = va_arg(ap, long long); break;
			case LEN_Z: sv = va_arg(ap, ptrdiff_t); break;   /* signed size_t */
			case LEN_J: sv = va_arg(ap, intmax_t); break;
			case LEN_T: sv = va_arg(ap, ptrdiff_t); break;
			default: sv = va_arg(ap, int); break;
			}
			neg = sv < 0;
			/* Negate in unsigned arithmetic: -INT64_MIN is not representable. */
			v = neg ? 0 - (u64)sv : (u64)sv;
			fmt_int(&o, &sp, v, neg, 10, false, false);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			switch (len) {
			case LEN_HH: v = (unsigned char)va_arg(ap, unsigned int); break;
			case LEN_H: v = (unsigned short)va_arg(ap, unsigned int); break;
			case LEN_L: v = va_arg(ap, unsigned long); break;
			case LEN_LL: v = va_arg(ap, unsigned long long); break;
			case LEN_Z: v = va_arg(ap, size_t); break;
			case LEN_J: v = va_arg(ap, uintmax_t); break;
			case LEN_T: v = (size_t)va_arg(ap, ptrdiff_t); break;
			default: v = va_arg(ap, unsigned int); break;
			}
			/* '+' and ' ' apply to signed conversions only. */
			sp.flags &= ~(F_PLUS | F_SPACE);
			fmt_int(&o, &sp, v, false, c == 'u' ? 10 : c == 'o' ? 8 : 16, c == 'X', false);
			break;
		case 'p':
			v = (uintptr_t)va_arg(ap, void *);
			sp.flags &= ~(F_PLUS | F_SPACE);
			fmt_int(&o, &sp, v, false, 16, false, true);
			break;
		case 'c': {
			char ch = (char)va_arg(ap, int);
			int pad = sp.width - 1;

			if (!(sp.flags & F_LEFT))
				out_rep(&o, ' ', pad);
			out_c(&o, ch);
			if (sp.flags & F_LEFT)
				out_rep(&o, ' ', pad);
			break;
		}
		case 's':
			fmt_str(&o, &sp, va_arg(ap, const char *));
			break;
		case '%':
			out_c(&o, '%');
			break;
		default:
			/* Unknown or truncated conversion: copy it literally rather than guess at arguments. */
			while (start < p)
				out_c(&o, *start++);
			break;
		}
	}

	if (size)
		buf[o.pos < size ? o.pos : size - 1] = '\0';
	return (int)o.pos;
}

int lib_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = lib_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
