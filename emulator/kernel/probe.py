"""Whether the kernel's test-run can give a packet its context (ingress ifindex, rx queue).

BPF_PROG_TEST_RUN refuses an XDP context whose ifindex names no device of the caller's
network namespace (ENODEV) or whose rx queue is beyond that device's queues (EINVAL); the
loopback device, ifindex 1, always has exactly one.  When the kernel refuses a packet,
verify asks this probe whether the context alone is the reason: the probe test-runs a
program of its own (``r0 = XDP_PASS; exit``, no maps) with the same context and a plain
Ethernet-sized frame, so the answer is the running kernel's and the verified object's maps
see nothing.  A context refused here is skipped on both sides (docs/verify.md).
"""
from __future__ import annotations

import ctypes
import errno as errno_mod
import os

from emulator.kernel import libbpf as lb
from isa.asm import assemble
from isa.insn import encode

PROBE_FRAME = bytes(64)
PROBE_CODE = "r0 = 2\nexit\n"


def describe(err: int, ifindex: int, queue: int) -> str:
    """The refusal of a context the probe's own valid frame met."""
    name = errno_mod.errorcode.get(err, str(err))
    if err == errno_mod.ENODEV:
        return f"{name}: no device has ifindex {ifindex} here"
    if err == errno_mod.EINVAL:
        return f"{name}: the device with ifindex {ifindex} has no rx queue {queue}"
    return f"{name}: {os.strerror(err)}"


class ContextProbe:
    """A loaded probe program and the answers it gave, per (ifindex, queue)."""

    def __init__(self) -> None:
        self._answers: dict[tuple[int, int], str] = {}
        code = encode(assemble(PROBE_CODE))
        opts = lb.ProgLoadOpts(sz=ctypes.sizeof(lb.ProgLoadOpts), expected_attach_type=lb.BPF_XDP)
        self.fd = lb.lib().bpf_prog_load(lb.BPF_PROG_TYPE_XDP, b"hxdpc_ctx_probe", b"GPL", code,
                                         len(code) // 8, ctypes.byref(opts))
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "the kernel refuses the context probe program")

    def refusal(self, ifindex: int, queue: int) -> str:
        """'' when the test-run accepts this context, else the kernel's refusal."""
        key = (int(ifindex), int(queue))
        if key not in self._answers:
            from emulator.kernel import test_run
            r = test_run(self.fd, PROBE_FRAME, *key)
            self._answers[key] = describe(r.errno, *key) if r.error else ""
        return self._answers[key]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
