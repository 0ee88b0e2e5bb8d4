/* The event logger (build.sh --event-logger): per-CPU counts of VM exits by reason, with CPUID exits
 * by leaf and RDMSR/WRMSR exits by MSR index in small tables. Printed every 2^24 exits of a CPU and
 * when the machine stops or powers off. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>

#ifdef XMHF_EVENT_LOGGER

#define KEYS 16

struct key_count {
	u32 reason, key;
	u64 count;
};

struct event_log {
	u64 by_reason[EXIT_REASON_MAX];
	struct key_count keys[KEYS];
	u64 other_keys;
};

static struct event_log *log_of(struct vcpu *v)
{
	struct cpu *c = v->cpu;

	if (!c->event_log)
		c->event_log = page_alloc(ALIGN_UP(sizeof(struct event_log), PAGE_SIZE_4K) / PAGE_SIZE_4K);
	return c->event_log;
}

void event_log_exit(struct vcpu *v, u32 reason)
{
	struct event_log *l = log_of(v);

	l->by_reason[reason < EXIT_REASON_MAX ? reason : 0]++;
	if ((v->exits & ((1ULL << 24) - 1)) == 0)
		event_log_print_all();
}

void event_log_key(struct vcpu *v, u32 reason, u32 key)
{
	struct event_log *l = log_of(v);

	for (u32 i = 0; i < KEYS; i++) {
		if (l->keys[i].count && l->keys[i].reason == reason && l->keys[i].key == key) {
			l->keys[i].count++;
			return;
		}
		if (!l->keys[i].count) {
			l->keys[i] = (struct key_count){ reason, key, 1 };
			return;
		}
	}
	l->other_keys++;
}

void event_log_print_all(void)
{
	for (u32 i = 0; i < ncpus; i++) {
		struct event_log *l = cpu_table[i]->event_log;
		if (!l)
			continue;
		printf("XMHF: exits CPU %u:", i);
		for (u32 r = 0; r < EXIT_REASON_MAX; r++)
			if (l->by_reason[r])
				printf(" r%u=%llu", r, (unsigned long long)l->by_reason[r]);
		printf("\n");
		for (u32 k = 0; k < KEYS && l->keys[k].count; k++)
			printf("XMHF: exits CPU %u: %s 0x%x = %llu\n", i,
			       l->keys[k].reason == EXIT_REASON_CPUID ? "cpuid" :
			       l->keys[k].reason == EXIT_REASON_RDMSR ? "rdmsr" : "wrmsr",
			       l->keys[k].key, (unsigned long long)l->keys[k].count);
		if (l->other_keys)
			printf("XMHF: exits CPU %u: other keys = %llu\n", i, (unsigned long long)l->other_keys);
	}
}

#endif
