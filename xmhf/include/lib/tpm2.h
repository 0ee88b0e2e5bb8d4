/* TPM 2.0 commands init sends (TPM 2.0 Library Part 3: Startup 9.3, PCR_Extend 22.2, PCR_Read 22.4),
 * built and parsed here without hardware so they are unit-tested; the TIS transport is in xmhf/boot/.
 * All TPM fields are big-endian. */
#ifndef LIB_TPM2_H
#define LIB_TPM2_H
#include <xmhf/types.h>

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002
#define TPM2_CC_STARTUP 0x0144
#define TPM2_CC_PCR_EXTEND 0x0182
#define TPM2_CC_PCR_READ 0x017e
#define TPM2_SU_CLEAR 0x0000
#define TPM2_RS_PW 0x40000009     /* the password session: PCRs 0-15 take an empty password */
#define TPM2_ALG_SHA1 0x0004
#define TPM2_ALG_SHA256 0x000b
#define TPM2_RC_SUCCESS 0x000
#define TPM2_RC_INITIALIZE 0x100  /* Startup when the TPM is already started (by the BIOS) */

#define TPM2_HEADER_SIZE 10
#define TPM2_MAX_COMMAND 128

/* Each returns the command's length in buf (TPM2_MAX_COMMAND bytes). */
u32 tpm2_cmd_startup(u8 *buf);
u32 tpm2_cmd_pcr_extend_sha256(u8 *buf, u32 pcr, const u8 digest[32]);
u32 tpm2_cmd_pcr_read_sha256(u8 *buf, u32 pcr);

/* The response code of a response of len bytes, or -1 if the header is malformed (short, a size that
 * is not len, an unknown tag). */
s64 tpm2_response_code(const u8 *buf, u32 len);

/* PCR_Read's response for one SHA-256 PCR: 0 and the value in out; 1 if the TPM has no SHA-256 bank
 * for it (no digest returned); -1 if malformed or the response code is not success. */
int tpm2_parse_pcr_read_sha256(const u8 *buf, u32 len, u32 pcr, u8 out[32]);

#endif
