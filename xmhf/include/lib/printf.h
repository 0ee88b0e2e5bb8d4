/* Freestanding formatted output (no floating point). */
#ifndef LIB_PRINTF_H
#define LIB_PRINTF_H
#include <xmhf/types.h>

/* Like C99 vsnprintf: writes at most size-1 characters plus NUL (nothing if size==0) and returns the
 * length the full output would have had. Supports %d %i %u %x %X %o %p %s %c %%, flags '-' '0' '+' ' ' '#',
 * field width and precision (numbers also '*'), length modifiers hh h l ll z j t.
 * %p prints 0x followed by the hex value. %s of NULL prints "(null)". */
int lib_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int lib_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
