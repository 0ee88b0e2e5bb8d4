/* The runtime's page heap: the part of the hypervisor region after the image and the boot-info block.
 * The allocator's bitmap lives in the first pages of the heap itself. */
#include <xmhf/runtime.h>
#include <xmhf/spinlock.h>
#include <lib/palloc.h>
#include <lib/string.h>
#include <x86/cpu.h>

static struct palloc heap;
static spinlock_t heap_lock;
static u64 heap_total;

void heap_init(u64 base, u64 end)
{
	u64 npages = (end - base) / PAGE_SIZE_4K;
	u64 bitmap_pages = ALIGN_UP(palloc_bitmap_bytes(npages), PAGE_SIZE_4K) / PAGE_SIZE_4K;

	BUG_ON(base % PAGE_SIZE_4K || npages <= bitmap_pages);
	memset((void *)(uintptr_t)base, 0, bitmap_pages * PAGE_SIZE_4K);
	palloc_init(&heap, base, npages, (u64 *)(uintptr_t)base);
	palloc_mark_used(&heap, base, bitmap_pages);
	heap_total = (npages - bitmap_pages) * PAGE_SIZE_4K;
}

void *page_try_alloc(u64 npages)
{
	u64 pa;

	spin_lock(&heap_lock);
	pa = palloc_alloc(&heap, npages, PAGE_SIZE_4K);
	spin_unlock(&heap_lock);
	if (pa)
		memset((void *)(uintptr_t)pa, 0, npages * PAGE_SIZE_4K);
	return (void *)(uintptr_t)pa;
}

void *page_alloc_aligned(u64 npages, u64 align_bytes)
{
	u64 pa;

	spin_lock(&heap_lock);
	pa = palloc_alloc(&heap, npages, align_bytes);
	spin_unlock(&heap_lock);
	if (!pa)
		panic("out of hypervisor memory: %llu pages wanted, %llu KiB free", (unsigned long long)npages,
		      (unsigned long long)(heap_free_bytes() >> 10));
	memset((void *)(uintptr_t)pa, 0, npages * PAGE_SIZE_4K);
	return (void *)(uintptr_t)pa;
}

void *page_alloc(u64 npages)
{
	return page_alloc_aligned(npages, PAGE_SIZE_4K);
}

void page_free(void *p, u64 npages)
{
	int rc;

	spin_lock(&heap_lock);
	rc = palloc_free(&heap, (u64)(uintptr_t)p, npages);
	spin_unlock(&heap_lock);
	if (rc)
		panic("page_free of %p (%llu pages): not allocated", p, (unsigned long long)npages);
}

u64 heap_free_bytes(void)
{
	return heap.free_pages * PAGE_SIZE_4K;
}

u64 heap_total_bytes(void)
{
	return heap_total;
}

u64 heap_table_alloc(void *ctx)
{
	(void)ctx;
	return (u64)(uintptr_t)page_alloc(1);
}

u64 *heap_table_at(void *ctx, u64 pa)
{
	(void)ctx;
	return (u64 *)(uintptr_t)pa;
}
