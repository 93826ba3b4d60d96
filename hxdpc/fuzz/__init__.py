"""The project's kernel-differential fuzzer (docs/fuzzing.md).

``progen`` generates random verifier-acceptable XDP programs from the ISA table's kinds,
``objfile`` writes them as BPF ELF objects with legacy map definitions, ``packets`` makes
random frames, ``oracle`` runs each program in the kernel and on a target with verify's
rules, ``minimise`` shrinks a mismatch, ``report`` writes its reproducer; ``inputs`` makes
malformed input files for `hxdpc emulate`.
"""
