"""The eBPF + hXDP instruction set: one table (opcodes), encoding, text syntaxes."""
from isa.insn import Insn, decode, encode
from isa.opcodes import Kind, OpSpec, TABLE, lookup

__all__ = ["Insn", "decode", "encode", "Kind", "OpSpec", "TABLE", "lookup"]
