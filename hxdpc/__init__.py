"""hxdpc: run unmodified XDP programs on the hXDP soft processor (compiler, CLI)."""
__version__ = "0.1.0"
