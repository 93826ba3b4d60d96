"""SIGTERM and SIGINT during `emulate` and `verify` (real signals to a subprocess): the run
stops between packets, every output holds whole records of the same packets, the map dump
is the maps those packets left, and the exit code is 128 + the signal (143, 130), not 1."""
import json
import signal
import struct
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, SAMPLES, needs_kernel

XDP1 = SAMPLES / "xdp1.o"
CLI = "import sys; from hxdpc.cli import main; sys.argv[0] = 'hxdpc'; sys.exit(main())"
PACKETS = 400_000        # far more than a run gets through before the signal


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory):
    """xdp1's capture repeated: a run that lasts long enough to be interrupted."""
    from emulator.runtime import pcapio
    src = [p.data for p in pcapio.read_packets(str(SAMPLES / "pcaps" / "xdp1-normal.pcap"))]
    path = tmp_path_factory.mktemp("sig") / "long.pcap"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(PACKETS):
        d = src[i % len(src)]
        out.append(struct.pack("<IIII", i // 1000, i % 1000, len(d), len(d)) + d)
    path.write_bytes(b"".join(out))
    return path


def _start(*args):
    return subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > 0:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    pytest.fail(f"{path} never appeared")


def _wait_for_handler(proc, sig, timeout=60.0):
    """Until the process catches `sig` (/proc/PID/status SigCgt): before that, Python is still
    starting and the signal's default action would apply."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        with open(f"/proc/{proc.pid}/status") as f:
            caught = next(int(x.split()[1], 16) for x in f if x.startswith("SigCgt:"))
        if caught >> (sig - 1) & 1:
            return
        time.sleep(0.01)
    pytest.fail(f"the process never caught {sig.name}")


def _whole_pcap_records(path) -> int:
    """Records of a pcap written by emulate; fails on any partial record."""
    raw = path.read_bytes()
    pos, n = 24, 0
    while pos < len(raw):
        assert pos + 16 <= len(raw), f"{path}: a record header cut at byte {pos}"
        caplen = struct.unpack_from("<IIII", raw, pos)[2]
        assert pos + 16 + caplen <= len(raw), f"{path}: record {n} has its header but not its data"
        pos += 16 + caplen
        n += 1
    return n


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_emulate_leaves_whole_consistent_outputs(tmp_path, long_capture, sig, code):
    res, out, dump = tmp_path / "r.jsonl", tmp_path / "out", tmp_path / "m.json"
    proc = _start("emulate", XDP1, "--pcap", long_capture, "--results", res, "--out-dir", out,
                  "--dump-maps", dump)
    _wait_for(res, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (proc.returncode, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"emulate: interrupted by {sig.name} after ") and "Traceback" not in err, err
    text = res.read_text()
    assert text.endswith("\n")
    lines = [json.loads(x) for x in text.splitlines()]         # every line whole JSON
    done = len(lines)
    assert 0 < done < PACKETS and [x["pkt"] for x in lines] == list(range(done))
    assert f" after {done} packets " in last
    pcaps = sorted(out.iterdir())
    assert pcaps and sum(_whole_pcap_records(p) for p in pcaps) == done
    # xdp1 counts every packet it sees in rxcnt (per protocol): the dump is those `done` packets
    maps = json.loads(dump.read_text())
    counted = sum(int.from_bytes(bytes.fromhex(e["value"]), "little") for e in maps["rxcnt"])
    assert counted == done


def test_emulate_interrupted_while_compiling_exits_143(tmp_path, long_capture):
    """A signal as soon as it is handled (the program is then being loaded and compiled for
    Sephirot): the same exit code, no traceback."""
    proc = _start("emulate", SAMPLES / "katran_lb.o", "--pcap", long_capture, "--target", "sephirot")
    _wait_for_handler(proc, signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (proc.returncode, err)
    assert "Traceback" not in err


@needs_kernel
def test_interrupted_verify_exits_130(tmp_path, long_capture):
    proc = _start("verify", XDP1, "--pcap", long_capture)
    _wait_for_handler(proc, signal.SIGTERM)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, out[-500:], err[-2000:])
    assert "interrupted by SIGINT" in err and "Traceback" not in err
    assert " passed, " not in out          # no summary that would claim a complete comparison
