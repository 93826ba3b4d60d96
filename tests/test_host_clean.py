"""The suite leaves the host as it found it: the session check, and bpffs of its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hostcheck
from conftest import ROOT, needs_kernel

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
40 23 0:33 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700
41 27 0:34 / /tmp/with\\040space rw - tmpfs tmpfs rw
"""


def test_mountinfo_lines_give_point_and_type():
    assert hostcheck.mounts(MOUNTINFO) == {("/proc", "proc"), ("/sys", "sysfs"),
                                           ("/sys/fs/bpf", "bpf"), ("/tmp/with space", "tmpfs")}


def test_leftovers_name_every_kind_added_and_ignore_removals():
    s = lambda **kw: hostcheck.HostState(**{k: frozenset(kw.get(k, ())) for k in
                                            ("mounts", "netns", "pins", "links", "root_files")})
    before = s(mounts={("/sys", "sysfs")}, links={"lo", "eth0"}, netns={"gone"})
    after = s(mounts={("/sys", "sysfs"), ("/sys/fs/bpf", "bpf")}, links={"lo", "eth0", "hx2"},
              netns={"hxdpc-1-0"}, pins={"/sys/fs/bpf/p"}, root_files={"ubench_tx.rom"})
    assert hostcheck.leftovers(before, after) == [
        "mount /sys/fs/bpf (bpf)", "netns hxdpc-1-0", "bpffs pin /sys/fs/bpf/p", "link hx2",
        "file at the project root: ubench_tx.rom"]
    assert hostcheck.leftovers(after, after) == []


def test_snapshot_sees_a_new_mount(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mount needs root")
    before = hostcheck.snapshot(ROOT)
    if hostcheck.mount_bpffs(tmp_path):
        pytest.skip(hostcheck.mount_bpffs(tmp_path))
    try:
        (tmp_path / "d").mkdir()
        assert hostcheck.leftovers(before, hostcheck.snapshot(ROOT)) == [
            f"mount {tmp_path} (bpf)", f"bpffs pin {tmp_path / 'd'}"]
    finally:
        hostcheck.umount(tmp_path)
    assert hostcheck.leftovers(before, hostcheck.snapshot(ROOT)) == []


@needs_kernel
def test_bpffs_fixture_is_a_bpf_filesystem(bpffs):
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(bpffs)], capture_output=True, text=True)
    assert kind.stdout.strip() == "bpf_fs"
    assert not Path(bpffs).is_relative_to("/sys/fs/bpf")


@needs_kernel
@pytest.mark.skipif(not (shutil.which("unshare") and shutil.which("bpftool")),
                    reason="unshare or bpftool missing")
def test_pinning_tests_run_without_bpffs_on_sys_fs_bpf_and_do_not_mount_it():
    """In a private mount namespace where /sys/fs/bpf is plain sysfs (a fresh host), the tests
    that pin still run (they used to skip, or to mount bpffs there as a side effect)."""
    script = (
        "while [ \"$(stat -f -c %T /sys/fs/bpf)\" = bpf_fs ]; do umount /sys/fs/bpf || exit 3; done; "
        f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:randomly -rs "
        "tests/test_samples.py::test_object_passes_the_verifier "
        "tests/test_asm_disasm.py::test_elf_writer_output_loads_in_the_kernel; rc=$?; "
        "echo \"after: $(stat -f -c %T /sys/fs/bpf)\"; exit $rc")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode == 3:
        pytest.skip(f"cannot unmount /sys/fs/bpf in a private namespace: {r.stderr.strip()}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "skipped" not in r.stdout and " passed" in r.stdout, r.stdout[-3000:]
    assert "after: bpf_fs" not in r.stdout, r.stdout[-3000:]
