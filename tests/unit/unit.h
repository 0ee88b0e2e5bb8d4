/* A very small unit test framework: TEST(name) { ... } registers a test; CHECK* report failures with
 * file:line and the values involved and let the test continue; REQUIRE* return from the test. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
};

void unit_register(struct unit_test *t);
void unit_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                  \
	static void test_##name(void);                                              \
	static struct unit_test unit_##name = { #name, test_##name, NULL };         \
	__attribute__((constructor)) static void unit_reg_##name(void)              \
	{                                                                           \
		unit_register(&unit_##name);                                        \
	}                                                                           \
	static void test_##name(void)

/* Each CHECK evaluates to 1 if it held, 0 otherwise, so that a test can bail out: if (!CHECK(x)) return; */
#define CHECK(cond)                                                                 \
	({                                                                          \
		int unit_ok_ = !!(cond);                                            \
		if (!unit_ok_)                                                      \
			unit_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);   \
		unit_ok_;                                                           \
	})

/* Integers of any type, compared as 64-bit values. */
#define CHECK_EQ(a, b)                                                              \
	({                                                                          \
		unsigned long long unit_a_ = (unsigned long long)(a);               \
		unsigned long long unit_b_ = (unsigned long long)(b);               \
		int unit_ok_ = unit_a_ == unit_b_;                                  \
		if (!unit_ok_)                                                      \
			unit_fail(__FILE__, __LINE__,                               \
				  "CHECK_EQ(%s, %s) failed: %lld (0x%llx) != %lld (0x%llx)", \
				  #a, #b, (long long)unit_a_, unit_a_, (long long)unit_b_, unit_b_); \
		unit_ok_;                                                           \
	})

#define CHECK_STR_EQ(a, b)                                                          \
	({                                                                          \
		const char *unit_a_ = (a), *unit_b_ = (b);                          \
		int unit_ok_ = unit_a_ && unit_b_ && strcmp(unit_a_, unit_b_) == 0; \
		if (!unit_ok_)                                                      \
			unit_fail(__FILE__, __LINE__,                               \
				  "CHECK_STR_EQ(%s, %s) failed: \"%s\" != \"%s\"",  \
				  #a, #b, unit_a_ ? unit_a_ : "(null)",            \
				  unit_b_ ? unit_b_ : "(null)");                    \
		unit_ok_;                                                           \
	})

#define CHECK_MEM_EQ(a, b, n)                                                       \
	({                                                                          \
		int unit_ok_ = memcmp((a), (b), (n)) == 0;                          \
		if (!unit_ok_)                                                      \
			unit_fail(__FILE__, __LINE__, "CHECK_MEM_EQ(%s, %s, %s) failed", \
				  #a, #b, #n);                                      \
		unit_ok_;                                                           \
	})

#define REQUIRE(cond)                                                               \
	do {                                                                        \
		if (!CHECK(cond))                                                   \
			return;                                                     \
	} while (0)

#define REQUIRE_EQ(a, b)                                                            \
	do {                                                                        \
		if (!CHECK_EQ(a, b))                                                \
			return;                                                     \
	} while (0)

#endif
