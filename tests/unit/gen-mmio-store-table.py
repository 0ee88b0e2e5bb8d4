#!/usr/bin/env python3
"""Prints the rows of test_insn.c's mmio_store_encodings table: each instruction assembled with GNU as
(in the mode of its row) and read back with objdump -d, with the size and value its store writes
computed here from the register file store_cpu() sets up (an independent model of the instructions,
plain Python integers). The table was pasted from this output; check-encodings.py re-checks the bytes
on every unit run.

usage: gen-mmio-store-table.py > rows.txt"""

import importlib.util
import os
import re
import sys
import tempfile

# The assembler and objdump round trip is check-encodings.py's (bits as "16", "32" or "64").
_spec = importlib.util.spec_from_file_location("check_encodings",
                                               os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            "check-encodings.py"))
_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_check)


def assemble(bits, text, tmp):
    return _check.assemble(str(bits), text, tmp)


# store_cpu(): gpr[r] = 0xf0e0d0c0b0a09080 + r * 0x0101010101010101, CF = 1; the old value read is OLD.
G = [0xf0e0d0c0b0a09080 + r * 0x0101010101010101 for r in range(16)]
OLD = 0x0123456789abcdef


def m(s): return (1 << (8 * s)) - 1
def R(r, s): return G[r] & m(s)          # register r, s bytes
def H(r): return (G[r] >> 8) & 0xff      # AH CH DH BH
def O(s): return OLD & m(s)              # old value, s bytes


A, C, D, B, SP, BP, SI, DI = range(8)
ROWS = [
 # 64-bit MOV r/m
 (64, "mov %eax,(%rbx)", 4, R(A,4)),
 (64, "mov %al,(%rbx)", 1, R(A,1)),
 (64, "mov %ah,(%rbx)", 1, H(A)),
 (64, "mov %bh,0x10(%rax)", 1, H(B)),
 (64, "mov %sil,(%rbx)", 1, R(SI,1)),
 (64, "mov %r9b,(%rbx)", 1, R(9,1)),
 (64, "mov %ax,(%rbx)", 2, R(A,2)),
 (64, "mov %rax,(%rbx)", 8, R(A,8)),
 (64, "mov %r15d,0x80(%r12,%r13,8)", 4, R(15,4)),
 (64, "mov %r8,-0x80(%rbp)", 8, R(8,8)),
 (64, "mov %edx,0x300(%rip)", 4, R(D,4)),
 (64, "mov %ecx,%fs:0x10(%rax)", 4, R(C,4)),
 (64, "mov %eax,%ss:(%rbx)", 4, R(A,4)),
 (64, "addr32 mov %eax,(%ebx)", 4, R(A,4)),
 (64, "addr32 mov %edi,0x300(%eip)", 4, R(DI,4)),
 (64, "mov %eax,0xfffffffffee00300", 4, R(A,4)),
 (64, "mov %esi,-0x11fd00(,%rcx,1)", 4, R(SI,4)),
 (64, "mov %r10w,(%r11)", 2, R(10,2)),
 (64, "xrelease movl %eax,(%rbx)", 4, R(A,4)),
 # moffs
 (64, "movabs %eax,0xfee00310", 4, R(A,4)),
 (64, "movabs %al,0xfee00310", 1, R(A,1)),
 (64, "movabs %ax,0xfee00310", 2, R(A,2)),
 (64, "movabs %rax,0xfee00310", 8, R(A,8)),
 (64, "addr32 movabs %eax,0xfee00310", 4, R(A,4)),
 (64, "movabs %eax,%gs:0xfee00310", 4, R(A,4)),
 # imm
 (64, "movb $0x5a,(%rbx)", 1, 0x5a),
 (64, "movw $0x1234,(%rbx)", 2, 0x1234),
 (64, "movl $0x12345678,0x80(%rbx)", 4, 0x12345678),
 (64, "movl $0xc4500,0x100(%rip)", 4, 0xc4500),
 (64, "movq $-2,(%rbx)", 8, m(8)-1),
 (64, "movq $0x7fffffff,0x10(%rbx,%rcx,2)", 8, 0x7fffffff),
 # xchg
 (64, "xchg %eax,(%rbx)", 4, R(A,4)),
 (64, "xchg %ah,(%rbx)", 1, H(A)),
 (64, "lock xchg %r10,(%rbx)", 8, R(10,8)),
 (64, "xchg %dx,0x300(%rax)", 2, R(D,2)),
 # stos (no REP)
 (64, "stosb", 1, R(A,1)),
 (64, "stosw", 2, R(A,2)),
 (64, "stosl", 4, R(A,4)),
 (64, "stosq", 8, R(A,8)),
 (64, "addr32 stosl", 4, R(A,4)),
 # ALU r/m, reg (CF=1 in)
 (64, "add %eax,(%rbx)", 4, (O(4)+R(A,4)) & m(4)),
 (64, "add %al,(%rbx)", 1, (O(1)+R(A,1)) & m(1)),
 (64, "or %ecx,(%rbx)", 4, O(4)|R(C,4)),
 (64, "adc %edx,(%rbx)", 4, (O(4)+R(D,4)+1) & m(4)),
 (64, "sbb %rsi,(%rbx)", 8, (O(8)-R(SI,8)-1) & m(8)),
 (64, "and %di,(%rbx)", 2, O(2)&R(DI,2)),
 (64, "sub %r8d,(%rbx)", 4, (O(4)-R(8,4)) & m(4)),
 (64, "xor %bh,(%rax)", 1, O(1)^H(B)),
 (64, "lock or %eax,0x300(%rbx)", 4, O(4)|R(A,4)),
 (64, "lock add %r15,(%r14)", 8, (O(8)+R(15,8)) & m(8)),
 # ALU imm
 (64, "addb $0x11,(%rbx)", 1, (O(1)+0x11) & m(1)),
 (64, "orl $0x10000,(%rbx)", 4, O(4)|0x10000),
 (64, "andl $-16,(%rbx)", 4, O(4)&0xfffffff0),
 (64, "andq $-16,(%rbx)", 8, O(8)&(m(8)-15)),
 (64, "subq $0x7fffffff,(%rbx)", 8, (O(8)-0x7fffffff) & m(8)),
 (64, "xorq $-0x80000000,(%rbx)", 8, O(8)^0xffffffff80000000),
 (64, "adcw $0x1234,(%rbx)", 2, (O(2)+0x1234+1) & m(2)),
 (64, "sbbl $1,(%rbx)", 4, (O(4)-1-1) & m(4)),
 (64, "lock addl $8,0x300(%rbx)", 4, (O(4)+8) & m(4)),
 (64, "xorb $0xff,(%rbx)", 1, O(1)^0xff),
 # unary
 (64, "incb (%rbx)", 1, (O(1)+1) & m(1)),
 (64, "incl (%rbx)", 4, (O(4)+1) & m(4)),
 (64, "decw (%rbx)", 2, (O(2)-1) & m(2)),
 (64, "lock decq (%rbx)", 8, (O(8)-1) & m(8)),
 (64, "notl (%rbx)", 4, O(4)^m(4)),
 (64, "notb (%rbx)", 1, O(1)^m(1)),
 (64, "negl (%rbx)", 4, (-O(4)) & m(4)),
 (64, "negq 0x300(%rbx)", 8, (-O(8)) & m(8)),
 # bit tests: RAX low bits 0x80 -> offset 0 (mod 32); use regs with known low bits
 (64, "bts %eax,(%rbx)", 4, O(4) | (1 << (R(A,4) & 31))),
 (64, "btr %ecx,(%rbx)", 4, O(4) & ~(1 << (R(C,4) & 31)) & m(4)),
 (64, "btc %rdx,(%rbx)", 8, O(8) ^ (1 << (R(D,8) & 63))),
 (64, "btsw %si,(%rbx)", 2, O(2) | (1 << (R(SI,2) & 15))),
 (64, "btsl $5,(%rbx)", 4, O(4) | (1 << 5)),
 (64, "btrl $0x23,(%rbx)", 4, O(4) & ~(1 << 3) & m(4)),
 (64, "btcq $63,(%rbx)", 8, O(8) ^ (1 << 63)),
 (64, "lock btsl $1,0x300(%rbx)", 4, O(4) | 2),
 # movnti
 (64, "movnti %eax,(%rbx)", 4, R(A,4)),
 (64, "movnti %rax,(%rbx)", 8, R(A,8)),
 (64, "movnti %r9d,(%r10)", 4, R(9,4)),
 # 32-bit code
 (32, "mov %eax,0xfee00300", 4, R(A,4)),
 (32, "mov %edx,0xfee00300", 4, R(D,4)),
 (32, "mov %dx,(%ebx)", 2, R(D,2)),
 (32, "mov %ch,0x10(%ebx,%esi,4)", 1, H(C)),
 (32, "addr16 mov %eax,(%bx,%si)", 4, R(A,4)),
 (32, "addr16 mov %eax,0x300", 4, R(A,4)),
 (32, "movl $0xc4500,0xfee00300", 4, 0xc4500),
 (32, "xchg %eax,0x300(%ecx)", 4, R(A,4)),
 (32, "stosl", 4, R(A,4)),
 (32, "addr16 stosl", 4, R(A,4)),
 (32, "lock orl $1,(%ebx)", 4, O(4)|1),
 (32, "incl 0x300(%ecx)", 4, (O(4)+1) & m(4)),
 (32, "btsl $3,(%ebx)", 4, O(4)|8),
 (32, "movnti %eax,(%ebx)", 4, R(A,4)),
 # 16-bit code
 (16, "mov %ax,(%bx,%si)", 2, R(A,2)),
 (16, "mov %eax,(%bx)", 4, R(A,4)),
 (16, "mov %ax,0x300", 2, R(A,2)),
 (16, "addr32 mov %ax,0xfee00300", 2, R(A,2)),
 (16, "mov %ax,0x10(%bp,%di)", 2, R(A,2)),
 (16, "mov %dl,0x1234(%bx)", 1, R(D,1)),
 (16, "movw $0x1234,0x300(%bx)", 2, 0x1234),
 (16, "movl $0xc4500,(%bx)", 4, 0xc4500),
 (16, "addr32 mov %eax,(%ebx,%ecx,4)", 4, R(A,4)),
 (16, "stosw", 2, R(A,2)),
 (16, "stosl", 4, R(A,4)),
 (16, "lock btsw $3,(%bx)", 2, O(2)|8),
 (16, "addw $1,(%di)", 2, (O(2)+1) & m(2)),
 (16, "negl (%bx)", 4, (-O(4)) & m(4)),
]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for bits, text, size, val in ROWS:
            b = assemble(bits, text, tmp)
            esc = "".join("\\x%02x" % x for x in b)
            print('\t\t{ %d, "%s", "%s", %d, %d, 0x%xULL },' % (bits, text, esc, len(b), size, val))
    return 0


if __name__ == "__main__":
    sys.exit(main())
