/* Runtime image header check and relocation (see lib/runtime-image.h). */
#include <lib/runtime-image.h>
#include <lib/string.h>

#define R_X86_64_RELATIVE 8
#define RELA_SIZE 24

int runtime_header_check(const struct runtime_header *h, u64 avail)
{
	if (h->header_version != 1 || h->file_size > avail || h->mem_size < h->file_size ||
	    h->entry_offset >= h->file_size || h->rela_offset > h->file_size ||
	    h->rela_size > h->file_size - h->rela_offset || h->mem_size > (256ULL << 20))
		return -1;
	return 0;
}

int runtime_relocate(u64 base, u32 *bad)
{
	const struct runtime_header *h = (const struct runtime_header *)(uintptr_t)base;
	const u8 *rela = (const u8 *)(uintptr_t)(base + h->rela_offset);
	u32 n = 0;

	for (u64 off = 0; off + RELA_SIZE <= h->rela_size; off += RELA_SIZE, n++) {
		u64 r[3]; /* r_offset, r_info, r_addend */

		memcpy(r, rela + off, sizeof(r));
		if ((u32)r[1] != R_X86_64_RELATIVE || r[0] > h->mem_size - 8) {
			*bad = n;
			return -1;
		}
		u64 v = base + r[2];
		memcpy((void *)(uintptr_t)(base + r[0]), &v, 8);
	}
	return 0;
}

struct bootinfo *runtime_install(u64 base, const void *src, u64 rt_mem, u64 region_size, u64 bi_bytes, u32 ncpus,
				 u32 *bad)
{
	u64 file_size = ((const struct runtime_header *)src)->file_size;
	struct bootinfo *bi;

	memmove((void *)(uintptr_t)base, src, file_size);
	memset((void *)(uintptr_t)(base + file_size), 0, rt_mem - file_size);
	if (runtime_relocate(base, bad))
		return NULL;
	bi = (struct bootinfo *)(uintptr_t)(base + rt_mem);
	memset(bi, 0, bi_bytes);
	bi->magic = BOOTINFO_MAGIC;
	bi->size = sizeof(*bi) + (u64)ncpus * 4;
	bi->region_base = base;
	bi->region_size = region_size;
	bi->runtime_mem = rt_mem;
	bi->free_base = base + rt_mem + bi_bytes;
	bi->cpus_offset = sizeof(*bi);
	bi->ncpus = ncpus;
	return bi;
}
