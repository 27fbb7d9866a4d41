"""What a sandboxed child does to itself before it runs a program: rlimits, a network namespace,
Landlock (writes only inside its working directory, no TCP, no signals out of its domain) and a
seccomp filter (no sockets but AF_UNIX, no ptrace/mount/namespace/session calls, no fork, no
signals to other processes). Standard library and ctypes only: libseccomp.so.2 (a systemd
dependency, on every standard Debian/Ubuntu install) and three Landlock system calls.

`apply(workdir, limits)` is called in the freshly forked child; each layer that the kernel refuses
is skipped and left out of the returned level, so the parent records what a run really had.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import resource
import signal
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
CLONE_THREAD = 0x00010000
AF_UNIX = 1

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10
    memory_mb: int = 2048
    file_mb: int = 16
    open_files: int = 64
    processes: int = 32  # new tasks (threads included) allowed when seccomp cannot forbid fork


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Die with the parent (the helper dies with the trainer the same way)."""
    _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def set_child_subreaper() -> None:
    """Orphaned descendants are reparented to the calling process (the helper), which can then reap them."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def set_rlimits(limits: Limits) -> None:
    mb = 1024 * 1024
    for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_mb * mb),
                         (resource.RLIMIT_FSIZE, limits.file_mb * mb), (resource.RLIMIT_NOFILE, limits.open_files),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(which, (value, value))


def tasks_of_this_user() -> int:
    """Threads of every process this uid runs now: what RLIMIT_NPROC counts against."""
    uid, total = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


def cap_processes(limits: Limits) -> None:
    """The fork-bomb guard where seccomp is missing. RLIMIT_NPROC counts every task of the uid (threads
    too) and is ignored for root, so it is set above today's count: a limit of 0 would also stop the
    threads that numpy or `concurrent.futures` start in a correct program."""
    if os.geteuid() != 0:
        allowed = tasks_of_this_user() + limits.processes
        resource.setrlimit(resource.RLIMIT_NPROC, (allowed, allowed))


def enter_network_namespace() -> bool:
    """An empty network namespace (only a down loopback), through a user namespace when unprivileged."""
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return _libc.unshare(CLONE_NEWNET) == 0  # root without user namespaces
    try:  # keep our own uid inside, so the working directory stays ours
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return True


def enter_pid_namespace() -> bool:
    """The caller's next child is PID 1 of a new PID namespace: it can signal no process outside it, and
    when it exits the kernel kills every process left inside (double-forked daemons included). `private_proc`
    then gives it a /proc of its own.
    Needs CAP_SYS_ADMIN in the current user namespace (the helper's, or root)."""
    return _libc.unshare(CLONE_NEWPID) == 0


def private_proc() -> bool:
    """In a PID namespace's init: a mount namespace of its own with a fresh /proc, so /proc lists only the
    namespace's processes (the host's stay hidden). Must run before Landlock and seccomp, which forbid mounts."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        return False
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:  # nothing we mount leaks to the host
        return False
    return _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) == 0


# ----- Landlock ------------------------------------------------------------------------------------
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_WRITE_ACCESS = [2, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]  # write file, remove/make anything


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    abi = _libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, abi)


def apply_landlock(workdir: str) -> bool:
    """Writes only beneath `workdir`; with ABI >= 4 no TCP bind/connect; with ABI >= 6 no signals to
    processes outside the sandbox and no abstract UNIX sockets."""
    abi = landlock_abi()
    if abi < 1:
        return False
    write = sum(_WRITE_ACCESS) | (8192 if abi >= 2 else 0) | (16384 if abi >= 3 else 0)
    attr = _RulesetAttr(handled_access_fs=write, handled_access_net=(1 | 2) if abi >= 4 else 0,
                        scoped=(1 | 2) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
        rule = _PathBeneath(allowed_access=write, parent_fd=fd)  # a subset of the handled rights: reads stay free
        added = _libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0))
        os.close(fd)
        if added != 0:
            return False
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        return _libc.syscall(_SYS_RESTRICT, ruleset, ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)


# ----- seccomp --------------------------------------------------------------------------------------
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_EQ, SCMP_CMP_MASKED_EQ = 1, 4, 7
DENIED = ("ptrace", "mount", "umount2", "unshare", "setns", "setsid", "setpgid", "bpf", "keyctl", "add_key",
          "request_key", "process_vm_readv", "process_vm_writev", "kexec_load", "init_module", "finit_module",
          "delete_module", "chroot", "pivot_root", "fork", "vfork", "pidfd_open", "pidfd_send_signal",
          "pidfd_getfd", "perf_event_open", "userfaultfd", "io_uring_setup", "swapon", "reboot")


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


@functools.lru_cache(maxsize=1)
def seccomp_library() -> ctypes.CDLL | None:
    """libseccomp, loaded once in the helper before any fork (finding it later would need files the
    confined child may no longer create)."""
    for name in ("libseccomp.so.2", ctypes.util.find_library("seccomp")):
        if name:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            lib.seccomp_init.restype = ctypes.c_void_p
            lib.seccomp_init.argtypes = [ctypes.c_uint32]
            lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
            lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                                   ctypes.POINTER(_ArgCmp)]
            lib.seccomp_load.argtypes = [ctypes.c_void_p]
            lib.seccomp_release.argtypes = [ctypes.c_void_p]
            return lib
    return None


def apply_seccomp() -> bool:
    """A denylist: the calls above fail with EPERM; socket() only for AF_UNIX; clone() only for threads
    (so no fork bomb, daemon or helper process); clone3 reports ENOSYS so threads fall back to clone;
    kill/tkill/tgkill only to this process itself."""
    lib = seccomp_library()
    if lib is None:
        return False
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        return False
    eperm = _errno_action(errno.EPERM)

    def rule(syscall: str, action: int, *conditions: tuple[int, int, int, int]) -> bool:
        number = lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:
            return True  # not on this architecture
        array = (_ArgCmp * max(1, len(conditions)))(*[_ArgCmp(*c) for c in conditions])
        return lib.seccomp_rule_add_array(ctx, action, number, len(conditions), array) == 0

    me = os.getpid()
    ok = all(rule(call, eperm) for call in DENIED)
    ok &= rule("socket", eperm, (0, SCMP_CMP_NE, AF_UNIX, 0))
    ok &= rule("clone", eperm, (0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0))
    ok &= rule("clone3", _errno_action(errno.ENOSYS))
    for call in ("kill", "tkill"):
        ok &= rule(call, eperm, (0, SCMP_CMP_NE, me, 0))
    ok &= rule("tgkill", eperm, (0, SCMP_CMP_NE, me, 0))
    loaded = ok and lib.seccomp_load(ctx) == 0
    lib.seccomp_release(ctx)
    return loaded


def apply(workdir: str, limits: Limits, network: bool = True, landlock: bool = True, seccomp: bool = True
          ) -> list[str]:
    """Confine the calling (child) process; returns the layers that took hold, weakest first. (The helper
    enters the network namespace once for all its children and calls this with network=False.)"""
    set_pdeathsig()
    layers = ["process"]
    if network and enter_network_namespace():
        layers.append("netns")
    set_rlimits(limits)
    if landlock and apply_landlock(workdir):
        layers.append("landlock")
    if seccomp and apply_seccomp():
        layers.append("seccomp")  # fork is refused outright; threads stay allowed
    else:
        cap_processes(limits)
    return layers
