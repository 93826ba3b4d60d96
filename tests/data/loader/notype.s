# Hand-written assembly (llvm-mc): no FUNC symbols, a global NOTYPE entry and a local label
# in .text called through a relocation against the .text section symbol.
	.section xdp_h,"ax",@progbits
	.globl entry_h
entry_h:
	r0 = 2
	call sub1
	exit
	.text
sub1:
	r0 = 1
	exit
