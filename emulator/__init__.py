"""Executors of XDP programs (reference interpreter, Sephirot, GFT) and their shared runtime."""
