/* SHA-256 (FIPS 180-4), the TPM 2.0 bank init extends its measurements into (docs/trusted-boot.md). */
#ifndef LIB_SHA256_H
#define LIB_SHA256_H
#include <xmhf/types.h>

#define SHA256_DIGEST_SIZE 32

struct sha256_ctx {
	u32 h[8];
	u64 length;       /* bytes processed */
	u8 block[64];
	u32 used;         /* bytes in block */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, u8 digest[SHA256_DIGEST_SIZE]);
void sha256(const void *data, size_t len, u8 digest[SHA256_DIGEST_SIZE]);

#endif
