/* SHA-1 (FIPS 180-4, section 6.1). */
#include <lib/sha1.h>
#include <lib/string.h>

static u32 rol(u32 x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1_block(struct sha1_ctx *c, const u8 *p)
{
	u32 w[16], a, b, d, e, f, k, t, cc;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (u32)p[4 * i] << 24 | (u32)p[4 * i + 1] << 16 | (u32)p[4 * i + 2] << 8 | p[4 * i + 3];
	a = c->h[0];
	b = c->h[1];
	cc = c->h[2];
	d = c->h[3];
	e = c->h[4];
	for (i = 0; i < 80; i++) {
		/* Message schedule kept in a 16-word ring. */
		if (i >= 16)
			w[i & 15] = rol(w[(i - 3) & 15] ^ w[(i - 8) & 15] ^ w[(i - 14) & 15] ^ w[i & 15], 1);
		if (i < 20) {
			f = (b & cc) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ cc ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & cc) | (b & d) | (cc & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ cc ^ d;
			k = 0xca62c1d6;
		}
		t = rol(a, 5) + f + e + k + w[i & 15];
		e = d;
		d = cc;
		cc = rol(b, 30);
		b = a;
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
	c->h[4] += e;
}

void sha1_init(struct sha1_ctx *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->h[4] = 0xc3d2e1f0;
	c->length = 0;
	c->used = 0;
}

void sha1_update(struct sha1_ctx *c, const void *data, size_t len)
{
	const u8 *p = data;

	c->length += len;
	while (len) {
		size_t n = 64 - c->used;

		if (c->used == 0 && len >= 64) {
			/* Whole blocks straight from the input. */
			sha1_block(c, p);
			p += 64;
			len -= 64;
			continue;
		}
		if (n > len)
			n = len;
		memcpy(c->block + c->used, p, n);
		c->used += (u32)n;
		p += n;
		len -= n;
		if (c->used == 64) {
			sha1_block(c, c->block);
			c->used = 0;
		}
	}
}

void sha1_final(struct sha1_ctx *c, u8 digest[20])
{
	u64 bits = c->length << 3;
	int i;

	c->block[c->used++] = 0x80;
	if (c->used > 56) {
		memset(c->block + c->used, 0, 64 - c->used);
		sha1_block(c, c->block);
		c->used = 0;
	}
	memset(c->block + c->used, 0, 56 - c->used);
	for (i = 0; i < 8; i++)
		c->block[56 + i] = (u8)(bits >> (56 - 8 * i));
	sha1_block(c, c->block);
	for (i = 0; i < 20; i++)
		digest[i] = (u8)(c->h[i >> 2] >> (24 - 8 * (i & 3)));
	/* Leave nothing of the message behind in the context. */
	memset(c, 0, sizeof(*c));
}

void sha1(const void *data, size_t len, u8 digest[20])
{
	struct sha1_ctx c;

	sha1_init(&c);
	sha1_update(&c, data, len);
	sha1_final(&c, digest);
}
