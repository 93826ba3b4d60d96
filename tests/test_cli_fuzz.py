"""Fuzz the JSON inputs of `hxdpc emulate` (--maps, --ctx, --fib): a valid document with one
value replaced by a value of the wrong type or range, an unknown field added, its text cut
short, or random bytes.  Every such file is bad input: exit 2, one line naming the file, no
traceback.  Bounded: a few dozen examples per input, a tiny capture."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli_util import cli, one_line_error, small_pcap
from tests.conftest import SAMPLES

TAIL = SAMPLES / "xdp_tailcall.o"
FIB_PROG = SAMPLES / "router_fib.o"
pytestmark = pytest.mark.skipif(not (TAIL.exists() and FIB_PROG.exists()), reason="sample programs not built")

VALID = {
    "--maps": (TAIL, "xdp_tailcall-normal.pcap",
               {"jmp_table": [{"key": "00000000", "value": "xdp_ipv4"}, {"key": "01000000", "value": "xdp_ipv6"}],
                "verdicts": [{"key": "00000000", "value": "0100000000000000"}]}),
    "--ctx": (FIB_PROG, "router_fib-normal.pcap",
              {"ingress_ifindex": 2, "rx_queue_index": 0, "packets": {"1": {"ingress_ifindex": 3}}}),
    "--fib": (FIB_PROG, "router_fib-normal.pcap",
              {"interfaces": [{"ifindex": 2, "mac": "02:00:00:00:02:01", "mtu": 1500, "ip": "10.1.0.254",
                               "forwarding": True}],
               "neighbours": [{"ifindex": 2, "ip": "10.1.0.1", "mac": "02:00:00:00:01:01"}],
               "routes": [{"prefix": "10.1.0.0/16", "ifindex": 2, "gateway": "10.1.0.1", "metric": 5,
                           "table": 254, "type": "unicast", "mtu": 0}]}),
}
# wrong for every leaf of the documents above: a number out of every range, a string that is
# no hex, name, address or type, and values of other types (None is left out: it means
# "absent" for a gateway)
BAD_VALUES = [-1, 1 << 70, 1.5, True, "zz", [1], {"a": 1}, [[[[["deep"]]]]]]


def _paths(doc, at=()):
    """Every position in a JSON document: (path, value)."""
    yield at, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield from _paths(v, at + (k,))


def _replace(doc, path, value):
    """A copy of `doc` with the value at `path` replaced."""
    if not path:
        return json.loads(json.dumps(value))
    doc = json.loads(json.dumps(doc))
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return doc


def _is_wrong(old, new) -> bool:
    """Whether `new` in place of `old` is bad input (a bool is no integer, and vice versa)."""
    if type(old) is not type(new):
        return True
    return isinstance(old, int) and not isinstance(old, bool) and new in (-1, 1 << 70) \
        or isinstance(old, str) and new == "zz"


@st.composite
def bad_document(draw, option):
    """The text of a bad file for `option`."""
    doc = VALID[option][2]
    how = draw(st.sampled_from(["replace", "unknown field", "cut", "bytes"]))
    if how == "bytes":
        return draw(st.binary(min_size=0, max_size=200)).replace(b"{", b"(")
    text = json.dumps(doc)
    if how == "cut":
        return text[:draw(st.integers(0, len(text) - 1))].encode()
    positions = list(_paths(doc))
    if how == "unknown field":
        objects = [p for p, v in positions if isinstance(v, dict)]
        path = draw(st.sampled_from(objects))
        target = _replace(doc, (), doc)
        obj = target
        for k in path:
            obj = obj[k]
        obj["zz_unknown"] = draw(st.sampled_from([0, "x", [], {}]))
        return json.dumps(target).encode()
    path, old = draw(st.sampled_from(positions))
    new = draw(st.sampled_from([v for v in BAD_VALUES if _is_wrong(old, v)]))
    return json.dumps(_replace(doc, path, new)).encode()


@pytest.fixture(scope="module")
def pcaps(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    return {o: small_pcap(SAMPLES / "pcaps" / name, d / f"{o[2:]}.pcap", n=2) for o, (_, name, _) in VALID.items()}


@pytest.mark.parametrize("option", list(VALID))
def test_the_valid_documents_run(tmp_path, pcaps, option):
    prog, _, doc = VALID[option]
    f = tmp_path / "ok.json"
    f.write_text(json.dumps(doc))
    r = cli("emulate", prog, "--pcap", pcaps[option], option, f)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("option", list(VALID))
def test_malformed_json_files_are_one_line(tmp_path_factory, pcaps, option):
    prog = VALID[option][0]
    d = tmp_path_factory.mktemp("bad")

    @settings(max_examples=40, database=None)
    @given(bad_document(option))
    def check(content):
        f = d / "bad.json"
        f.write_bytes(content)
        one_line_error(cli("emulate", prog, "--pcap", pcaps[option], option, f), f)

    check()
