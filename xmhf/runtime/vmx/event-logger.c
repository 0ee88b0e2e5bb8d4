/* The event logger (build.sh --event-logger): per-CPU counts of VM exits by reason, L1's and L2's
 * apart, with the TSC ticks the hypervisor spent handling them (from vmexit_dispatch's start to its
 * end: the exit profile `make bench` draws), and CPUID exits by leaf, RDMSR/WRMSR exits by MSR index,
 * L2's I/O exits by port and L1's VMREAD/VMWRITE exits by field (those the shadow VMCS does not hold)
 * in small tables. Printed every 2^24 exits of a CPU and when the machine stops
 * or powers off. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>

#ifdef XMHF_EVENT_LOGGER

#define KEYS 16
#define IO_KEYS 32

struct key_count {
	u32 reason, key;
	u64 count;
};

struct event_log {
	u64 by_reason[EXIT_REASON_MAX];
	u64 ticks[EXIT_REASON_MAX];    /* L0's TSC ticks handling L1's exits of each reason */
	u64 l2_by_reason[EXIT_REASON_MAX];
	u64 l2_ticks[EXIT_REASON_MAX];
	struct key_count keys[KEYS];
	u64 other_keys;
	struct key_count io_keys[IO_KEYS]; /* L2's I/O exits by port: a table of their own, as L1's CPUID
					    * leaves and MSRs fill the other before L2 runs */
	u64 other_io_keys;
	struct key_count vmx_keys[IO_KEYS]; /* L1's VMREAD/VMWRITE exits by field encoding, hottest kept */
	u64 other_vmx_keys;                 /* keys that replaced a less counted one */
};

static struct event_log *log_of(struct vcpu *v)
{
	struct cpu *c = v->cpu;

	if (!c->event_log)
		c->event_log = page_alloc(ALIGN_UP(sizeof(struct event_log), PAGE_SIZE_4K) / PAGE_SIZE_4K);
	return c->event_log;
}

void event_log_exit(struct vcpu *v, u32 reason, bool l2, u64 ticks)
{
	struct event_log *l = log_of(v);
	u32 r = reason < EXIT_REASON_MAX ? reason : 0;

	(l2 ? l->l2_by_reason : l->by_reason)[r]++;
	(l2 ? l->l2_ticks : l->ticks)[r] += ticks;
	if ((v->exits & ((1ULL << 24) - 1)) == 0)
		event_log_print_all();
}

static void print_row(u32 cpu, const char *what, const u64 *counts, const u64 *values)
{
	bool any = false;

	for (u32 r = 0; r < EXIT_REASON_MAX; r++)
		any |= counts[r] != 0;
	if (!any)
		return;
	printf("XMHF: %s CPU %u:", what, cpu);
	for (u32 r = 0; r < EXIT_REASON_MAX; r++)
		if (counts[r])
			printf(" r%u=%llu", r, (unsigned long long)values[r]);
	printf("\n");
}

/* Counts key in a small table. A full table counts a new key in *other, unless hot: L1's VMREAD/VMWRITE
 * fields, where a VMCS set-up writes dozens of fields once and would fill the table before the hot ones
 * come. Then Space-Saving (Metwally et al., 2005): the new key replaces the least counted one and
 * inherits its count plus one (*other counts the replacements), so every field seen more often than
 * the smallest count stays, its count at most that much too high. */
static void count_key(struct key_count *keys, u32 n, u64 *other, u32 reason, u32 key, bool hot)
{
	u32 min = 0;

	for (u32 i = 0; i < n; i++) {
		if (keys[i].count && keys[i].reason == reason && keys[i].key == key) {
			keys[i].count++;
			return;
		}
		if (!keys[i].count) {
			keys[i] = (struct key_count){ reason, key, 1 };
			return;
		}
		if (keys[i].count < keys[min].count)
			min = i;
	}
	if (hot)
		keys[min] = (struct key_count){ reason, key, keys[min].count + 1 };
	(*other)++;
}

void event_log_key(struct vcpu *v, u32 reason, u32 key)
{
	struct event_log *l = log_of(v);

	if (reason == EXIT_REASON_IO)
		count_key(l->io_keys, IO_KEYS, &l->other_io_keys, reason, key, false);
	else if (reason == EXIT_REASON_VMREAD || reason == EXIT_REASON_VMWRITE)
		count_key(l->vmx_keys, IO_KEYS, &l->other_vmx_keys, reason, key, true);
	else
		count_key(l->keys, KEYS, &l->other_keys, reason, key, false);
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
		print_row(i, "exit ticks", l->by_reason, l->ticks);
		print_row(i, "L2 exits", l->l2_by_reason, l->l2_by_reason);
		print_row(i, "L2 exit ticks", l->l2_by_reason, l->l2_ticks);
		for (u32 k = 0; k < KEYS && l->keys[k].count; k++)
			printf("XMHF: exits CPU %u: %s 0x%x = %llu\n", i,
			       l->keys[k].reason == EXIT_REASON_CPUID ? "cpuid" :
			       l->keys[k].reason == EXIT_REASON_RDMSR ? "rdmsr" : "wrmsr",
			       l->keys[k].key, (unsigned long long)l->keys[k].count);
		if (l->other_keys)
			printf("XMHF: exits CPU %u: other keys = %llu\n", i, (unsigned long long)l->other_keys);
		for (u32 k = 0; k < IO_KEYS && l->io_keys[k].count; k++)
			printf("XMHF: exits CPU %u: L2 io port 0x%x = %llu\n", i, l->io_keys[k].key,
			       (unsigned long long)l->io_keys[k].count);
		if (l->other_io_keys)
			printf("XMHF: exits CPU %u: L2 io other ports = %llu\n", i, (unsigned long long)l->other_io_keys);
		for (u32 k = 0; k < IO_KEYS && l->vmx_keys[k].count; k++)
			printf("XMHF: exits CPU %u: %s 0x%x = %llu\n", i,
			       l->vmx_keys[k].reason == EXIT_REASON_VMREAD ? "vmread" : "vmwrite", l->vmx_keys[k].key,
			       (unsigned long long)l->vmx_keys[k].count);
		if (l->other_vmx_keys)
			printf("XMHF: exits CPU %u: vmread/vmwrite fields replaced = %llu (the counts above are at most "
			       "the smallest one too high)\n", i, (unsigned long long)l->other_vmx_keys);
	}
}

#endif
