/* printf.c - a small formatter: %d %i %u %x %X %o %c %s %p %%, flags '-' '0' ' ' '+' '#',
 * width and precision (also '*'), length modifiers hh h l ll z t j. */
#include "lib.h"

struct sink {
    void (*put)(struct sink *s, char c);
    char *buf;
    size_t size, len;
};

static void put_rep(struct sink *s, char c, int n)
{
    while (n-- > 0)
        s->put(s, c);
}

static void fmt_num(struct sink *s, uint64_t v, bool neg, unsigned base, bool upper, int width,
                    int prec, bool left, bool zero, char sign, bool alt)
{
    char tmp[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    while (v) {
        tmp[n++] = digits[v % base];
        v /= base;
    }
    if (prec < 0 && n == 0)
        tmp[n++] = '0';
    int ndig = n > prec ? n : prec;
    char pfx[3];
    int np = 0;
    if (neg)
        pfx[np++] = '-';
    else if (sign)
        pfx[np++] = sign;
    if (alt && base == 16) {
        pfx[np++] = '0';
        pfx[np++] = upper ? 'X' : 'x';
    } else if (alt && base == 8 && ndig == n) {
        ndig++;
    }
    int total = np + ndig;
    if (prec >= 0)
        zero = false;
    if (!left && !zero)
        put_rep(s, ' ', width - total);
    for (int i = 0; i < np; i++)
        s->put(s, pfx[i]);
    if (!left && zero)
        put_rep(s, '0', width - total);
    put_rep(s, '0', ndig - n);
    while (n)
        s->put(s, tmp[--n]);
    if (left)
        put_rep(s, ' ', width - total);
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            s->put(s, *fmt);
            continue;
        }
        bool left = false, zero = false, alt = false;
        char sign = 0;
        int width = 0, prec = -1;
        for (;; fmt++) {
            char f = fmt[1];
            if (f == '-') left = true;
            else if (f == '0') zero = true;
            else if (f == '#') alt = true;
            else if (f == '+') sign = '+';
            else if (f == ' ') { if (!sign) sign = ' '; }
            else break;
        }
        fmt++;
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) { left = true; width = -width; }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9')
                width = width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9')
                    prec = prec * 10 + (*fmt++ - '0');
            }
        }
        int len = 0;    /* -2 hh, -1 h, 0 int, 1 long, 2 long long/size_t/ptrdiff/intmax */
        for (;; fmt++) {
            if (*fmt == 'h') len = len == -1 ? -2 : -1;
            else if (*fmt == 'l') len = len == 1 ? 2 : 1;
            else if (*fmt == 'z' || *fmt == 't' || *fmt == 'j') len = 2;
            else break;
        }
        char c = *fmt;
        if (!c)
            break;
        switch (c) {
        case 'd':
        case 'i': {
            int64_t v;
            if (len >= 1) v = va_arg(ap, int64_t);
            else v = va_arg(ap, int);
            if (len == -1) v = (short)v;
            if (len == -2) v = (signed char)v;
            bool neg = v < 0;
            fmt_num(s, neg ? -(uint64_t)v : (uint64_t)v, neg, 10, false, width, prec, left, zero, sign, false);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            uint64_t v;
            if (len >= 1) v = va_arg(ap, uint64_t);
            else v = va_arg(ap, unsigned int);
            if (len == -1) v = (unsigned short)v;
            if (len == -2) v = (unsigned char)v;
            unsigned base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
            fmt_num(s, v, false, base, c == 'X', width, prec, left, zero, 0, alt);
            break;
        }
        case 'p':
            fmt_num(s, (uint64_t)(uintptr_t)va_arg(ap, void *), false, 16, false, width, prec, left,
                    zero, 0, true);
            break;
        case 'c': {
            char ch = (char)va_arg(ap, int);
            if (!left) put_rep(s, ' ', width - 1);
            s->put(s, ch);
            if (left) put_rep(s, ' ', width - 1);
            break;
        }
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            int n = 0;
            while (str[n] && (prec < 0 || n < prec))
                n++;
            if (!left) put_rep(s, ' ', width - n);
            for (int i = 0; i < n; i++)
                s->put(s, str[i]);
            if (left) put_rep(s, ' ', width - n);
            break;
        }
        case '%':
            s->put(s, '%');
            break;
        default:    /* unknown conversion: print it verbatim */
            s->put(s, '%');
            s->put(s, c);
            break;
        }
    }
}

static void buf_put(struct sink *s, char c)
{
    if (s->len + 1 < s->size)
        s->buf[s->len] = c;
    s->len++;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = { buf_put, buf, size, 0 };
    format(&s, fmt, ap);
    if (size)
        buf[s.len < size ? s.len : size - 1] = 0;
    return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Console output: one lock for all CPUs. The owner may re-enter (panic from a fault while
 * printing); nobody may print from an NMI handler. */
static spinlock_t print_lock = SPINLOCK_INIT;

static void serial_put(struct sink *s, char c)
{
    (void)s;
    if (c == '\n')
        serial_putc('\r');
    serial_putc(c);
}

static bool print_lock_take(void)
{
    if (print_lock.v && print_lock.owner == this_cpu()->idx)
        return false;               /* re-entered on the owning CPU: print without the lock */
    spin_lock(&print_lock);
    return true;
}

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
    struct sink s = { serial_put, NULL, 0, 0 };
    bool locked = print_lock_take();
    if (prefix)
        for (const char *p = prefix; *p; p++)
            serial_put(&s, *p);
    format(&s, fmt, ap);
    if (locked)
        spin_unlock(&print_lock);
}

void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint(NULL, fmt, ap);
    va_end(ap);
}

void info(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    printf("INFO %s\n", line);
}
