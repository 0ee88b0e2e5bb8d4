/* VMCS02's merged MSR and I/O bitmaps kept across entries while L1's bitmap pages are unchanged. L1 may
 * rewrite its bitmaps in memory between entries without a VMWRITE (SDM 25.6.4, 25.6.9: the CPU reads
 * them at each access), so a merge was redone at every VMLAUNCH/VMRESUME: three pages for Xen, about
 * 3,000 L0 ticks of each nested round trip. Instead, a page L1 uses as a bitmap is watched: EPT01
 * makes it read-only (quiescing the other CPUs, so no CPU keeps a writable translation), and the
 * first write L1 (or L2, through EPT02, whose rights come from EPT01) makes to it gives the write
 * back, bumps the page's version and is retried; an entry merges again only when the page's version
 * or L0's own bitmap changed. A page written again within MIN_HITS entries of its protection is
 * merged at every entry for a while (64 entries, then twice as many after each such write) before it
 * is protected again, and after MAX_UNPROTECTS writes for good: each protection costs a quiesce and
 * every CPU's EPT02s.
 * Not seen: L0's own stores into L1 memory (they bypass EPT01) and device DMA, should L1 make a
 * bitmap page also its VMCS region, an MSR-store list, an EPT12 table with A/D flags, a PML log or a
 * #VE area: such an L1 sees that bitmap change late (docs/known-bugs.md). */
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <xmhf/spinlock.h>
#include <lib/nested-logic.h>
#include "nested.h"

#define WATCHES 16
#define MAX_UNPROTECTS 32 /* writes to one page before it is merged at every entry instead */
#define MIN_HITS 64       /* entries a protection should serve before the next write, else... */
#define MAX_BACKOFF (1U << 20) /* ...the page is merged at the next 64, 128, ... entries, not protected */

struct page_watch {
	u64 gpa;          /* the page (0: slot unused; page 0 is never watched) */
	u32 version;      /* bumped at each write L1 made and at reuse of the slot */
	u32 protected;    /* EPT01 maps it read-only (R|X) for the watch */
	u32 unprotects;
	struct vcpu *owner; /* the vCPU whose entry protected it, and its entry count then: the */
	u64 owner_entries;  /* entries since, for the back-off rule (an L1's bitmap is its vCPU's) */
	u32 backoff;      /* entries to merge at without protecting after the last quick write */
	u32 skip;         /* of which still to come */
	u32 given_up;     /* written too often: not watched */
	u64 last_use;
};

static struct page_watch watches[WATCHES];
static u32 nwatches; /* slots ever used: the write-fault check is free until a bitmap is watched */
static u64 clock;
static spinlock_t lock;

/* Bumped with every watch's version, after it, and at each change of L0's bitmaps: a stamp taken
 * before is stale (nested_bitmaps_unchanged, nested.h). */
u32 nested_bitmaps_epoch;

/* The page changed (or its slot went to another page): merges of it made before are stale. */
static void bump(struct page_watch *w)
{
	__atomic_add_fetch(&w->version, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&nested_bitmaps_epoch, 1, __ATOMIC_RELEASE);
}

/* L0's MSR or I/O bitmap changed (its generation too, for nested_bitmap_current). */
void nested_l0_bitmaps_changed(void)
{
	__atomic_add_fetch(&nested_bitmaps_epoch, 1, __ATOMIC_RELEASE);
}

static struct page_watch *find(u64 gpa)
{
	for (u32 i = 0; i < nwatches; i++)
		if (watches[i].gpa == gpa)
			return &watches[i];
	return NULL;
}

/* A slot for gpa: an unused one, else the least recently merged (given back its rights first). */
static struct page_watch *take_slot(u64 gpa)
{
	struct page_watch *w;

	if (nwatches < WATCHES) {
		w = &watches[nwatches];
		__atomic_store_n(&nwatches, nwatches + 1, __ATOMIC_RELEASE);
	} else {
		w = &watches[0];
		for (u32 i = 1; i < WATCHES; i++)
			if (watches[i].last_use < w->last_use)
				w = &watches[i];
		if (w->protected)
			ept01_set_page_rights(w->gpa, EPT_RWX); /* wider rights: no quiesce needed */
	}
	bump(w);
	w->gpa = gpa;
	w->protected = 0;
	w->unprotects = 0;
	w->backoff = 0;
	w->skip = 0;
	w->given_up = 0;
	return w;
}

/* Before a merge of L1's bitmap page gpa: the page is watched (read-only in EPT01 on every CPU) if it
 * can be, and its watch returned with the version to record in *version (NULL: not watched, merge at
 * each entry). */
static struct page_watch *watch(struct vcpu *v, u64 gpa, u32 *version)
{
	struct page_watch *w;

	spin_lock(&lock);
	w = find(gpa);
	if (!w)
		w = take_slot(gpa);
	w->last_use = ++clock;
	if (w->skip)
		w->skip--;
	else if (!w->protected && !w->given_up && ept01_page_rights(gpa) == EPT_RWX) {
		/* Read-only everywhere before L1's page is read for the merge, so no write is missed. */
		ept01_change_page_rights(gpa, EPT_READ | EPT_EXEC);
		w->protected = 1;
		w->owner = v;
		w->owner_entries = v->nested_entries;
	}
	*version = __atomic_load_n(&w->version, __ATOMIC_ACQUIRE);
	if (!w->protected)
		w = NULL;
	spin_unlock(&lock);
	return w;
}

bool nested_bitmap_current(struct vcpu *v, u32 slot, u64 gpa, const struct sparse_bitmap *l0)
{
	struct bitmap02_cache *c = &v->bitmap02_cache[slot];
	struct page_watch *w = c->watch;

	/* The slot may have been taken for another page since: its version moved on then. */
	if (gpa && c->gpa == gpa && c->l0_generation == __atomic_load_n(&l0->generation, __ATOMIC_ACQUIRE) &&
	    __atomic_load_n(&w->protected, __ATOMIC_ACQUIRE) && __atomic_load_n(&w->version, __ATOMIC_ACQUIRE) == c->version)
		return true;
	c->gpa = 0;
	c->l0_generation = __atomic_load_n(&l0->generation, __ATOMIC_ACQUIRE);
	if (gpa && (c->watch = watch(v, gpa, &c->version)) != NULL)
		c->gpa = gpa; /* valid once the caller merged */
	return false;
}

void nested_bitmap_forget(struct vcpu *v, u32 slot)
{
	v->bitmap02_cache[slot].gpa = 0;
	v->bitmaps02_stamped = 0;
}

/* After nested_bitmap_current (and merges) for every page of `slots`, with `stamp` taken before:
 * the fast check holds from now on if every page is watched. */
void nested_bitmaps_stamped(struct vcpu *v, u32 stamp, u32 slots)
{
	v->bitmaps02_stamped = 0;
	for (u32 i = 0; i < ARRAY_SIZE(v->bitmap02_cache); i++)
		if ((slots & (1U << i)) && !v->bitmap02_cache[i].gpa)
			return; /* merged at every entry for now (not watched) */
	v->bitmaps02_stamp = stamp;
	v->bitmaps02_slots = slots;
	v->bitmaps02_stamped = 1;
}

/* A hypapp sets the rights of L1 page gpa (app/services.c): the page is the hypapp's from now on. A
 * watch on it gives up, so that the hypapp's rights stand (the watch would otherwise hand a write
 * back on the page's next write fault, or miss L1's writes after the hypapp made it writable) and
 * every entry merges the page again. */
void nested_bitmap_unwatch(u64 gpa)
{
	struct page_watch *w;

	if (!__atomic_load_n(&nwatches, __ATOMIC_ACQUIRE))
		return;
	spin_lock(&lock);
	w = find(gpa & ~0xfffULL);
	if (w) {
		__atomic_store_n(&w->protected, 0, __ATOMIC_RELEASE);
		bump(w);
		w->given_up = 1;
	}
	spin_unlock(&lock);
}

/* An EPT violation at L1 page gpa (from L1, or from L2 through EPT02): a write to a watched page gets
 * its rights back and is retried (true). */
bool nested_bitmap_watch_fault(u64 gpa, u64 qual)
{
	struct page_watch *w;
	bool handled = false;

	if (!__atomic_load_n(&nwatches, __ATOMIC_ACQUIRE) || !(qual & 2)) /* bit 1: a write (SDM 28.2.1) */
		return false;
	gpa &= ~0xfffULL;
	spin_lock(&lock);
	w = find(gpa);
	if (w && w->protected) {
		ept01_set_page_rights(gpa, EPT_RWX);
		__atomic_store_n(&w->protected, 0, __ATOMIC_RELEASE);
		bump(w);
		/* A page L1 rewrites at nearly every entry (XMHF as L1 merging its own VMCS02 bitmaps) is
		 * cheaper merged each time than protected again: a protection costs a quiesce and every
		 * EPT02. */
		if (!w->owner || w->owner->nested_entries - w->owner_entries < MIN_HITS) {
			w->backoff = w->backoff ? (w->backoff < MAX_BACKOFF ? 2 * w->backoff : MAX_BACKOFF) : MIN_HITS;
			w->skip = w->backoff;
		} else {
			w->backoff = 0;
		}
		if (++w->unprotects >= MAX_UNPROTECTS)
			w->given_up = 1;
		handled = true;
	} else if (w && (ept01_page_rights(gpa) & EPT_WRITE)) {
		handled = true; /* another CPU gave it back: this CPU's INVEPT before its entry sees it */
	}
	spin_unlock(&lock);
	return handled;
}
