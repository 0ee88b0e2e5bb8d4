/* SHA-1 (FIPS 180-4), used by init to print the hash of the runtime module it loads (XMHF prints it as
 * an untrusted reference value; a measured launch measures it for real). */
#ifndef LIB_SHA1_H
#define LIB_SHA1_H
#include <xmhf/types.h>

struct sha1_ctx {
	u32 h[5];
	u64 length;       /* bytes processed */
	u8 block[64];
	u32 used;         /* bytes in block */
};

void sha1_init(struct sha1_ctx *c);
void sha1_update(struct sha1_ctx *c, const void *data, size_t len);
void sha1_final(struct sha1_ctx *c, u8 digest[20]);
void sha1(const void *data, size_t len, u8 digest[20]);

#endif
