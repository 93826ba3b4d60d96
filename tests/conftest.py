"""Shared test fixtures: where the shared reference data is, and the kernel check."""
import ctypes
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests: no per-example deadline (CI machines are shared and noisy); under CI the
# examples are derived from the test (derandomize) so a run is reproducible.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CONFORMANCE_DIR = SHARED / "reference" / "bpf_conformance" / "tests"
ARTIFACTS = SHARED / "reference" / "hxdp-artifacts"
SAMPLES = ROOT / "sample_programs"


def _kernel_reason() -> str:
    """Why the kernel cannot serve as the reference executor here ('' when it can)."""
    if os.geteuid() != 0:
        return "bpf() needs root"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # BPF_PROG_LOAD with an empty attr fails with EINVAL when bpf() exists, ENOSYS/EPERM otherwise
        attr = ctypes.create_string_buffer(128)
        rc = libc.syscall(321, 5, attr, 128)
        err = ctypes.get_errno()
        if rc < 0 and err in (38, 1):
            return f"bpf() unavailable ({os.strerror(err)})"
    except OSError as e:
        return f"bpf() unavailable ({e})"
    return ""


KERNEL_REASON = _kernel_reason()
needs_kernel = pytest.mark.skipif(bool(KERNEL_REASON), reason=f"Linux kernel as reference: {KERNEL_REASON}")
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared is not beside the checkout")


def build_bpf(tmp_dir: Path, name: str, source: str) -> str:
    """Compile a test's XDP C source with clang into tmp_dir/NAME.o (skip without clang)."""
    import shutil
    import subprocess
    if not shutil.which("clang"):
        pytest.skip("clang is not installed")
    c, o = Path(tmp_dir) / f"{name}.c", Path(tmp_dir) / f"{name}.o"
    c.write_text(source)
    r = subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
                        "-c", str(c), "-o", str(o)], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"clang cannot build {c}: {r.stderr[-500:]}")
    return str(o)


# ----------------------------------------------------------------------------- the host

@pytest.fixture(scope="session")
def bpffs(tmp_path_factory):
    """A directory on a bpf filesystem of the session's own: mounted here, unmounted after, so
    tests pin programs without touching /sys/fs/bpf (bpftool would otherwise mount bpffs there
    itself and leave it, which changes what later runs skip)."""
    import hostcheck
    if KERNEL_REASON:
        pytest.skip(f"Linux kernel as reference: {KERNEL_REASON}")
    where = tmp_path_factory.mktemp("bpffs")
    reason = hostcheck.mount_bpffs(where)
    if reason:
        pytest.skip(reason)
    try:
        yield where
    finally:
        hostcheck.umount(where)


def _is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """Record the host before any test (in the xdist controller, before workers start)."""
    import hostcheck
    if not _is_xdist_worker(session.config):
        session.config._host_before = hostcheck.snapshot(ROOT)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run, loudly, when it left a mount, netns, pin, link or root file behind."""
    import time
    import hostcheck
    before = getattr(session.config, "_host_before", None)
    if before is None:
        return
    hostcheck.umount_netns_dir_if_ours(before)
    left = hostcheck.leftovers(before, hostcheck.snapshot(ROOT))
    if left:            # something another process is tearing down right now is not ours
        time.sleep(1)
        left = sorted(set(left) & set(hostcheck.leftovers(before, hostcheck.snapshot(ROOT))))
    if left:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = "THE TEST SUITE CHANGED THE HOST: " + "; ".join(left)
        if tr is not None:
            tr.write_line("")
            tr.write_sep("!", msg, red=True, bold=True)
        else:
            print(msg)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
