/* The runtime image (struct runtime_header, xmhf/bootinfo.h) as both loaders see it: the BIOS init and
 * the EFI loader check its header and apply its relocations the same way. */
#ifndef LIB_RUNTIME_IMAGE_H
#define LIB_RUNTIME_IMAGE_H
#include <xmhf/bootinfo.h>

/* 0 if the header is consistent with an image of avail bytes (version 1, sizes in order, entry and
 * relocations inside the file, at most 256 MiB in memory), else -1. The magic is the caller's. */
int runtime_header_check(const struct runtime_header *h, u64 avail);

/* Applies the R_X86_64_RELATIVE relocations of the image already copied (bss zeroed) to base.
 * Returns 0, or -1 with *bad the index of a relocation of another type or outside the image. */
int runtime_relocate(u64 base, u32 *bad);

/* What both loaders do with a checked image: copy its file_size bytes from src to base (the two may
 * overlap), zero its bss up to rt_mem, relocate it, and start the boot-info block after it (bi_bytes,
 * zeroed) with the fields the layout decides: magic, size, region, runtime size, free base, CPU-list
 * offset and count. Returns the block, or NULL with *bad set as runtime_relocate sets it. */
struct bootinfo *runtime_install(u64 base, const void *src, u64 rt_mem, u64 region_size, u64 bi_bytes, u32 ncpus,
				 u32 *bad);

#endif
