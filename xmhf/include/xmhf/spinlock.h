/* A test-and-set spinlock for the runtime (and hypapps). Not for NMI context: use it where an NMI
 * handler never takes the same lock. */
#ifndef XMHF_SPINLOCK_H
#define XMHF_SPINLOCK_H
#include <xmhf/types.h>

typedef volatile u32 spinlock_t;

static inline void spin_lock(spinlock_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause" ::: "memory");
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

#endif
