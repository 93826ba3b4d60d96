"""eBPF -> x86-64 translation (the Linux JIT as a model) and its executor on unicorn."""
