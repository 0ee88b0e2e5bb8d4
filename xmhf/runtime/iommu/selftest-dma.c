/* selftest=dma: a real device tries to reach the hypervisor's memory. QEMU's "edu" teaching device
 * (PCI 1234:11e8, QEMU docs/specs/edu.rst) has a DMA engine: registers at BAR0 0x80 source, 0x88
 * destination, 0x90 count, 0x98 command (bit 0 start, bit 1 direction: 0 RAM -> its 4 KiB buffer at
 * device address 0x40000, 1 buffer -> RAM); it clears bit 0 when done. Its DMA addresses are masked to
 * 28 bits, so the test runs with less than 256 MiB of RAM. With early set (selftest=dma-early) it runs
 * before the runtime's tables are in, under init's deny-all table: nothing may get through. */
#include <xmhf/iommu.h>
#include <xmhf/runtime.h>
#include <xmhf/vcpu.h>
#include <lib/string.h>
#include <x86/io.h>

#define EDU_VENDOR_DEVICE 0x11e81234u
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_START 1
#define EDU_CMD_TO_RAM 2
#define EDU_BUF 0x40000
#define EDU_DMA_LIMIT (1ULL << 28)
/* Half the device's buffer: QEMU 7.2's edu rejects (as a hardware error) a DMA that ends on the buffer's
 * last byte, an off-by-one in its range check. */
#define DMA_BYTES 2048

/* Guest pages the test may use: conventional memory, free once init is done (the AP start-up page is
 * the highest free one below 640 KiB, well above these). */
#define GUEST_SRC 0x70000ULL
#define GUEST_DST 0x71000ULL

static u32 pci_read32(u32 bdf, u32 off)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
	return inl(0xcfc);
}

static void pci_write32(u32 bdf, u32 off, u32 v)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
	outl(0xcfc, v);
}

static volatile u64 *edu_reg(u64 bar, u32 off)
{
	return (volatile u64 *)(uintptr_t)(bar + off);
}

/* One DMA of DMA_BYTES; false if the device never finished. */
static bool edu_dma(u64 bar, u64 src, u64 dst, bool to_ram)
{
	*edu_reg(bar, EDU_DMA_SRC) = src;
	*edu_reg(bar, EDU_DMA_DST) = dst;
	*edu_reg(bar, EDU_DMA_CNT) = DMA_BYTES;
	*edu_reg(bar, EDU_DMA_CMD) = EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0);
	for (u32 i = 0; i < 2000; i++) {
		if (!(*edu_reg(bar, EDU_DMA_CMD) & EDU_CMD_START))
			return true;
		udelay(1000);
	}
	return false;
}

static u32 find_edu(void)
{
	for (u32 dev = 0; dev < 32; dev++)
		if (pci_read32(dev << 3, 0) == EDU_VENDOR_DEVICE)
			return dev << 3;
	return ~0u;
}

static bool all_bytes(const u8 *p, u8 v)
{
	for (u32 i = 0; i < DMA_BYTES; i++)
		if (p[i] != v)
			return false;
	return true;
}

void iommu_selftest_dma(bool early)
{
	u32 bdf = find_edu();
	u8 *src = guestmem_ptr(GUEST_SRC, PAGE_SIZE_4K), *dst = guestmem_ptr(GUEST_DST, PAGE_SIZE_4K);
	u8 *secret = page_alloc(1), *target = page_alloc(1);
	u64 bar;
	u32 faults;

	if (bdf == ~0u) {
		printf("XMHF: selftest: no edu DMA device (QEMU -device edu) on PCI bus 0\n");
		return;
	}
	bar = pci_read32(bdf, 0x10) & ~0xfULL;
	pci_write32(bdf, 0x04, pci_read32(bdf, 0x04) | 0x6); /* memory space, bus master */
	printf("XMHF: selftest: DMA engine edu at 00:%02x.%u, BAR0 0x%llx; VT-d %s\n", bdf >> 3, bdf & 7,
	       (unsigned long long)bar, early ? "as init left it" : iommu_active() ? "on" : "off");
	if ((u64)(uintptr_t)target + PAGE_SIZE_4K > EDU_DMA_LIMIT) {
		printf("XMHF: selftest: the region is above edu's 28-bit DMA reach; run with less RAM\n");
		return;
	}

	/* 1. Guest memory: RAM -> device -> RAM must copy the page. */
	for (u32 i = 0; i < PAGE_SIZE_4K; i++)
		src[i] = (u8)(i * 13 + 1);
	memset(dst, 0, PAGE_SIZE_4K);
	if (!edu_dma(bar, GUEST_SRC, EDU_BUF, false) || !edu_dma(bar, EDU_BUF, GUEST_DST, true)) {
		printf("XMHF: selftest: the edu DMA engine did not finish\n");
		return;
	}
	printf("XMHF: selftest: DMA guest 0x%llx -> device -> guest 0x%llx: %s\n", GUEST_SRC, GUEST_DST,
	       memcmp(src, dst, DMA_BYTES) == 0 ? "copied, 2048 bytes match" : "not copied, bytes differ");

	/* 2. A write into the region: the device's buffer (the pattern) onto a zeroed heap page. */
	edu_dma(bar, EDU_BUF, (u64)(uintptr_t)target, true);
	faults = iommu_report_faults(); /* at once: a unit may have a single fault record (QEMU has one) */
	printf("XMHF: selftest: DMA write into the hypervisor region at 0x%llx: %s\n",
	       (unsigned long long)(uintptr_t)target, all_bytes(target, 0) ? "blocked, page unchanged"
									: "NOT BLOCKED, page overwritten");

	/* 3. A read from the region: a secret page into the device, then out to guest memory. */
	memset(secret, 0x5a, PAGE_SIZE_4K);
	memset(dst, 0, PAGE_SIZE_4K);
	edu_dma(bar, (u64)(uintptr_t)secret, EDU_BUF, false);
	faults += iommu_report_faults();
	edu_dma(bar, EDU_BUF, GUEST_DST, true);
	printf("XMHF: selftest: DMA read from the hypervisor region at 0x%llx: %s\n",
	       (unsigned long long)(uintptr_t)secret,
	       all_bytes(dst, 0x5a) ? "NOT BLOCKED, secret leaked" : "blocked, nothing leaked");
	if (!early) /* else the records are read once the runtime's tables are in (vtd.c) */
		printf("XMHF: selftest: %u DMA fault records reported\n", faults + iommu_report_faults());
	page_free(secret, 1);
	page_free(target, 1);
}
