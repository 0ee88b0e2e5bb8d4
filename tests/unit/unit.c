/* Test runner: runs the registered tests (those whose name contains one of the argv substrings, or
 * all), prints PASS/FAIL per test and a final "N passed, M failed" line. */
#include <stdarg.h>
#include <stdlib.h>
#include "unit.h"

static struct unit_test *head, **tail = &head;
static int cur_failures;

void unit_register(struct unit_test *t)
{
	t->next = NULL;
	*tail = t;
	tail = &t->next;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	cur_failures++;
}

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	/* Unbuffered, so that failure details and a crash stay in order with the PASS/FAIL lines. */
	setvbuf(stdout, NULL, _IONBF, 0);
	for (struct unit_test *t = head; t; t = t->next) {
		if (!selected(t->name, argc, argv))
			continue;
		cur_failures = 0;
		t->fn();
		if (cur_failures) {
			printf("FAIL %s\n", t->name);
			failed++;
		} else {
			printf("PASS %s\n", t->name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
