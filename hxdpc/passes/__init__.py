"""The hXDP compiler's Sephirot passes, one module each (see docs/compiler.md):
inline, bounds, zeroing, extensions, simplify, offsets, tails, rename, schedule, check.
The analyses they share with other planners live in hxdpc.analysis."""
