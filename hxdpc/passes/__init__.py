"""The hXDP compiler's passes, one module each (see docs/compiler.md):
cfg, inline, bounds, zeroing, extensions, simplify, ddg, schedule, check."""
