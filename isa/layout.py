"""The address map every executor uses (the interpreter, Sephirot, the GFT slow path, x86).

Addresses are what a program sees in its registers.  Regions never overlap and each
one is at least 16 MiB away from the next, so an access that runs off a region is a fault
rather than a read of its neighbour.
"""
CTX_BASE = 0x1000_0000        # struct xdp_md (6 x u32)
CTX_SIZE = 24
PACKET_BASE = 0x2000_0000     # start of the packet buffer (headroom first)
STACK_TOP = 0x3000_0000       # r10 of the entry frame; frame k has r10 = STACK_TOP - k * STACK_SIZE
STACK_SIZE = 512
MAX_CALL_FRAMES = 8
MAP_BASE = 0x4000_0000        # map i's values live in [MAP_BASE + i * MAP_STRIDE, ... + MAP_STRIDE)
MAP_STRIDE = 0x0100_0000
MEM_BASE = 0x5000_0000        # conformance tests' `-- mem` block
SCRATCH_BASE = 0x6000_0000    # helper-owned buffers (ringbuf reservations, ...)
MAP_HANDLE_BASE = 0x7000_0000 # value of `lddw rX, map` (a map "pointer"): MAP_HANDLE_BASE + i * 0x100
FUNC_BASE = 0x7800_0000       # value of `lddw rX, func` (callback for bpf_loop): FUNC_BASE + insn index
