/* Physical page allocator over one contiguous range, with a bitmap (1 bit per 4 KiB page).
 * Not thread-safe: the runtime wraps it with a lock. Pure logic, unit-tested on the host. */
#ifndef LIB_PALLOC_H
#define LIB_PALLOC_H
#include <xmhf/types.h>

struct palloc {
	u64 base;          /* physical address of page 0, 4 KiB aligned */
	u64 npages;
	u64 free_pages;
	u64 hint;          /* page index where the next search starts */
	u64 *bitmap;       /* npages bits, 1 = used; storage supplied by the caller */
};

/* Bytes of bitmap storage needed for npages pages (a multiple of 8). */
u64 palloc_bitmap_bytes(u64 npages);

/* All pages start free, except page 0 when base is 0 (address 0 is palloc_alloc's failure value). */
void palloc_init(struct palloc *pa, u64 base, u64 npages, u64 *bitmap_storage);

/* Marks [addr, addr+npages*4K) used (e.g. to hold the bitmap itself). Pages outside the range ignored. */
void palloc_mark_used(struct palloc *pa, u64 addr, u64 npages);

/* Allocates npages contiguous pages whose first page address is a multiple of align_bytes (a power of
 * two >= 4096). Returns the physical address, or 0 if no such run is free. */
u64 palloc_alloc(struct palloc *pa, u64 npages, u64 align_bytes);

/* Frees pages previously allocated. Returns 0, or -1 (and changes nothing) if any page in the run is
 * outside the range or already free (a double free). */
int palloc_free(struct palloc *pa, u64 addr, u64 npages);

#endif
