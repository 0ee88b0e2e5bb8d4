/* DMA protection with Intel VT-d (docs/trusted-boot.md): every remapping unit the ACPI DMAR lists
 * translates every device's DMA through one second-level table, an identity map of all physical
 * addresses except the hypervisor's region. */
#ifndef RUNTIME_IOMMU_H
#define RUNTIME_IOMMU_H
#include <xmhf/types.h>

/* Parses the DMAR, programs and enables every unit, hides the DMAR from the guest. Prints one line of
 * outcome; stops the machine only under vtd=required. Called once on the BSP before the guest runs. */
void iommu_init(void);

/* True once DMA remapping protects the region. */
bool iommu_active(void);

/* Prints and clears the pending fault records of every unit; returns how many there were. */
u32 iommu_report_faults(void);

/* Takes the units' register pages out of EPT01, so the guest cannot turn translation off (called
 * after ept01_init). */
void iommu_protect_registers(void);

/* selftest=dma (selftest-dma.c): QEMU's edu device DMAs into the region (must be blocked) and into
 * guest memory (must work); early: under init's deny-all table (selftest=dma-early, all blocked). */
void iommu_selftest_dma(bool early);

#endif
