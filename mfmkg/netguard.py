"""Forbid the current process to open network connections (Linux seccomp), as a backstop against SSRF.

The SPARQL endpoint refuses SERVICE calls to endpoints that are not allowlisted by reading the query
(``mfmkg.sparql_text``). pyoxigraph does make SERVICE calls over HTTP, so a query the lexer misread would reach the
network. The sandbox therefore calls ``deny_sockets()`` in the forked query process before running a query that
calls no allowed service: from then on ``socket()`` and ``connect()`` fail with EACCES in that process and every
thread it starts. Never call this in the server process itself: a seccomp filter cannot be removed.

A no-op returning False where unsupported (not Linux, or an architecture without syscall numbers below).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
import sys

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_X32_SYSCALL_BIT = 0x40000000

# machine -> (AUDIT_ARCH value, socket syscall number, connect syscall number)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 42),
    "aarch64": (0xC00000B7, 198, 203),
}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _program(arch: int, socket_nr: int, connect_nr: int) -> bytes:
    """The BPF filter: other architectures and x32 calls -> EACCES; socket/connect -> EACCES; rest allowed."""
    deny = _RET_ERRNO | errno.EACCES

    def op(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)

    return b"".join([
        op(_LD_W_ABS, 4),                        # seccomp_data.arch
        op(_JEQ_K, arch, 1, 0),
        op(_RET_K, deny),
        op(_LD_W_ABS, 0),                        # seccomp_data.nr
        op(_JGE_K, _X32_SYSCALL_BIT, 0, 1),
        op(_RET_K, deny),
        op(_JEQ_K, socket_nr, 1, 0),
        op(_JEQ_K, connect_nr, 0, 1),
        op(_RET_K, deny),
        op(_RET_K, _RET_ALLOW),
    ])


def supported() -> bool:
    return sys.platform == "linux" and platform.machine() in _ARCHES


_prepared: tuple | None = None


def prepare() -> None:
    """Load libc and build the filter now: call in the parent, so the forked child need not run dlopen."""
    global _prepared
    if _prepared is None and supported():
        prog = _program(*_ARCHES[platform.machine()])
        buf = ctypes.create_string_buffer(prog, len(prog))
        _prepared = (ctypes.CDLL(None, use_errno=True), buf, _SockFprog(len(prog) // 8, ctypes.addressof(buf)))


def deny_sockets() -> bool:
    """Install the filter in this process; True when it is in force."""
    try:
        prepare()
        if _prepared is None:
            return False
        libc, _buf, fprog = _prepared
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0
    except (OSError, AttributeError):
        return False
