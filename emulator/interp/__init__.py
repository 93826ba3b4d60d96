"""The ISA-level executors: the reference interpreter, the generated-code fast path and
the run loop both share (stack frames, tail calls, error mapping)."""
