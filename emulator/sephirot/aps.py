"""PIQ and APS timing: packets arrive as 32-byte frames, one per clock, and are emitted
while the next packet is processed (paper §4.1.1, §4.1.2, §4.2).

The functional side of the APS (packet buffer, difference buffer, scratch memory for
bytes prepended by bpf_xdp_adjust_head) is the runtime's packet buffer: writes and
adjust_head there give exactly the bytes the APS would merge at emission.  This module
keeps the clock of a stream of back-to-back packets:

- packet i's first frame reaches the PIQ at A_i = A_{i-1} + F_{i-1} (back-to-back frames
  on the NIC input bus, one per clock);
- the APS moves it into its buffer from X_i = max(A_i, core free, buffer free), one frame
  per clock: frame j is readable from X_i + j + 1;
- early processor start: the core starts at C_i = X_i + 1 (the first frame is in), or at
  X_i + F_i when early start is off; it pauses only when it reads a frame not yet received;
- emission of packet i (F_out frames, one per clock) starts once the core has decided and
  the last store has committed, after the previous emission ended; it overlaps with the
  next packet.  The APS has two buffers (one emitting, one being filled/processed), so
  packet i+1 cannot enter the APS before packet i-1 has left it.
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.sephirot.timing import Timing


def frames(nbytes: int, frame_bytes: int = 32) -> int:
    return max(1, -(-nbytes // frame_bytes))


@dataclass
class Admission:
    """When one packet enters the APS and the core (absolute cycles)."""
    arrival: int          # A_i: first frame in the PIQ
    transfer: int         # X_i: APS starts moving the packet from the PIQ
    core_start: int       # C_i
    nframes: int
    buffer_wait: int      # cycles the transfer waited for an APS buffer (emission backlog)

    def frame_ready(self, j: int) -> int:
        """Cycle, relative to core start, from which frame j can be read."""
        return self.transfer + j + 1 - self.core_start


@dataclass
class Departure:
    core_end: int         # first cycle the core is free again
    emit_start: int
    emit_end: int
    latency: int          # transfer start -> last frame emitted (or decision, if dropped)


class StreamClock:
    """The PIQ/APS clock of one stream of back-to-back packets."""

    def __init__(self, timing: Timing):
        self.timing = timing
        self.reset()

    def reset(self) -> None:
        self.next_arrival = 0
        self.core_free = 0
        self.emit_free = 0          # end of the latest emission
        self.older = 0              # when the buffer of the packet before last is free again
        self.newer = 0              # when the buffer of the last packet is free again
        self.first_arrival = None

    def admit(self, nbytes: int) -> Admission:
        return Admission(*self.admit_t(nbytes))

    def admit_t(self, nbytes: int) -> tuple:
        """admit() as a tuple (arrival, transfer, core_start, nframes, buffer_wait): the
        executor's per-packet path builds no object."""
        t = self.timing
        nf = -(-nbytes // t.frame_bytes) if nbytes > 0 else 1      # frames(nbytes), inline
        if nf < 1:
            nf = 1
        a = self.next_arrival
        self.next_arrival = a + nf
        if self.first_arrival is None:
            self.first_arrival = a
        x0 = a if a >= self.core_free else self.core_free
        x = x0 if x0 >= self.older else self.older
        c = x + 1 if t.early_start else x + nf
        return a, x, c, nf, x - x0

    def depart(self, adm: Admission, occupancy: int, last_commit: int, out_bytes: int) -> Departure:
        """`occupancy`: core cycles from core start; `last_commit`: cycle (relative) after
        which all stores are in the difference buffer; `out_bytes` 0 when dropped."""
        return Departure(*self.depart_t(adm.transfer, adm.core_start, occupancy, last_commit, out_bytes))

    def depart_t(self, transfer: int, core_start: int, occupancy: int, last_commit: int,
                 out_bytes: int) -> tuple:
        """depart() of the packet admitted at (transfer, core_start), as a tuple
        (core_end, emit_start, emit_end, latency)."""
        end = core_start + occupancy
        self.core_free = end
        self.older = self.newer
        if out_bytes <= 0:
            self.newer = end
            return end, end, end, end - transfer
        ready = core_start + last_commit
        if end > ready:
            ready = end
        es = ready if ready >= self.emit_free else self.emit_free
        ee = es + (-(-out_bytes // self.timing.frame_bytes) or 1)    # frames(out_bytes), out_bytes > 0
        self.emit_free = self.newer = ee
        return end, es, ee, ee - transfer

    @property
    def span(self) -> int:
        """Cycles from the first frame's arrival until the core has finished the last packet
        and the last frame has been received (the stream is no faster than its frames)."""
        return max(self.core_free, self.next_arrival) - (self.first_arrival or 0)
