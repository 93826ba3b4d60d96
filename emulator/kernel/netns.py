"""A private network namespace in which the kernel's test-run sees the packets' world.

BPF_PROG_TEST_RUN only accepts an ingress ifindex of a device that exists in the caller's
network namespace, with an rx queue below its queue count; ``bpf_fib_lookup`` reads that
namespace's FIB and neighbour table; a devmap entry must name an existing device.  To
reproduce the contract's packet context and ``--fib`` file without touching the host, verify
builds a namespace with one veth pair per ifindex (``ip link add NAME index N numrxqueues Q
type veth peer name PEER index P``: the peer gets an explicit index far from the ones asked
for, or the kernel may hand it N first), sets MACs and MTUs, adds routes (``onlink``, since the
interfaces carry no addresses) and permanent neighbours, and turns forwarding on (the FIB
helper refuses to answer otherwise).  The calling thread enters it with setns(2) and leaves
it again; nothing else in the process changes namespace.

Whatever could not be reproduced is listed in ``problems`` (verify reports results that
depend on it as skipped, with these reasons).
"""
from __future__ import annotations

import ctypes
import ipaddress
import itertools
import os
import subprocess
from dataclasses import dataclass, field
from typing import Iterable, Optional

CLONE_NEWNET = 0x40000000
LOOPBACK = 1
PEER_INDEX_BASE = 30000
_counter = itertools.count()


@dataclass
class Iface:
    ifindex: int
    queues: int = 1
    mac: Optional[str] = None
    mtu: Optional[int] = None
    addrs: list = field(default_factory=list)      # --fib "ip"/"ip6": local addresses
    forwarding: bool = True


@dataclass
class NetnsPlan:
    """What the namespace must hold: devices (ifindex -> Iface), routes, neighbours."""
    ifaces: dict[int, Iface] = field(default_factory=dict)
    routes: list[dict] = field(default_factory=list)
    neighbours: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def need(self, ifindex: int, queue: int = 0) -> None:
        if ifindex <= 0:
            if queue:
                self.problems.append(f"ingress ifindex {ifindex} with rx queue {queue}: the test-run refuses it")
            return              # 0: the test-run's default device (loopback)
        if ifindex == LOOPBACK:
            if queue:
                self.problems.append(f"ifindex 1 is the loopback device, which has one rx queue (asked for queue {queue})")
            return
        iface = self.ifaces.setdefault(ifindex, Iface(ifindex))
        iface.queues = max(iface.queues, queue + 1)


def make_plan(contexts: Iterable[tuple[int, int]], fib: Optional[dict] = None,
              devices: Iterable[int] = ()) -> NetnsPlan:
    """The namespace for these (ifindex, queue) packet contexts, FIB file and devmap targets."""
    plan = NetnsPlan()
    for ifindex, queue in contexts:
        plan.need(int(ifindex), int(queue))
    for ifindex in devices:
        plan.need(int(ifindex))
    fib = fib or {}
    for i, itf in enumerate(fib.get("interfaces", [])):
        ifx = int(itf["ifindex"])
        if ifx == LOOPBACK:
            if itf.get("mac") not in (None, "00:00:00:00:00:00"):
                plan.problems.append("--fib gives ifindex 1 a MAC, but it is the loopback device")
            continue
        plan.need(ifx)
        iface = plan.ifaces[ifx]
        iface.mac, iface.mtu = itf.get("mac"), itf.get("mtu")
        for k in ("ip", "ip6"):
            v = itf.get(k, [])
            iface.addrs += v if isinstance(v, list) else [v]
        iface.forwarding = bool(itf.get("forwarding", True))
    for r in fib.get("routes", []):
        if "ifindex" in r:
            plan.need(int(r["ifindex"]))
        plan.routes.append(r)
    for n in fib.get("neighbours", []):
        if "ifindex" in n:
            plan.need(int(n["ifindex"]))
        plan.neighbours.append(n)
    return plan


def _dev(ifindex: int) -> str:
    return "lo" if ifindex == LOOPBACK else f"hx{ifindex}"


class PrivateNetns:
    """The namespace of a plan; `with ns.entered(): ...` runs the calling thread inside it."""

    def __init__(self, plan: NetnsPlan):
        self.plan = plan
        self.name = f"hxdpc-{os.getpid()}-{next(_counter)}"
        self.problems: list[str] = list(plan.problems)
        self._saved: Optional[int] = None
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._ip("netns", "add", self.name, netns=False)
        self.created = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _ip(self, *args: str, netns: bool = True, check: bool = True) -> str:
        cmd = ["ip"] + (["-n", self.name] if netns else []) + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode and check:
            raise OSError(f"`{' '.join(cmd)}` failed: {p.stderr.strip() or p.returncode}")
        return p.stderr.strip() if p.returncode else ""

    def _sysctl(self, *settings: str) -> None:
        p = subprocess.run(["ip", "netns", "exec", self.name, "sysctl", "-qw", *settings],
                           capture_output=True, text=True)
        if p.returncode:
            self.problems.append(f"cannot set {' '.join(settings)}: {p.stderr.strip()}")

    def _build(self) -> None:
        self._sysctl("net.ipv4.conf.default.forwarding=1", "net.ipv4.conf.all.forwarding=1",
                     "net.ipv6.conf.all.forwarding=1",
                     # no IPv6 link-local addresses: their fe80::/64 routes are not in --fib
                     "net.ipv6.conf.default.addr_gen_mode=1", "net.ipv6.conf.all.addr_gen_mode=1")
        # an onlink gateway is only accepted once the local table exists (else the kernel
        # classifies every gateway as broadcast): create it with a route, then remove that
        self._ip("route", "add", "local", "198.51.100.1/32", "dev", "lo", "table", "local")
        self._ip("route", "del", "local", "198.51.100.1/32", "dev", "lo", "table", "local")
        used = set(self.plan.ifaces) | {LOOPBACK}
        peer = itertools.count(PEER_INDEX_BASE)
        for iface in sorted(self.plan.ifaces.values(), key=lambda i: i.ifindex):
            p = next(x for x in peer if x not in used)
            used.add(p)
            self._ip("link", "add", _dev(iface.ifindex), "index", str(iface.ifindex),
                     "numrxqueues", str(iface.queues), "type", "veth",
                     "peer", "name", f"hxp{iface.ifindex}", "index", str(p))
            if iface.mac:
                err = self._ip("link", "set", "dev", _dev(iface.ifindex), "address", iface.mac, check=False)
                if err:
                    self.problems.append(f"ifindex {iface.ifindex}: MAC {iface.mac}: {err}")
            if iface.mtu:
                err = self._ip("link", "set", "dev", _dev(iface.ifindex), "mtu", str(iface.mtu), check=False)
                if err:
                    self.problems.append(f"ifindex {iface.ifindex}: MTU {iface.mtu}: {err}")
            self._ip("link", "set", "dev", f"hxp{iface.ifindex}", "up")
            self._ip("link", "set", "dev", _dev(iface.ifindex), "up")
            for a in iface.addrs:
                v6 = ":" in str(a)
                args = ["addr", "add", f"{a}/{128 if v6 else 32}", "dev", _dev(iface.ifindex)]
                err = self._ip(*(args + ["nodad"] if v6 else args), check=False)
                if err:
                    self.problems.append(f"ifindex {iface.ifindex}: address {a}: {err}")
            if not iface.forwarding:
                d = _dev(iface.ifindex)
                self._sysctl(f"net.ipv4.conf.{d}.forwarding=0", f"net.ipv6.conf.{d}.forwarding=0")
        for r in self.plan.routes:
            self._add_route(r)
        for n in self.plan.neighbours:
            self._add_neighbour(n)

    def _add_route(self, r: dict) -> None:
        try:
            net = ipaddress.ip_network(str(r["prefix"]), strict=False)
        except (KeyError, ValueError) as e:
            self.problems.append(f"route {r}: bad prefix ({e})")
            return
        kind = r.get("type", "unicast")
        args = ["-6" if net.version == 6 else "-4", "route", "add"]
        args += [str(net)] if kind == "unicast" else [kind, str(net)]
        if r.get("gateway"):
            args += ["via", str(r["gateway"])]
        if "ifindex" in r and kind in ("unicast", "local"):
            args += ["dev", _dev(int(r["ifindex"]))]
            if r.get("gateway"):
                args.append("onlink")
        for key in ("metric", "table"):
            if key in r:
                args += [key, str(int(r[key]))]
        if r.get("mtu"):
            # bpf_fib_lookup only honours a route MTU that is locked (or with ip_fwd_use_pmtu);
            # an unlocked one would be ignored in favour of the device's
            args += ["mtu", "lock", str(int(r["mtu"]))]
        err = self._ip(*args, check=False)
        if err:
            self.problems.append(f"route {net}: {err}")

    def _add_neighbour(self, n: dict) -> None:
        if "ifindex" not in n:
            self.problems.append(f"neighbour {n.get('ip')}: no ifindex")
            return
        err = self._ip("neigh", "replace", str(n.get("ip")), "lladdr", str(n.get("mac")),
                       "dev", _dev(int(n["ifindex"])), "nud", "permanent", check=False)
        if err:
            self.problems.append(f"neighbour {n.get('ip')}: {err}")

    # -- entering and leaving (this thread only) -------------------------------------------
    def enter(self) -> None:
        if self._saved is not None:
            return
        saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if self._libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                os.close(saved)
                raise OSError(err, f"setns into {self.name}: {os.strerror(err)}")
        finally:
            os.close(target)
        self._saved = saved

    def leave(self) -> None:
        if self._saved is None:
            return
        try:
            if self._libc.setns(self._saved, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back from {self.name}: {os.strerror(err)}")
        finally:
            os.close(self._saved)
            self._saved = None

    def close(self) -> None:
        self.leave()
        if getattr(self, "created", False):
            self._ip("netns", "del", self.name, netns=False, check=False)
            self.created = False

    def __enter__(self) -> "PrivateNetns":
        self.enter()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def netns_unavailable_reason() -> str:
    """'' when `ip netns` works here, else why not."""
    try:
        p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    except OSError as e:
        return f"iproute2 is not installed ({e})"
    return "" if p.returncode == 0 else f"`ip netns` fails: {p.stderr.strip()}"
