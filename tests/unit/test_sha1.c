/* SHA-1: FIPS 180 test vectors and incremental hashing across block boundaries. */
#include <stdlib.h>
#include <lib/sha1.h>
#include "unit.h"

static void hex(const u8 d[20], char out[41])
{
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha1(const char *file, int line, const void *data, size_t len, const char *want)
{
	u8 d[20];
	char h[41];

	sha1(data, len, d);
	hex(d, h);
	if (strcmp(h, want) != 0)
		unit_fail(file, line, "sha1 of %zu bytes: got %s, want %s", len, h, want);
}

#define CHECK_SHA1(data, len, want) check_sha1(__FILE__, __LINE__, data, len, want)

TEST(sha1_fips_vectors)
{
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

	CHECK_SHA1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	CHECK_SHA1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	CHECK_SHA1(m448, strlen(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	CHECK_SHA1(m896, strlen(m896), "a49b2446a02c645bf419f995b67091253a04a259");
}

TEST(sha1_million_a)
{
	static u8 buf[1000000];
	struct sha1_ctx c;
	u8 d[20];
	char h[41];

	memset(buf, 'a', sizeof(buf));
	CHECK_SHA1(buf, sizeof(buf), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	/* The same in 1000 updates of 1000 bytes. */
	sha1_init(&c);
	for (int i = 0; i < 1000; i++)
		sha1_update(&c, buf, 1000);
	sha1_final(&c, d);
	hex(d, h);
	CHECK_STR_EQ(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(sha1_padding_boundaries)
{
	/* Lengths around the 55/56-byte padding edge and block boundaries (reference: Python hashlib). */
	static const struct { size_t n; const char *h; } v[] = {
		{ 55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1" },
		{ 56, "901305367c259952f4e7af8323f480d59f81335b" },
		{ 63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec" },
		{ 64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163" },
		{ 65, "78c741ddc482e4cdf8c474a0876347a0905b6233" },
		{ 119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c" },
		{ 120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d" },
	};
	u8 buf[128];

	memset(buf, 'x', sizeof(buf));
	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		CHECK_SHA1(buf, v[i].n, v[i].h);
}

TEST(sha1_incremental_splits)
{
	u8 msg[1000], whole[20], part[20];
	struct sha1_ctx c;
	char h[41];

	for (int i = 0; i < 1000; i++)
		msg[i] = (u8)(i * 7 + 3);
	sha1(msg, sizeof(msg), whole);
	hex(whole, h);
	CHECK_STR_EQ(h, "4231a8a50a10fa9758db8ec71fdef855b751048a");

	/* Every two-way split, then uneven chunk sizes. */
	for (size_t s = 0; s <= 200; s++) {
		sha1_init(&c);
		sha1_update(&c, msg, s);
		sha1_update(&c, msg + s, sizeof(msg) - s);
		sha1_final(&c, part);
		if (!CHECK_MEM_EQ(part, whole, 20))
			return;
	}
	for (size_t chunk = 1; chunk <= 130; chunk++) {
		size_t off = 0;

		sha1_init(&c);
		while (off < sizeof(msg)) {
			size_t n = MIN(chunk + off % 3, sizeof(msg) - off);

			sha1_update(&c, msg + off, n);
			off += n;
		}
		sha1_update(&c, msg, 0);
		sha1_final(&c, part);
		if (!CHECK_MEM_EQ(part, whole, 20))
			return;
	}
}
