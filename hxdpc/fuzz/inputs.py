"""Malformed input files for `hxdpc emulate`: MAPS/CTX/FIB JSON and pcap/pcapng captures
mutated from the sample programs' own, and the check that bad input ends as the contract
says (exit 0, 1 or 2; exit 2 with exactly one line on stderr; never a traceback)."""
from __future__ import annotations

import copy
import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

PCAP_HEADER = 24
PCAP_RECORD = 16
ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "sample_programs"
CTX_SEED = {"ingress_ifindex": 2, "rx_queue_index": 0, "packets": {"1": {"ingress_ifindex": 3},
                                                                   "2": {"rx_queue_index": 1}}}


@dataclass(frozen=True)
class Target:
    """What one malformed file is run against: a program, its good inputs, the option the
    malformed file replaces."""
    prog: str
    pcap: str
    option: str                  # "--maps", "--ctx", "--fib" or "--pcap"
    maps: Optional[str] = None
    fib: Optional[str] = None

    def args(self, bad: str) -> list[str]:
        given = {"--pcap": self.pcap, "--maps": self.maps, "--fib": self.fib}
        given[self.option] = bad
        out = ["emulate", self.prog]
        for opt, val in given.items():
            if val:
                out += [opt, val]
        return out


def json_targets(pcap_dir: str) -> dict[str, tuple[Target, Any]]:
    """kind -> (how it is run, the seed object mutations start from)."""
    s = SAMPLES
    fib = json.loads((s / "router_fib.fib.json").read_text())
    maps = json.loads((s / "router_ipv4.maps.json").read_text())
    return {
        "maps": (Target(str(s / "router_ipv4.o"), f"{pcap_dir}/router_ipv4.pcap", "--maps"), maps),
        "fib": (Target(str(s / "router_fib.o"), f"{pcap_dir}/router_fib.pcap", "--fib"), fib),
        "ctx": (Target(str(s / "rxq_info.o"), f"{pcap_dir}/rxq_info.pcap", "--ctx",
                       maps=str(s / "rxq_info.maps.json")), CTX_SEED),
    }


# -- JSON ---------------------------------------------------------------------------------
ODD_VALUES = [None, True, 0, -1, 1 << 70, 1.5, float("inf"), "", "zz", "0", "0x10", "abc", "1/33",
              "999.1.1.1", "::::", "02:00", "gg:00:00:00:00:00", [], {}, [[]], {"a": 1}, "é" * 3,
              "00" * 300, "0" * 7]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            yield from _paths(v, prefix + (k,))


def _set(obj, path, value):
    if not path:
        return value
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return obj


def _delete(obj, path):
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    del parent[path[-1]]
    return obj


def mutate_json(seed: Any, rng: random.Random) -> bytes:
    """One malformed (or odd but well-formed) variant of `seed`, as file bytes."""
    how = rng.randrange(10)
    text = json.dumps(seed)
    if how == 0:      # text damage: truncation, a flipped byte, not UTF-8, empty
        choice = rng.randrange(4)
        raw = text.encode()
        if choice == 0:
            return raw[:rng.randrange(len(raw))]
        if choice == 1:
            i = rng.randrange(len(raw))
            return raw[:i] + bytes([raw[i] ^ (1 << rng.randrange(8))]) + raw[i + 1:]
        return [b"\xff\xfe{}", b"", b"\xef\xbb\xbf" + raw][choice - 2]
    obj = copy.deepcopy(seed)
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(obj))
        path = rng.choice(paths)
        if how < 5 or not path:
            obj = _set(obj, path, rng.choice(ODD_VALUES))
        elif how < 7:
            obj = _delete(obj, path)
        elif how < 9 and isinstance(obj, dict):
            obj[rng.choice(["unknown_map", "no such", "packets", "routes", ".data"])] = rng.choice(ODD_VALUES)
        else:
            obj = _set(obj, path, [copy.deepcopy(obj)] if path else [obj])
        if not isinstance(obj, (dict, list)):
            break
    return json.dumps(obj, allow_nan=True).encode()


# -- pcaps -----------------------------------------------------------------------------------
def first_records(data: bytes, n: int) -> bytes:
    """A classic pcap cut to its first `n` records (small seeds keep each run short)."""
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return data
    off = PCAP_HEADER
    for _ in range(n):
        if off + PCAP_RECORD > len(data):
            break
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        off += PCAP_RECORD + caplen
    return data[:off]


def _record_offsets(data: bytes) -> list[int]:
    out, off = [], PCAP_HEADER
    while off + PCAP_RECORD <= len(data):
        out.append(off)
        off += PCAP_RECORD + struct.unpack_from("<I", data, off + 8)[0]
    return out


def _put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    if off + struct.calcsize(fmt) <= len(b):
        struct.pack_into(fmt, b, off, value & ((1 << (8 * struct.calcsize(fmt))) - 1))
    return bytes(b)


def mutate_pcap(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, truncations, bad header fields, bad record or block lengths."""
    how = rng.randrange(8)
    pcapng = data[:4] == b"\x0a\x0d\x0d\x0a"
    if how == 0:
        return data[:rng.randrange(len(data))]
    if how == 1:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(b), 64) if rng.random() < 0.5 else len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if pcapng:
        # block total lengths (first block at 0, its length at +4), byte-order magic, options
        field = rng.choice([4, 8, 12, 14, 16, 24, rng.randrange(len(data) - 4)])
        return _put(data, field, "<I", rng.choice([0, 1, 7, 12, 0xFFFFFFFF, len(data) * 2, rng.getrandbits(32)]))
    if how == 2:      # global header: magic, version, snaplen, link type
        off, fmt = rng.choice([(0, "<I"), (4, "<H"), (6, "<H"), (16, "<I"), (20, "<I")])
        return _put(data, off, fmt, rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 101, 228, rng.getrandbits(32)]))
    recs = _record_offsets(data)
    if not recs:
        return data + b"\x01\x02\x03"
    rec = rng.choice(recs)
    if how in (3, 4):   # caplen larger than the file, than len, zero, huge
        return _put(data, rec + 8, "<I", rng.choice([0, 1, 13, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                     len(data), 262145, 300000]))
    if how == 5:        # orig len below caplen, nanoseconds field out of range
        return _put(data, rng.choice([rec + 12, rec + 4]), "<I", rng.choice([0, 1, 2_000_000_000, 0xFFFFFFFF]))
    if how == 6:        # a record cut in its header or its data
        return data[:rec + rng.randrange(PCAP_RECORD + 4)]
    return data + bytes(rng.randrange(1, PCAP_RECORD))   # trailing garbage


# -- the check ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    args: list[str]
    exit_code: int
    stderr: str
    problem: str = ""         # why it breaks the contract ('' when it does not)


def judge(args: list[str], exit_code: int, stderr: str, exc: Optional[BaseException]) -> Outcome:
    out = Outcome(args, exit_code, stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    if exc is not None and not isinstance(exc, SystemExit):
        out.problem = f"raised {type(exc).__name__}: {exc}"
    elif "Traceback" in stderr:
        out.problem = "a traceback on stderr"
    elif exit_code not in (0, 1, 2):
        out.problem = f"exit {exit_code}"
    elif exit_code == 2 and len(lines) != 1:
        out.problem = f"exit 2 with {len(lines)} lines on stderr"
    return out


def run_emulate(args: list[str]) -> Outcome:
    """`hxdpc emulate ARGS` in this process (click's CliRunner, stderr apart)."""
    from click.testing import CliRunner
    from hxdpc.cli import main
    r = CliRunner().invoke(main, args)
    return judge(args, r.exit_code, r.stderr, r.exception)


def prepare_pcaps(directory: str, records: int = 12) -> None:
    """The good captures the JSON cases run with: sample captures cut to a few records."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    for name, src in (("router_ipv4", "router_ipv4-normal"), ("router_fib", "router_fib-normal"),
                      ("rxq_info", "rxq_info-normal")):
        data = (SAMPLES / "pcaps" / f"{src}.pcap").read_bytes()
        Path(directory, f"{name}.pcap").write_bytes(first_records(data, records))


def pcap_seeds(records: int = 12) -> list[tuple[str, bytes]]:
    out = []
    for p in sorted((SAMPLES / "pcaps").glob("*.pcap*")):
        data = p.read_bytes()
        out.append((p.name, first_records(data, records) if p.suffix == ".pcap" else data))
    return out


def cases(directory: str, n_json: int, n_pcaps: int, rng: random.Random):
    """(kind, file path, emulate arguments) of n_json malformed JSON files (MAPS, CTX and
    FIB in turn) and n_pcaps mutated captures, written under `directory`."""
    d = Path(directory)
    prepare_pcaps(str(d / "good"))
    targets = json_targets(str(d / "good"))
    kinds = sorted(targets)
    for k in range(n_json):
        kind = kinds[k % len(kinds)]
        target, seed = targets[kind]
        path = d / f"{kind}-{k:04d}.json"
        path.write_bytes(mutate_json(seed, rng))
        yield kind, str(path), target.args(str(path))
    seeds = pcap_seeds()
    prog = str(SAMPLES / "xdp1.o")
    for k in range(n_pcaps):
        name, data = seeds[k % len(seeds)]
        ext = ".pcapng" if name.endswith(".pcapng") else ".pcap"
        path = d / f"pcap-{k:04d}-{name.rsplit('.', 1)[0]}{ext}"
        path.write_bytes(mutate_pcap(data, rng))
        yield "pcap", str(path), ["emulate", prog, "--pcap", str(path)]
