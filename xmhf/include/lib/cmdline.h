/* Parsing of init's multiboot command line, e.g.
 *   "/boot/init-x86-amd64.bin serial=115200,8n1,0x3f8 boot_drive=0x80"
 * The first word is the kernel path (GRUB passes it) and is skipped when it holds no '='. */
#ifndef LIB_CMDLINE_H
#define LIB_CMDLINE_H
#include <xmhf/types.h>

/* selftest= values: each makes the ready runtime fault once (UD2; a read of address 0; a write to its
 * own text; a call into a heap page), so a test sees the dump and the page-table hardening. */
enum { SELFTEST_NONE, SELFTEST_EXCEPTION, SELFTEST_NULL, SELFTEST_WRITE_TEXT, SELFTEST_EXEC_HEAP,
       /* selftest=dma: once VT-d is on, a PCI DMA engine (QEMU's edu) writes into the hypervisor's
        * region (must be blocked) and into guest memory (must work); docs/trusted-boot.md */
       SELFTEST_DMA,
       /* selftest=dma-early: the same before the runtime's VT-d tables, under init's deny-all table */
       SELFTEST_DMA_EARLY,
       /* selftest=tpm-log: init prints the TPM event log in hex (checked with tpm2_eventlog) */
       SELFTEST_TPM_LOG };

/* tpm= and vtd=: measure into the TPM / protect the region from DMA when the hardware is there
 * (auto, default), never (off), or stop the boot when it cannot be done (required). */
enum { TRUST_AUTO = 0, TRUST_OFF = 1, TRUST_REQUIRED = 2 };

/* What the runtime does once every CPU is up: start the guest (default), or, for boot tests of the
 * runtime alone, halt or power off. */
enum on_ready_action { ON_READY_GUEST = 0, ON_READY_HALT = 1, ON_READY_POWEROFF = 2 };
/* What the hypervisor does when it stops the guest (triple fault, security violation, hypervisor bug). */
enum on_stop_action { ON_STOP_HALT = 0, ON_STOP_RESET = 1, ON_STOP_POWEROFF = 2 };
/* How the guest's INIT/SIPI are caught (docs/decisions.md): trap every xAPIC write for good, or only
 * until the guest's APs are up and then rely on INIT/SIPI VM exits (init-exit); auto picks. */
enum apic_policy { APIC_AUTO = 0, APIC_TRAP = 1, APIC_INIT_EXIT = 2 };

struct boot_cmdline {
	u32 baud;            /* serial=BAUD,...      default 115200 */
	u8 data_bits;        /* 5..8                  default 8 */
	char parity;         /* 'n', 'o' or 'e'       default 'n' */
	u8 stop_bits;        /* 1 or 2                default 1 */
	u8 on_stop;          /* on_stop=halt|reset|poweroff, default halt */
	u16 serial_port;     /* I/O port              default 0x3f8 */
	u8 boot_drive;       /* boot_drive=0xNN       default 0x80 */
	u8 on_ready;         /* on_ready=guest|halt|poweroff, default guest */
	u16 unknown_keys;    /* count of words with an unknown key (ignored, XMHF compatibility) */
	u8 ept02_drop;       /* ept02_drop=0|1: each L1 VMLAUNCH/VMRESUME drops the CPU's EPT02s (tests) */
	u8 nested;           /* nested=0|1: offer VMX to the guest (default 1) */
	u8 selftest;         /* selftest=...: fault in the runtime once ready (tests the dump, page rights) */
	u8 dryrun;           /* dryrun=0|1: UEFI boot only; everything but VMX, then back to the firmware */
	u8 tpm;              /* tpm=auto|off|required (TRUST_*), default auto */
	u8 vtd;              /* vtd=auto|off|required (TRUST_*), default auto */
	u8 apic;             /* apic=auto|trap|init-exit (APIC_*), default auto */
	u16 ept01_top_gib;   /* ept01_top=N: EPT01 maps only the first N GiB at boot, the rest on demand (tests) */
};

/* Fills *out with the defaults, then applies the words of s (NULL means empty).
 * Returns 0 on success; on a malformed value of a known key returns -1 and writes a one-line reason
 * (e.g. "serial: bad baud rate 'garbage'") into err (NUL-terminated, truncated to errlen).
 * Keys: serial=BAUD[,DPS[,PORT]] where DPS is like 8n1; PORT hex (0x..) or decimal;
 *       boot_drive=0xNN (hex or decimal, 0..255); on_ready=guest|halt|poweroff;
 *       on_stop=halt|reset|poweroff; nested=0|1;
 *       selftest=none|exception|null|write-text|exec-heap|dma|dma-early|tpm-log; tpm=auto|off|required;
 *       vtd=auto|off|required; dryrun=0|1; ept01_top=GIB (1..65535); apic=auto|trap|init-exit;
 *       ept02_drop=0|1.
 * Unknown keys and words without '=' are counted in unknown_keys and otherwise ignored. */
int cmdline_parse(const char *s, struct boot_cmdline *out, char *err, size_t errlen);

#endif
