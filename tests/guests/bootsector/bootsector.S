/*
 * bootsector.S - minimal 16-bit test "guest" (a BIOS boot sector).
 *
 * Loaded at 0000:7C00 by the BIOS, by GRUB's `chainloader`, or by the
 * hypervisor. It
 *   1. initialises COM1 (0x3F8, 115200 8N1, polled) and prints
 *        "guest: boot sector reached, DL=0xNN"
 *      where NN is the BIOS drive number it was started with;
 *   2. reads LBA 0 of that drive again with INT 13h AH=02h (CHS 0/0/1) and
 *      compares it with itself, printing
 *        "guest: int13h read ok"  or  "guest: int13h read FAILED, AH=0xNN"
 *   3. waits for the UART to drain, then powers the machine off:
 *      "Shutdown" to port 0x8900 (Bochs) and 0x31 to
 *      port 0xF4 (QEMU isa-debug-exit; tools/bios-qemu.sh maps it to exit 0),
 *   4. falls into a cli/hlt loop if neither worked.
 *
 * Build: tests/guests/bootsector/build.sh OUTDIR  (-> OUTDIR/bootsector.bin)
 */
	.code16
	.text
	.globl	_start
_start:
	cli
	ljmp	$0, $1f			/* normalise CS:IP to 0000:7Cxx */
1:	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	cld
	movb	%dl, drive

	/* COM1: no interrupts, DLAB, divisor 1 (115200), 8N1, FIFO, DTR|RTS */
	movw	$0x3f9, %dx
	movb	$0x00, %al
	outb	%al, %dx
	movw	$0x3fb, %dx
	movb	$0x80, %al
	outb	%al, %dx
	movw	$0x3f8, %dx
	movb	$0x01, %al
	outb	%al, %dx
	movw	$0x3f9, %dx
	movb	$0x00, %al
	outb	%al, %dx
	movw	$0x3fb, %dx
	movb	$0x03, %al
	outb	%al, %dx
	movw	$0x3fa, %dx
	movb	$0xc7, %al
	outb	%al, %dx
	movw	$0x3fc, %dx
	movb	$0x03, %al
	outb	%al, %dx

	movw	$msg_reached, %si
	call	puts
	movb	drive, %al
	call	puthex8
	movw	$msg_crlf, %si
	call	puts

	/* Re-read our own sector through the BIOS and compare. */
	movw	$0x0201, %ax		/* AH=02 read, AL=1 sector */
	movw	$0x0001, %cx		/* cylinder 0, sector 1 */
	xorb	%dh, %dh		/* head 0 */
	movb	drive, %dl
	movw	$0x8000, %bx		/* ES:BX = 0000:8000 */
	stc
	int	$0x13
	jc	2f
	movw	$0x7c00, %si
	movw	$0x8000, %di
	movw	$256, %cx
	repe cmpsw
	jne	3f
	movw	$msg_read_ok, %si
	call	puts
	jmp	poweroff
3:	xorb	%ah, %ah		/* read "succeeded" but data differs */
2:	pushw	%ax
	movw	$msg_read_fail, %si
	call	puts
	popw	%ax
	movb	%ah, %al
	call	puthex8
	movw	$msg_crlf, %si
	call	puts

poweroff:
	movw	$msg_off, %si
	call	puts
	/* Let the UART finish sending (LSR.TEMT) before the machine goes away,
	   or an emulator may drop the last characters. */
	movw	$0x3fd, %dx
	movw	$0xffff, %cx
6:	inb	%dx, %al
	testb	$0x40, %al
	jnz	7f
	loop	6b
7:
	movw	$0x8900, %dx		/* Bochs: "Shutdown" to port 0x8900 */
	movw	$msg_shutdown, %si
4:	lodsb
	testb	%al, %al
	jz	5f
	outb	%al, %dx
	jmp	4b
5:	movb	$0x31, %al		/* QEMU isa-debug-exit at 0xf4 */
	outb	%al, $0xf4
halt:	cli
	hlt
	jmp	halt

/* puts: print NUL-terminated string at DS:SI on COM1 */
puts:	lodsb
	testb	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

/* puthex8: print AL as two hex digits */
puthex8:
	pushw	%ax
	shrb	$4, %al
	call	puthex4
	popw	%ax
puthex4:
	andb	$0x0f, %al
	addb	$'0', %al
	cmpb	$'9', %al
	jbe	putc
	addb	$('a' - '0' - 10), %al
	/* fall through */

/* putc: send AL to COM1, polling LSR.THRE (bounded wait) */
putc:	pushw	%cx
	pushw	%dx
	pushw	%ax
	movw	$0x3fd, %dx
	movw	$0xffff, %cx
1:	inb	%dx, %al
	testb	$0x20, %al
	jnz	2f
	loop	1b
2:	popw	%ax
	movw	$0x3f8, %dx
	outb	%al, %dx
	popw	%dx
	popw	%cx
	ret

msg_reached:	.asciz	"guest: boot sector reached, DL=0x"
msg_read_ok:	.asciz	"guest: int13h read ok\r\n"
msg_read_fail:	.asciz	"guest: int13h read FAILED, AH=0x"
msg_off:	.asciz	"guest: powering off\r\n"
msg_crlf:	.asciz	"\r\n"
msg_shutdown:	.asciz	"Shutdown"

/* Kept outside the sector so that the INT 13h read-back compares equal. */
	.set	drive, 0x0500

	.org	510
	.byte	0x55, 0xaa
