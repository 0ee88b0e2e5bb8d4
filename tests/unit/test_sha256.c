/* SHA-256: FIPS 180-4 test vectors, padding edges and incremental hashing (reference: Python hashlib). */
#include <stdlib.h>
#include <lib/sha256.h>
#include "unit.h"

static void hex(const u8 d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha256(const char *file, int line, const void *data, size_t len, const char *want)
{
	u8 d[32];
	char h[65];

	sha256(data, len, d);
	hex(d, h);
	if (strcmp(h, want) != 0)
		unit_fail(file, line, "sha256 of %zu bytes: got %s, want %s", len, h, want);
}

#define CHECK_SHA256(data, len, want) check_sha256(__FILE__, __LINE__, data, len, want)

TEST(sha256_fips_vectors)
{
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	CHECK_SHA256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_SHA256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_SHA256(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(sha256_million_a)
{
	static u8 buf[1000000];
	struct sha256_ctx c;
	u8 d[32];
	char h[65];

	memset(buf, 'a', sizeof(buf));
	CHECK_SHA256(buf, sizeof(buf), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, buf, 1000);
	sha256_final(&c, d);
	hex(d, h);
	CHECK_STR_EQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(sha256_padding_boundaries)
{
	static const struct { size_t n; const char *h; } v[] = {
		{ 55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072" },
		{ 56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e" },
		{ 63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2" },
		{ 64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c" },
		{ 65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9" },
		{ 119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c" },
		{ 120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98" },
	};
	u8 buf[128];

	memset(buf, 'x', sizeof(buf));
	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		CHECK_SHA256(buf, v[i].n, v[i].h);
}

TEST(sha256_incremental_splits)
{
	u8 msg[1000], d[32];
	struct sha256_ctx c;
	char h[65];

	for (int i = 0; i < 1000; i++)
		msg[i] = (u8)(i * 7 + 3);
	CHECK_SHA256(msg, sizeof(msg), "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371");
	for (size_t split = 0; split <= 1000; split += 37) {
		sha256_init(&c);
		sha256_update(&c, msg, split);
		sha256_update(&c, msg + split, 1000 - split);
		sha256_final(&c, d);
		hex(d, h);
		CHECK_STR_EQ(h, "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371");
	}
}
