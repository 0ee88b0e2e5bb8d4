/* Quiesce: stop every other CPU in the hypervisor while one CPU changes something they all use
 * (EPT01 protections). The initiator sends an NMI to all other CPUs; each counts in from its NMI exit
 * or NMI handler and spins until released. The lock serialises initiators; a CPU spinning for the lock
 * still answers another initiator's NMI, so two initiators cannot deadlock. A CPU whose guest waits in
 * the wait-for-SIPI activity state (sipi.c) blocks NMIs but runs nothing: it counts as stopped, and
 * joins a quiesce in progress when its SIPI exit wakes it. */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/spinlock.h>
#include <x86/cpu.h>
#include <x86/lapic.h>

static spinlock_t quiesce_lock;
static volatile u32 quiesce_active;
static volatile u32 quiesce_count;
static volatile u32 quiesce_release;
static volatile u32 quiesce_parked;

void quiesce_begin(void)
{
	spin_lock(&quiesce_lock);
	quiesce_count = 0;
	__atomic_store_n(&quiesce_release, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&quiesce_active, 1, __ATOMIC_SEQ_CST);
	if (ncpus > 1)
		lapic_send_ipi(0, ICR_DELIVERY_NMI | ICR_SHORTHAND_OTHERS);
	while (__atomic_load_n(&quiesce_count, __ATOMIC_ACQUIRE) + __atomic_load_n(&quiesce_parked, __ATOMIC_ACQUIRE) <
	       ncpus - 1)
		cpu_relax();
}

void quiesce_end(void)
{
	__atomic_store_n(&quiesce_active, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&quiesce_release, 1, __ATOMIC_SEQ_CST);
	/* Wait until every CPU has left, so the next quiesce starts from a clean count. */
	while (__atomic_load_n(&quiesce_count, __ATOMIC_ACQUIRE) != 0)
		cpu_relax();
	spin_unlock(&quiesce_lock);
}

/* From an NMI (exit or handler): true if it was a quiesce request, which has then been served. */
bool quiesce_nmi(void)
{
	if (!__atomic_load_n(&quiesce_active, __ATOMIC_ACQUIRE))
		return false;
	__atomic_add_fetch(&quiesce_count, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&quiesce_release, __ATOMIC_ACQUIRE))
		cpu_relax();
	__atomic_sub_fetch(&quiesce_count, 1, __ATOMIC_SEQ_CST);
	return true;
}

/* This CPU's guest goes into wait-for-SIPI (NMIs blocked until its SIPI exit). */
void quiesce_park(struct vcpu *v)
{
	if (v->parked)
		return;
	v->parked = 1;
	__atomic_add_fetch(&quiesce_parked, 1, __ATOMIC_SEQ_CST);
}

/* Its SIPI exit: no longer counted as stopped, so it joins a quiesce in progress before going on. */
void quiesce_unpark(struct vcpu *v)
{
	if (!v->parked)
		return;
	v->parked = 0;
	__atomic_sub_fetch(&quiesce_parked, 1, __ATOMIC_SEQ_CST);
	quiesce_nmi();
}
