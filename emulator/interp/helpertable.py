"""Helper number -> the function generated code calls, per env (dispatch done once)."""
from __future__ import annotations

from typing import Optional

from emulator.runtime.env import Env
from isa.opcodes import M64


def defined_in(cls: type, name: str) -> Optional[type]:
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


class HelperTable(dict):
    """Helper number -> `f(args, caller) -> r0` (masked to 64 bits) for one env: the env's
    `helper_fn(num)` when it offers one (the runtime's XdpEnv: the dispatch is done once)
    and its class defines it alongside `helper`, else a call of `env.helper`."""

    def __init__(self, env: Env):
        super().__init__()
        self.env = env
        cls = type(env)
        self.direct = ("helper" not in getattr(env, "__dict__", {}) and hasattr(cls, "helper_fn")
                       and defined_in(cls, "helper_fn") is defined_in(cls, "helper"))

    def __missing__(self, num: int):
        fn = self.env.helper_fn(num) if self.direct else None
        if fn is None:
            def fn(args, caller, helper=self.env.helper, num=num):
                return helper(num, args, caller) & M64
        self[num] = fn
        return fn
