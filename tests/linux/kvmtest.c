/* kvmtest - a tiny KVM user (the "VMM") for the Linux guest test linux-kvm-*: Linux in the test VM runs
 * KVM (kvm.ko + kvm-intel.ko), and this program runs two small guests through /dev/kvm. On bare Bochs
 * Linux is L1 and its guests are L2 of Bochs's own VMX; under XMHF with nested=1, Linux/KVM is XMHF's
 * L1 and every KVM VM entry and exit below goes through XMHF's nested VMX emulation.
 *
 * Build: gcc -static -O2 -o kvmtest kvmtest.c (tests/linux/build.sh). Output on stdout, one check per
 * line, "KVMTEST: <name> <value>", then "KVMTEST: ok" or "KVMTEST: FAIL <why>" for the first failed
 * check (the program goes on to the end so one log shows every value). tests/runner/linux.py compares
 * the lines with a fixed list, which makes the bare and the XMHF run agree with each other. Everything
 * printed is deterministic: no time, no host-dependent CPUID leaf beyond the vendor string.
 *
 * Guest 1, real mode (unrestricted guest, or KVM's vm86 emulation when it is off): OUT of 8/16/32-bit
 * values, an IN answered by us, a loop, a store to RAM, CPUID leaf 0, an MMIO write and an MMIO read
 * outside the memory slot (KVM's EPT-violation/MMIO path and its instruction emulator), HLT.
 * Guest 2, 64-bit long mode with 4-level paging set up by us: 64-bit arithmetic, a store through
 * paging, OUT, an 8-byte MMIO write, HLT. Register and memory values are read back afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE 0x10000UL  /* the one memory slot: guest-physical 0..64 KiB */
#define CODE 0x1000UL       /* guest code */
#define DATA 0x500UL        /* where the guests store a result */
#define MMIO 0x20000UL      /* real-mode guest's MMIO address: outside the slot */
#define MMIO64 0x100000UL   /* long-mode guest's MMIO address: outside the slot, inside its 2 MiB page */

static int failed;

static void out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("KVMTEST: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	va_end(ap);
}

/* One check: prints "name value" and, the first time a value differs from what is wanted, a FAIL
 * line (the runner also compares the printed values, so a FAIL is never the only evidence). */
static void check(const char *name, unsigned long long got, unsigned long long want)
{
	out("%s 0x%llx", name, got);
	if (got != want && !failed) {
		out("FAIL %s is 0x%llx, want 0x%llx", name, got, want);
		failed = 1;
	}
}

static void die(const char *what)
{
	out("FAIL %s: %s", what, strerror(errno));
	exit(1);
}

struct vm {
	int fd, vcpu;
	struct kvm_run *run;
	uint8_t *mem;
};

static struct kvm_cpuid2 *supported;

static void vm_create(int kvm, struct vm *vm)
{
	int size;
	struct kvm_userspace_memory_region region;

	vm->fd = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");
	/* Where KVM puts its real-mode TSS and identity page table when it must emulate real mode
	 * (no unrestricted guest); QEMU's addresses, far from the slot. Harmless otherwise. */
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		die("KVM_SET_TSS_ADDR");
	vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (vm->mem == MAP_FAILED)
		die("mmap guest memory");
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (unsigned long)vm->mem;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	vm->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
	/* The guest's CPUID is what KVM supports (as QEMU's -cpu host): long mode needs CPUID.LM in it,
	 * and guest 1 reads leaf 0 from it. */
	if (ioctl(vm->vcpu, KVM_SET_CPUID2, supported) < 0)
		die("KVM_SET_CPUID2");
}

/* Runs the vCPU until the next exit to us; returns the exit reason. */
static unsigned vm_run(struct vm *vm)
{
	if (ioctl(vm->vcpu, KVM_RUN, 0) < 0)
		die("KVM_RUN");
	return vm->run->exit_reason;
}

static const char *exit_name(unsigned r)
{
	switch (r) {
	case KVM_EXIT_IO: return "io";
	case KVM_EXIT_MMIO: return "mmio";
	case KVM_EXIT_HLT: return "hlt";
	case KVM_EXIT_SHUTDOWN: return "shutdown";
	case KVM_EXIT_FAIL_ENTRY: return "fail_entry";
	case KVM_EXIT_INTERNAL_ERROR: return "internal_error";
	default: return "other";
	}
}

/* An exit that must be an OUT of `size` bytes to `port`: returns the value written. */
static unsigned long long want_out(struct vm *vm, const char *name, unsigned port, unsigned size)
{
	unsigned r = vm_run(vm);
	struct kvm_run *run = vm->run;
	unsigned long long v = 0;

	if (r != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT || run->io.port != port ||
	    run->io.size != size || run->io.count != 1) {
		if (r == KVM_EXIT_FAIL_ENTRY)
			out("FAIL %s: VM entry failed, hardware reason 0x%llx", name,
			    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		else if (r == KVM_EXIT_INTERNAL_ERROR)
			out("FAIL %s: KVM internal error, suberror %u", name, run->internal.suberror);
		else
			out("FAIL %s: want OUT port 0x%x size %u, got exit %u (%s) port 0x%x size %u dir %u",
			    name, port, size, r, exit_name(r), run->io.port, run->io.size, run->io.direction);
		exit(1);
	}
	memcpy(&v, (uint8_t *)run + run->io.data_offset, size);
	return v;
}

/* An exit that must be MMIO at addr of len bytes; a write returns its data, a read gets `value`. */
static unsigned long long want_mmio(struct vm *vm, const char *name, unsigned long long addr, unsigned len,
				    int write, unsigned long long value)
{
	unsigned r = vm_run(vm);
	struct kvm_run *run = vm->run;
	unsigned long long v = 0;

	if (r != KVM_EXIT_MMIO || run->mmio.phys_addr != addr || run->mmio.len != len ||
	    run->mmio.is_write != write) {
		out("FAIL %s: want MMIO %s 0x%llx len %u, got exit %u (%s) addr 0x%llx len %u write %u", name,
		    write ? "write" : "read", addr, len, r, exit_name(r), (unsigned long long)run->mmio.phys_addr,
		    run->mmio.len, run->mmio.is_write);
		exit(1);
	}
	if (write)
		memcpy(&v, run->mmio.data, len);
	else
		memcpy(run->mmio.data, &value, len);
	return v;
}

static void want_hlt(struct vm *vm, const char *name)
{
	unsigned r = vm_run(vm);
	if (r != KVM_EXIT_HLT) {
		out("FAIL %s: want HLT, got exit %u (%s)", name, r, exit_name(r));
		exit(1);
	}
}

/* Guest 1: 16-bit real mode at 0000:1000. Hand-assembled; offsets from CODE on the left. */
static const uint8_t real_code[] = {
	0xba, 0x10, 0x00,             /* 00 mov dx, 0x10                                        */
	0xb0, 0x11,                   /* 03 mov al, 0x11                                        */
	0xee,                         /* 05 out dx, al         exit 1: port 0x10, 1 byte, 0x11  */
	0x31, 0xc0,                   /* 06 xor ax, ax                                          */
	0xb9, 0x64, 0x00,             /* 08 mov cx, 100                                         */
	0x01, 0xc8,                   /* 0b add ax, cx                                          */
	0xe2, 0xfc,                   /* 0d loop 0b            ax = 100 + 99 + ... + 1 = 5050   */
	0xef,                         /* 0f out dx, ax         exit 2: port 0x10, 2 bytes, 5050 */
	0xa3, 0x00, 0x05,             /* 10 mov [0x500], ax    RAM: read back by us             */
	0xe4, 0x12,                   /* 13 in al, 0x12        exit 3: we answer 0x5a           */
	0x04, 0x01,                   /* 15 add al, 1                                           */
	0xe6, 0x13,                   /* 17 out 0x13, al       exit 4: 0x5b                     */
	0x66, 0x31, 0xc0,             /* 19 xor eax, eax                                        */
	0x0f, 0xa2,                   /* 1c cpuid              leaf 0: KVM handles it in L1     */
	0x66, 0x89, 0xd8,             /* 1e mov eax, ebx                                        */
	0x66, 0xe7, 0x14,             /* 21 out 0x14, eax      exit 5: "Genu"                   */
	0x66, 0x89, 0xd0,             /* 24 mov eax, edx                                        */
	0x66, 0xe7, 0x14,             /* 27 out 0x14, eax      exit 6: "ineI"                   */
	0x66, 0x89, 0xc8,             /* 2a mov eax, ecx                                        */
	0x66, 0xe7, 0x14,             /* 2d out 0x14, eax      exit 7: "ntel"                   */
	0xb8, 0x00, 0x20,             /* 30 mov ax, 0x2000                                      */
	0x8e, 0xd8,                   /* 33 mov ds, ax                                          */
	0xc6, 0x06, 0x00, 0x00, 0xa5, /* 35 mov byte [0], 0xa5 exit 8: MMIO write 0x20000       */
	0xa0, 0x04, 0x00,             /* 3a mov al, [4]        exit 9: MMIO read 0x20004: 0x3c  */
	0x66, 0x0f, 0xb6, 0xc0,       /* 3d movzx eax, al                                       */
	0x31, 0xdb,                   /* 41 xor bx, bx                                          */
	0x8e, 0xdb,                   /* 43 mov ds, bx                                          */
	0x66, 0xbb, 0x78, 0x56, 0x34, 0x12, /* 45 mov ebx, 0x12345678                           */
	0xf4,                         /* 4b hlt                exit 10                          */
};

static void real_mode(int kvm)
{
	struct vm vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint16_t stored;

	vm_create(kvm, &vm);
	memcpy(vm.mem + CODE, real_code, sizeof(real_code));
	if (ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	/* From the reset state (CS = f000:fff0 with base ffff0000) to CS = 0, IP = 0x1000. */
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	if (ioctl(vm.vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE;
	regs.rflags = 2;
	if (ioctl(vm.vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	check("real out8", want_out(&vm, "real out8", 0x10, 1), 0x11);
	check("real out16 sum", want_out(&vm, "real out16", 0x10, 2), 5050);
	/* IN: KVM exits with the port; the value we put in the data area is what the guest's AL gets. */
	{
		unsigned r = vm_run(&vm);
		if (r != KVM_EXIT_IO || vm.run->io.direction != KVM_EXIT_IO_IN || vm.run->io.port != 0x12 ||
		    vm.run->io.size != 1) {
			out("FAIL real in: want IN port 0x12, got exit %u (%s)", r, exit_name(r));
			exit(1);
		}
		*((uint8_t *)vm.run + vm.run->io.data_offset) = 0x5a;
	}
	check("real in+1", want_out(&vm, "real out 0x13", 0x13, 1), 0x5b);
	check("real cpuid0 ebx", want_out(&vm, "real cpuid ebx", 0x14, 4), 0x756e6547); /* "Genu" */
	check("real cpuid0 edx", want_out(&vm, "real cpuid edx", 0x14, 4), 0x49656e69); /* "ineI" */
	check("real cpuid0 ecx", want_out(&vm, "real cpuid ecx", 0x14, 4), 0x6c65746e); /* "ntel" */
	check("real mmio write", want_mmio(&vm, "real mmio write", MMIO, 1, 1, 0), 0xa5);
	want_mmio(&vm, "real mmio read", MMIO + 4, 1, 0, 0x3c);
	want_hlt(&vm, "real hlt");
	out("real exits 10");

	if (ioctl(vm.vcpu, KVM_GET_REGS, &regs) < 0)
		die("KVM_GET_REGS");
	if (ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	check("real rax", regs.rax, 0x3c);               /* the MMIO read's value, zero-extended */
	check("real rbx", regs.rbx, 0x12345678);
	check("real rcx", regs.rcx, 0x6c65746e);         /* CPUID's ECX, untouched since */
	check("real rip", regs.rip, CODE + sizeof(real_code)); /* after the HLT */
	check("real ds", sregs.ds.selector, 0);
	check("real cr0.pe", sregs.cr0 & 1, 0);
	memcpy(&stored, vm.mem + DATA, sizeof(stored));
	check("real ram", stored, 5050);
}

/* Guest 2: 64-bit code at 0x1000, identity-mapped by one 2 MiB page (PML4 0x2000, PDPT 0x3000,
 * PD 0x4000). */
static const uint8_t long_code[] = {
	0x48, 0xb8, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* mov rax, 0x0123456789abcdef */
	0x48, 0x89, 0xc3,                                           /* mov rbx, rax                */
	0x48, 0xc1, 0xe3, 0x04,                                     /* shl rbx, 4                  */
	0x48, 0x89, 0x1c, 0x25, 0x00, 0x05, 0x00, 0x00,             /* mov [0x500], rbx            */
	0xe7, 0x10,                                                 /* out 0x10, eax   exit 1      */
	0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00,             /* mov [0x100000], rax  exit 2 */
	0x48, 0x31, 0xc9,                                           /* xor rcx, rcx                */
	0x48, 0xff, 0xc9,                                           /* dec rcx                     */
	0xf4,                                                       /* hlt             exit 3      */
};

static void long_mode(int kvm)
{
	struct vm vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_segment seg;
	uint64_t *pml4, *pdpt, *pd, stored;

	vm_create(kvm, &vm);
	memcpy(vm.mem + CODE, long_code, sizeof(long_code));
	pml4 = (uint64_t *)(vm.mem + 0x2000);
	pdpt = (uint64_t *)(vm.mem + 0x3000);
	pd = (uint64_t *)(vm.mem + 0x4000);
	pml4[0] = 0x3000 | 3;  /* present, writable */
	pdpt[0] = 0x4000 | 3;
	pd[0] = 0 | 0x83;      /* present, writable, 2 MiB page at 0 */

	if (ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	memset(&seg, 0, sizeof(seg));
	seg.present = 1;
	seg.s = 1;
	seg.limit = 0xffffffff;
	seg.g = 1;
	seg.type = 0xb;  /* code, execute/read, accessed */
	seg.l = 1;
	seg.selector = 8;
	sregs.cs = seg;
	seg.type = 3;    /* data, read/write, accessed */
	seg.l = 0;
	seg.db = 1;
	seg.selector = 0x10;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	sregs.cr3 = 0x2000;
	sregs.cr4 = 0x20;                    /* PAE */
	sregs.cr0 = 0x80050033;              /* PG, AM, WP, NE, ET, MP, PE */
	sregs.efer = 0x500;                  /* LMA, LME */
	if (ioctl(vm.vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS (long mode)");
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE;
	regs.rflags = 2;
	regs.rsp = 0x8000;
	if (ioctl(vm.vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	check("long out32", want_out(&vm, "long out32", 0x10, 4), 0x89abcdef);
	check("long mmio write", want_mmio(&vm, "long mmio write", MMIO64, 8, 1, 0), 0x0123456789abcdefULL);
	want_hlt(&vm, "long hlt");
	out("long exits 3");

	if (ioctl(vm.vcpu, KVM_GET_REGS, &regs) < 0)
		die("KVM_GET_REGS");
	if (ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	check("long rbx", regs.rbx, 0x123456789abcdef0ULL);
	check("long rcx", regs.rcx, ~0ULL);
	check("long rip", regs.rip, CODE + sizeof(long_code));
	check("long efer.lma", (sregs.efer >> 10) & 1, 1);
	memcpy(&stored, vm.mem + DATA, sizeof(stored));
	check("long ram", stored, 0x123456789abcdef0ULL);
}

int main(void)
{
	int kvm, nent = 64;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	check("api version", ioctl(kvm, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	for (;;) {
		supported = calloc(1, sizeof(*supported) + nent * sizeof(supported->entries[0]));
		supported->nent = nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, supported) == 0)
			break;
		if (errno != E2BIG || nent > 4096)
			die("KVM_GET_SUPPORTED_CPUID");
		free(supported);
		nent *= 2;
	}
	real_mode(kvm);
	long_mode(kvm);
	if (!failed)
		out("ok");
	return failed;
}
