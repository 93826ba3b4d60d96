"""The XDP packet buffer and the xdp_md context, laid out as the kernel's test-run does.

Facts measured on Linux 6.18 (x86-64, 4 KiB pages) with BPF_PROG_TEST_RUN, and read from
net/bpf/test_run.c and net/core/filter.c (docs/runtime.md has the full list):
- one page per frame: 256 bytes of headroom (XDP_PACKET_HEADROOM), the frame, and the
  last 320 bytes (SKB_DATA_ALIGN(sizeof(struct skb_shared_info))) reserved as tailroom,
  so at most 3520 bytes are linear; the rest of a longer frame goes to page-sized
  fragments (at most 17, MAX_SKB_FRAGS) that the program reaches only through helpers;
- frames shorter than 14 bytes (ETH_HLEN) are refused (EINVAL);
- the first 40 bytes of the headroom hold struct xdp_frame: data_meta cannot move below;
- the output is [data_meta, data_end) followed by the fragments.

The packet region the program sees is exactly [data_meta, data_end): it is rebuilt after
every adjust_head/meta/tail, so an access outside the checked range is a Fault (the
kernel's verifier would have rejected a program able to make one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from isa import layout
from emulator.runtime.memory import Fault, Memory, Region, RegionHook

PAGE_SIZE = 4096
HEADROOM = 256                     # XDP_PACKET_HEADROOM
SHINFO_SIZE = 320                  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)), x86-64
XDP_FRAME_SIZE = 40                # sizeof(struct xdp_frame): reserved at data_hard_start
MAX_LINEAR = PAGE_SIZE - HEADROOM - SHINFO_SIZE   # 3520
HARD_END = PAGE_SIZE - SHINFO_SIZE                # data_end may grow up to here
MAX_FRAGS = 17                     # MAX_SKB_FRAGS
ETH_HLEN = 14
META_MAX = 255                     # type_max(skb_shared_info.meta_len)

_ZERO = bytes(PAGE_SIZE)
_ZERO_VIEW = memoryview(_ZERO)     # slices of it copy nothing
_PACKET_BASE = layout.PACKET_BASE
EINVAL, EFAULT, EACCES, ENOMEM, EOPNOTSUPP = 22, 14, 13, 12, 95

# struct xdp_md field offsets
CTX_FIELDS = {0: "data", 4: "data_end", 8: "data_meta", 12: "ingress_ifindex",
              16: "rx_queue_index", 20: "egress_ifindex"}


class FrameRefused(Exception):
    """The test-run refuses this frame (too short, too many fragments): the program never runs."""

    def __init__(self, reason: str, errno: int):
        super().__init__(reason)
        self.reason = reason
        self.errno = errno


def check_frame(n: int) -> None:
    """Raise FrameRefused when BPF_PROG_TEST_RUN would refuse a frame of n bytes."""
    if n < ETH_HLEN:
        raise FrameRefused(f"frame of {n} bytes is shorter than {ETH_HLEN} (ETH_HLEN): "
                           "the kernel's test-run refuses it (EINVAL)", EINVAL)
    if n > MAX_LINEAR + MAX_FRAGS * PAGE_SIZE:
        raise FrameRefused(f"frame of {n} bytes needs more than {MAX_FRAGS} page fragments: "
                           "the kernel's test-run refuses it (ENOMEM)", ENOMEM)


class PacketBuffer:
    """One frame in a page-sized buffer (offsets are from data_hard_start) plus fragments.

    A session keeps one buffer and `reset`s it per packet, so its regions stay mapped."""

    def __init__(self, mem: Memory, frame: bytes = b"", frags_grow: bool = True):
        self.mem = mem
        self.buf = bytearray(PAGE_SIZE)
        # writes per packet go through a view: memoryview slice assignment is about twice as
        # fast as bytearray's (CPython 3.11); the page never changes size
        self._page = memoryview(self.buf)
        # [lo, hi): the part of the page the previous packet may have written (kept so that
        # reset only re-zeroes that part: the test-run's page starts zeroed)
        self._lo, self._hi = HEADROOM, HEADROOM
        self.region = Region("packet", layout.PACKET_BASE, bytearray(0), True, "packet")
        self._view: Optional[memoryview] = None
        mem.add(self.region)
        self.reset(frame or bytes(ETH_HLEN), frags_grow)

    def reset(self, frame: bytes, frags_grow: bool = True) -> None:
        """Place a new frame as the test-run does (caller has checked it with check_frame)."""
        n = len(frame)
        if n > MAX_LINEAR:
            lin = frame[:MAX_LINEAR]
            rest = frame[MAX_LINEAR:]
            self.frags: list[bytearray] = [bytearray(rest[i:i + PAGE_SIZE])
                                           for i in range(0, len(rest), PAGE_SIZE)]
            n = MAX_LINEAR
        else:
            lin = frame
            self.frags = []
        page, lo, hi = self._page, self._lo, self._hi
        if lo < HEADROOM:
            page[lo:HEADROOM] = _ZERO_VIEW[lo:HEADROOM]
        try:
            page[HEADROOM:HEADROOM + n] = lin
        except (TypeError, ValueError):     # not a plain byte buffer (e.g. a typed array)
            self.buf[HEADROOM:HEADROOM + n] = lin
        if hi > HEADROOM + n:
            page[HEADROOM + n:hi] = _ZERO_VIEW[HEADROOM + n:hi]
        self._lo, self._hi = HEADROOM, HEADROOM + n
        self.data = self.meta = HEADROOM
        self.end = HEADROOM + n
        # whether bpf_xdp_adjust_tail may grow the last fragment (the rx queue has a frag
        # size: the loopback queue the test-run uses by default does)
        self.frags_grow = frags_grow
        self._rebuild()

    # -- the region ----------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Make the packet region cover [data_meta, data_end) again."""
        mem, region = self.mem, self.region
        if self.meta < self._lo:
            self._lo = self.meta
        if self.end > self._hi:
            self._hi = self.end
        view = self._view
        if (view is not None and region.data is view and region.base == layout.PACKET_BASE + self.meta
                and len(view) == self.end - self.meta):
            return      # same window as the previous packet's: the mapped view already shows it
        # old views stay valid (they alias the same page), so an executor holding one
        # sees what memory would hold; they are simply no longer mapped
        self._view = memoryview(self.buf)[self.meta:self.end]
        mem.move(region, layout.PACKET_BASE + self.meta, self._view)

    def close(self) -> None:
        """Remove the packet region from memory."""
        try:
            self.mem.remove(self.region)
        except ValueError:
            pass
        self.region.data = bytearray(0)
        self._view = None

    # -- addresses -----------------------------------------------------------------------
    def addr(self, off: int) -> int:
        return layout.PACKET_BASE + off

    @property
    def frags_size(self) -> int:
        return sum(len(f) for f in self.frags)

    def buff_len(self) -> int:
        """xdp_get_buff_len: linear data plus fragments."""
        return self.end - self.data + self.frags_size

    # -- results -------------------------------------------------------------------------
    def data_bytes(self) -> bytes:
        """[data, data_end) and the fragments: what the test-run's data_out holds after meta."""
        lin = bytes(self._view[self.data - self.meta:]) if self._view is not None \
            else bytes(self.buf[self.data:self.end])
        return lin + b"".join(self.frags) if self.frags else lin

    def meta_bytes(self) -> bytes:
        return bytes(self.buf[self.meta:self.data]) if self.meta != self.data else b""

    # -- helpers (net/core/filter.c) -----------------------------------------------------
    def adjust_head(self, offset: int) -> int:
        metalen = self.data - self.meta
        data = self.data + offset
        if data < XDP_FRAME_SIZE + metalen or data > self.end - ETH_HLEN:
            return -EINVAL
        if metalen:
            self.buf[self.meta + offset:self.meta + offset + metalen] = self.buf[self.meta:self.data]
        self.meta += offset
        self.data = data
        self._rebuild()
        return 0

    def adjust_meta(self, offset: int) -> int:
        meta = self.meta + offset
        if meta < XDP_FRAME_SIZE or meta > self.data:
            return -EINVAL
        metalen = self.data - meta
        if metalen % 4 or metalen > META_MAX:
            return -EACCES
        self.meta = meta
        self._rebuild()
        return 0

    def adjust_tail(self, offset: int) -> int:
        if self.frags:
            return self._frags_shrink(-offset) if offset < 0 else self._frags_grow(offset)
        end = self.end + offset
        if end > HARD_END or end < self.data + ETH_HLEN:
            return -EINVAL
        if offset > 0:
            self.buf[self.end:end] = bytes(offset)
        self.end = end
        self._rebuild()
        return 0

    def _frags_grow(self, offset: int) -> int:
        if not self.frags_grow:
            return -EOPNOTSUPP
        last = self.frags[-1]
        if offset > PAGE_SIZE - len(last):
            return -EINVAL
        last.extend(bytes(offset))
        return 0

    def _frags_shrink(self, offset: int) -> int:
        if offset > self.buff_len() - ETH_HLEN:
            return -EINVAL
        while self.frags and offset > 0:
            last = self.frags[-1]
            cut = min(offset, len(last))
            offset -= cut
            if cut == len(last):
                self.frags.pop()
            else:
                del last[len(last) - cut:]
                break
        if not self.frags:
            self.end -= offset
            self._rebuild()
        return 0

    def _span(self, offset: int, n: int) -> Optional[int]:
        """Errno check shared by xdp_load_bytes/xdp_store_bytes (bpf_xdp_pointer)."""
        if offset > 0xFFFF or n > 0xFFFF:
            return -EFAULT
        if offset + n > self.buff_len():
            return -EINVAL
        return None

    def load_bytes(self, offset: int, n: int) -> bytes | int:
        err = self._span(offset, n)
        if err is not None:
            return err
        return self.data_bytes()[offset:offset + n]

    def store_bytes(self, offset: int, chunk: bytes) -> int:
        err = self._span(offset, len(chunk))
        if err is not None:
            return err
        lin = self.end - self.data
        pos, src = offset, 0
        while src < len(chunk):
            if pos < lin:
                k = min(len(chunk) - src, lin - pos)
                self.buf[self.data + pos:self.data + pos + k] = chunk[src:src + k]
            else:
                rel = pos - lin
                for f in self.frags:
                    if rel < len(f):
                        break
                    rel -= len(f)
                k = min(len(chunk) - src, len(f) - rel)
                f[rel:rel + k] = chunk[src:src + k]
            pos += k
            src += k
        return 0


@dataclass
class RxInfo:
    ingress_ifindex: int = 1
    rx_queue_index: int = 0


class XdpContext(RegionHook):
    """struct xdp_md at layout.CTX_BASE.  The kernel rewrites each 4-byte load of a field
    into a load of the real xdp_buff member; it accepts only aligned 4-byte reads of
    data, data_end, data_meta, ingress_ifindex and rx_queue_index (egress_ifindex is for
    devmap programs only) and no writes, so anything else is a Fault here."""

    def __init__(self, pkt: PacketBuffer, rx: RxInfo):
        self.pkt = pkt
        self.rx = rx
        self.region = Region("ctx", layout.CTX_BASE, bytearray(layout.CTX_SIZE), False, "ctx", self)

    def load(self, off: int, size: int) -> int:
        if size == 4:                      # the common case first: one test per field
            if off == 0:
                return _PACKET_BASE + self.pkt.data
            if off == 4:
                return _PACKET_BASE + self.pkt.end
            if off == 8:
                return _PACKET_BASE + self.pkt.meta
            if off == 12:
                return self.rx.ingress_ifindex & 0xFFFFFFFF
            if off == 16:
                return self.rx.rx_queue_index & 0xFFFFFFFF
        if size != 4 or off % 4:
            raise Fault(f"{size}-byte load at xdp_md+{off}: the kernel allows only aligned "
                        "4-byte loads of its fields", layout.CTX_BASE + off)
        raise Fault("xdp_md.egress_ifindex is readable only by devmap programs",
                    layout.CTX_BASE + off)

    def store(self, off: int, size: int, value: int) -> None:
        raise Fault(f"store to xdp_md+{off}: the context is read-only for XDP programs",
                    layout.CTX_BASE + off)

