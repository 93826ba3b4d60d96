"""The XDP world every executor runs in: packet buffer and xdp_md (xdp.py), maps (maps.py),
helpers (helpers.py, fib.py), pcap input/output (pcapio.py), results (results.py) and the
Session that runs packets through a program (session.py).  docs/runtime.md has the rules."""
from emulator.runtime.results import PacketInput, PacketResult
from emulator.runtime.session import Session, XdpEnv

__all__ = ["PacketInput", "PacketResult", "Session", "XdpEnv"]
