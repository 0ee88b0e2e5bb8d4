/* Memory and string primitives under their C library names, so that the calls gcc emits on its own
 * (struct copies, zeroing) resolve to them in freestanding builds. Host unit tests use the host libc. */
#ifndef LIB_STRING_H
#define LIB_STRING_H

#ifdef XMHF_HOST_TEST
#include <string.h>
#else
#include <xmhf/types.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
int strcmp(const char *a, const char *b);
#endif

#endif
