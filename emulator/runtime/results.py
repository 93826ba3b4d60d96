"""Per-packet input and result records, and the results JSONL object of the contract.

One JSON object per packet, keys in a fixed order, compact separators, so the same run
gives byte-identical files:
``{"pkt", "action", "action_name", "data", ["meta"], ["redirect"], ["error"], [target fields]}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from isa.uapi import action_name

# executor figures that go into the results line (the rest stays in --stats)
RESULT_EXTRA_FIELDS = ("cycles",)


@dataclass
class PacketInput:
    index: int
    data: bytes
    wire_len: int = 0                # length on the wire (pcap `len`); data may be shorter
    ts_ns: int = 0                   # capture timestamp, nanoseconds
    ingress_ifindex: int = 1
    rx_queue_index: int = 0


@dataclass
class PacketResult:
    index: int
    action: int
    data: bytes                      # [data, data_end) plus fragments when the program ended
    meta: bytes = b""                # [data_meta, data)
    redirect: Optional[dict] = None  # {"ifindex": n} or {"map": name, "key": k}
    error: Optional[str] = None
    extra: dict = field(default_factory=dict)
    ran: bool = True                 # False when the test-run would refuse the frame

    @property
    def action_name(self) -> str:
        return action_name(self.action)


def result_object(r: PacketResult) -> dict:
    obj = {"pkt": r.index, "action": r.action, "action_name": r.action_name, "data": r.data.hex()}
    if r.meta:
        obj["meta"] = r.meta.hex()
    if r.redirect is not None:
        obj["redirect"] = dict(r.redirect)
    if r.error is not None:
        obj["error"] = r.error
    for k in RESULT_EXTRA_FIELDS:
        if k in r.extra:
            obj[k] = r.extra[k]
    return obj


def result_line(r: PacketResult) -> str:
    return json.dumps(result_object(r), separators=(",", ":")) + "\n"
