"""Malformed inputs for `hxdpc emulate` (hxdpc.fuzz.inputs): MAPS/CTX/FIB JSON and mutated
captures end with exit 0/1/2, exit 2 with exactly one line on stderr, never a traceback."""
import json
import random
from collections import Counter

import pytest

from hxdpc.fuzz.inputs import (SAMPLES, cases, first_records, judge, mutate_pcap, pcap_seeds,
                               prepare_pcaps, run_emulate)

SEED = 20261202


def test_judge_applies_the_contract():
    assert judge([], 2, "error: x.json: bad\n", SystemExit(2)).problem == ""
    assert judge([], 0, "", None).problem == ""
    assert "2 lines" in judge([], 2, "error: a\nerror: b\n", SystemExit(2)).problem
    assert "traceback" in judge([], 1, "Traceback (most recent call last):\n", SystemExit(1)).problem
    assert "exit 3" in judge([], 3, "", SystemExit(3)).problem
    assert "ValueError" in judge([], 1, "", ValueError("boom")).problem


def test_pcap_seeds_include_pcapng_and_mutations_change_them():
    seeds = pcap_seeds()
    assert any(n.endswith(".pcapng") for n, _ in seeds)
    rng = random.Random(SEED)
    name, data = seeds[0]
    assert sum(mutate_pcap(data, rng) != data for _ in range(50)) >= 45
    assert first_records(data, 2) == data[:len(first_records(data, 2))] and len(first_records(data, 2)) < len(data)


def test_malformed_inputs_end_as_the_contract_says(tmp_path):
    codes, problems = Counter(), []
    for kind, path, args in cases(str(tmp_path), 90, 100, random.Random(SEED)):
        o = run_emulate(args)
        codes[(kind, o.exit_code)] += 1
        if o.problem:
            problems.append(f"{path}: {o.problem}: hxdpc {' '.join(args)}")
    assert not problems, "\n".join(problems)
    for kind in ("maps", "ctx", "fib", "pcap"):       # each kind was refused as bad input
        assert codes[(kind, 2)] > 0, (kind, codes)
    assert codes[("pcap", 0)] > 0                      # and some mutations still read


@pytest.mark.parametrize("fib", [{"routes": True}, {"interfaces": [{"ifindex": 2, "mtu": None}]},
                                 {"routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "metric": "0x10"}]}])
def test_fib_field_types_are_checked(tmp_path, fib):
    prepare_pcaps(str(tmp_path))
    path = tmp_path / "fib.json"
    path.write_text(json.dumps(fib))
    o = run_emulate(["emulate", str(SAMPLES / "router_fib.o"), "--pcap", str(tmp_path / "router_fib.pcap"),
                     "--fib", str(path)])
    assert not o.problem and o.exit_code == 2, o.problem
