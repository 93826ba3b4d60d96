"""Record every user-visible output of the toolchain, to prove a refactor changed no behaviour.

    python3 benchmarks/snapshot_outputs.py record DIR     # run everything, write outputs to DIR
    python3 benchmarks/snapshot_outputs.py compare A B    # byte-compare two recordings

`record` runs, through the installed `hxdpc` command: every sample program on every pcap of
it and every functional target (results JSONL, per-action pcaps, map dumps, stats JSON),
`compile` in every image format with its report and map configuration, `disasm` of each
object and of each compiled image, and `conformance` on every target. `compare` lists each
file that exists on one side only or differs, and exits 1 if any does.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_programs"
PCAPS = SAMPLES / "pcaps"
TARGETS = ("interp", "fast", "sephirot")
FORMATS = ("rom", "bin", "coe", "mem", "mif", "json")
HXDPC = [sys.executable, "-c", "import sys; from hxdpc.cli import main; sys.exit(main())"]


def run(args: list[str], out: Path) -> None:
    """Run one hxdpc command; its stdout, stderr and exit code are part of the record."""
    p = subprocess.run(HXDPC + args, cwd=ROOT, capture_output=True, text=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the recording's own directory appears in messages; it is not behaviour
    out.with_suffix(".stdout").write_text(p.stdout.replace(str(DEST), "<DIR>"))
    out.with_suffix(".rc").write_text(f"{p.returncode}\n")


def presets(stem: str) -> list[str]:
    args = []
    if (SAMPLES / f"{stem}.maps.json").exists():
        args += ["--maps", str(SAMPLES / f"{stem}.maps.json")]
    if (SAMPLES / f"{stem}.fib.json").exists():
        args += ["--fib", str(SAMPLES / f"{stem}.fib.json")]
    return args


DEST = Path("/nonexistent")


def record(dest: Path) -> None:
    global DEST
    DEST = dest
    dest.mkdir(parents=True, exist_ok=True)
    objects = sorted(SAMPLES.glob("*.o"))
    for obj in objects:
        stem = obj.stem
        print(f"{stem}: compile, disasm", flush=True)
        cdir = dest / "compile" / stem
        for fmt in FORMATS:
            img = cdir / f"{stem}.{fmt}"
            cdir.mkdir(parents=True, exist_ok=True)
            run(["compile", str(obj), "-o", str(img), "--format", fmt,
                 "--report", str(cdir / f"{stem}.{fmt}.report.json")], cdir / f"compile-{fmt}")
            run(["disasm", str(img)], cdir / f"disasm-{fmt}")
        run(["disasm", str(obj)], dest / "disasm" / stem)
        for pcap in sorted(PCAPS.glob(f"{stem}-*.pcap*")):
            for target in TARGETS:
                name = f"{pcap.name}.{target}"
                odir = dest / "emulate" / stem / name
                odir.mkdir(parents=True, exist_ok=True)
                print(f"  {name}", flush=True)
                run(["emulate", str(obj), "--pcap", str(pcap), "--target", target, *presets(stem),
                     "--results", str(odir / "results.jsonl"), "--out-dir", str(odir / "pcaps"),
                     "--dump-maps", str(odir / "maps.json"), "--stats-json", str(odir / "stats.json")],
                    odir / "emulate")
    for target in (*TARGETS, "all"):
        print(f"conformance {target}", flush=True)
        run(["conformance", "--target", target], dest / "conformance" / target)


def digests(top: Path) -> dict[str, str]:
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(top.rglob("*")) if p.is_file()}


def compare(a: Path, b: Path) -> int:
    da, db = digests(a), digests(b)
    bad = 0
    for name in sorted(set(da) | set(db)):
        if name not in da or name not in db:
            print(f"only in {'B' if name not in da else 'A'}: {name}")
            bad += 1
        elif da[name] != db[name]:
            print(f"differs: {name}")
            bad += 1
    print(f"{len(set(da) | set(db))} files, {bad} differ")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "record":
        record(Path(argv[1]).resolve())
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
