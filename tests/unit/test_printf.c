/* lib_vsnprintf against the host's snprintf: same text and same return value, also when truncated. */
#include <stdint.h>
#include <stddef.h>
#include <limits.h>
#include <lib/printf.h>
#include "unit.h"

/* Sizes are volatile so that gcc does not warn about (intended) truncation of the host's snprintf. */
static volatile size_t sz_full = 512, sz_trunc[] = { 0, 1, 2, 5, 17 };

#define CMP(fmt, ...)                                                                       \
	do {                                                                                \
		char a_[512], b_[512];                                                      \
		int ra_ = lib_snprintf(a_, sz_full, fmt, ##__VA_ARGS__);                    \
		int rb_ = snprintf(b_, sz_full, fmt, ##__VA_ARGS__);                        \
		if (ra_ != rb_ || strcmp(a_, b_) != 0)                                      \
			unit_fail(__FILE__, __LINE__, "format \"%s\": got \"%s\" (%d), want \"%s\" (%d)", \
				  fmt, a_, ra_, b_, rb_);                                   \
		for (size_t i_ = 0; i_ < sizeof(sz_trunc) / sizeof(sz_trunc[0]); i_++) {   \
			size_t n_ = sz_trunc[i_];                                           \
			memset(a_, 'A', sizeof(a_));                                        \
			memset(b_, 'A', sizeof(b_));                                        \
			ra_ = lib_snprintf(a_, n_, fmt, ##__VA_ARGS__);                     \
			rb_ = snprintf(b_, n_, fmt, ##__VA_ARGS__);                         \
			if (ra_ != rb_ || memcmp(a_, b_, sizeof(a_)) != 0)                  \
				unit_fail(__FILE__, __LINE__,                               \
					  "format \"%s\" size %zu: got \"%.*s\" (%d), want \"%.*s\" (%d)", \
					  fmt, n_, (int)(n_ ? n_ - 1 : 0), a_, ra_,         \
					  (int)(n_ ? n_ - 1 : 0), b_, rb_);                 \
		}                                                                           \
	} while (0)

TEST(printf_plain_and_percent)
{
	CMP("hello");
	CMP("a%%b");
	CMP("%%%%");
	CMP("%c%c%c", 'x', 'y', 'z');
	CMP("[%5c][%-5c]", 'q', 'r');
	CMP("tab\there\n");
}

TEST(printf_signed)
{
	static const int vals[] = { 0, 1, -1, 7, -7, 42, -42, 1000000, INT_MAX, INT_MIN, 123456789 };
	static const char *const fmts[] = {
		"%d", "%i", "%5d", "%-5d|", "%05d", "%+d", "% d", "%+05d", "% 05d", "%.3d", "%.0d",
		"%8.3d", "%-8.3d|", "%08.3d", "%+.0d", "% .0d", "%1d", "%-+8d|", "%- 8d|", "%+ d",
	};

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			CMP(fmts[f], vals[v]);
#pragma GCC diagnostic pop
		}
}

TEST(printf_unsigned_bases)
{
	static const unsigned vals[] = { 0, 1, 7, 8, 9, 10, 15, 16, 255, 0x1234abcd, 0x80000000u, UINT_MAX };
	static const char *const fmts[] = {
		"%u", "%x", "%X", "%o", "%#x", "%#X", "%#o", "%08x", "%#08x", "%-8x|", "%#-8x|",
		"%.5x", "%#.5x", "%.0x", "%#.0x", "%.0o", "%#.0o", "%#5o", "%#05o", "%#.3o", "%10.4u",
		"%-10.4u|", "%+u", "% u", "%+x",
	};

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat"
			CMP(fmts[f], vals[v]);
#pragma GCC diagnostic pop
		}
}

TEST(printf_length_modifiers)
{
	CMP("%hhd %hhu %hhx", 300, 300, -1);
	CMP("%hhd", -129);
	CMP("%hd %hu %hx %ho", 70000, 70000, -1, 65535);
	CMP("%ld %lu %lx", -123456789L, 123456789UL, 0xdeadbeefUL);
	CMP("%ld %ld", LONG_MAX, LONG_MIN);
	CMP("%lld %llu %llx %llX %llo", -1LL, ULLONG_MAX, ULLONG_MAX, 0xabcdef0123456789ULL,
	    ULLONG_MAX);
	CMP("%lld %lld", LLONG_MAX, LLONG_MIN);
	CMP("%zu %zx %zd", (size_t)SIZE_MAX, (size_t)0x1000, (ptrdiff_t)-5);
	CMP("%jd %ju %jx", (intmax_t)INT64_MIN, (uintmax_t)UINT64_MAX, (uintmax_t)1 << 63);
	CMP("%td %tx", (ptrdiff_t)-99, (ptrdiff_t)0x7fff);
	CMP("%#llx %#llo %+lld % lld", 0x100000000ULL, 01000000000000ULL, 5LL, 6LL);
	CMP("%020lld|%-20llu|%.25llu", LLONG_MIN, ULLONG_MAX, 1ULL);
}

/* Many 64-bit values: exercises the 32-bit-safe long division. */
TEST(printf_u64_sweep)
{
	unsigned long long x = 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < 2000; i++) {
		unsigned long long v = x >> (i % 64);

		CMP("%llu %lld %llx %llo", v, (long long)v, v, v);
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	}
	for (int s = 0; s < 64; s++) {
		unsigned long long p = 1ULL << s;

		CMP("%llu %llu %llu", p - 1, p, p + 1);
	}
	CMP("%llu %llu", 10000000000000000000ULL, 9999999999999999999ULL);
	CMP("%llu", 0xffffffff00000000ULL);
	CMP("%llu", 0x00000000ffffffffULL);
	CMP("%llu", 0x0000000100000000ULL);
}

TEST(printf_strings)
{
	const char *s = "hello";

	CMP("%s", s);
	CMP("[%10s]", s);
	CMP("[%-10s]", s);
	CMP("[%.3s]", s);
	CMP("[%.0s]", s);
	CMP("[%.10s]", s);
	CMP("[%8.2s]", s);
	CMP("[%-8.2s]", s);
	CMP("[%s%s]", "", s);
	CMP("%s and %s", "one", "two");
}

TEST(printf_string_precision_no_nul)
{
	/* Precision bounds the read: the array has no terminator (ASan would object to a read past it). */
	char raw[4] = { 'a', 'b', 'c', 'd' };
	char out[16];

	CHECK_EQ(lib_snprintf(out, sizeof(out), "%.4s|", raw), 5);
	CHECK_STR_EQ(out, "abcd|");
}

TEST(printf_star)
{
	CMP("[%*d]", 6, 42);
	CMP("[%*d]", -6, 42);
	CMP("[%-*d]", 6, 42);
	CMP("[%.*d]", 4, 42);
	CMP("[%.*d]", -1, 42);
	CMP("[%*.*x]", 10, 6, 0xabc);
	CMP("[%*.*s]", 8, 2, "xyz");
	CMP("[%*s]", -8, "xyz");
	CMP("[%0*d]", 5, -3);
}

TEST(printf_null_string_and_pointer)
{
	const char *volatile nul = NULL;
	void *volatile nulp = NULL;
	char out[32];

	CHECK_EQ(lib_snprintf(out, sizeof(out), "%s", nul), 6);
	CHECK_STR_EQ(out, "(null)");
	CHECK_EQ(lib_snprintf(out, sizeof(out), "[%8s]", nul), 10);
	CHECK_STR_EQ(out, "[  (null)]");
	CHECK_EQ(lib_snprintf(out, sizeof(out), "%p", nulp), 3);
	CHECK_STR_EQ(out, "0x0");
}

TEST(printf_pointer)
{
	int x;
	void *ptrs[] = { &x, (void *)(uintptr_t)0x1000, (void *)(uintptr_t)0xdeadbeef, (void *)UINTPTR_MAX };

	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
		CMP("%p", ptrs[i]);
		CMP("[%20p]", ptrs[i]);
		CMP("[%-20p]", ptrs[i]);
	}
}

TEST(printf_truncation_return)
{
	char buf[8];

	memset(buf, 'X', sizeof(buf));
	CHECK_EQ(lib_snprintf(buf, 4, "%d", 123456), 6);
	CHECK_STR_EQ(buf, "123");
	CHECK_EQ(buf[4], 'X');
	CHECK_EQ(lib_snprintf(NULL, 0, "%s=%d", "abc", 5), 5);
	memset(buf, 'X', sizeof(buf));
	CHECK_EQ(lib_snprintf(buf, 1, "abc"), 3);
	CHECK_EQ(buf[0], '\0');
	CHECK_EQ(buf[1], 'X');
	CHECK_EQ(lib_snprintf(buf, sizeof(buf), "%s", ""), 0);
	CHECK_STR_EQ(buf, "");
}

static int via_va(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = lib_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

TEST(printf_vsnprintf_mixed)
{
	char a[128], b[128];
	int ra = via_va(a, sizeof(a), "%s:%d:%llx:%c:%p:%zu", "f", -3, 0x123456789aULL, 'q',
			(void *)0x1234, (size_t)77);
	int rb = snprintf(b, sizeof(b), "%s:%d:%llx:%c:%p:%zu", "f", -3, 0x123456789aULL, 'q',
			  (void *)0x1234, (size_t)77);

	CHECK_EQ(ra, rb);
	CHECK_STR_EQ(a, b);
}
