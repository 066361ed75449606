"""Runs inside the sandbox: limits itself, then runs ``solution.py`` followed by ``tests.py``.

This file is copied into the sandbox's temporary directory and started by
:func:`mergegate.sandbox.run_python`; it imports nothing from mergegate. It
exits with one of the codes below, which the parent turns into a failure kind.
Limits end the process through exit codes too (a signal death would be
reported by ``unshare`` as a plain exit 1): the CPU limit's SIGXCPU is caught
and exits with ``CPU``; SIGXFSZ is ignored so that a write past the output
limit raises ``OSError(EFBIG)``, which exits with ``OUTPUT``. A program that
resets those handlers runs into the hard CPU limit or the wall-clock kill.
"""

import errno
import json
import os
import resource
import signal
import sys
import traceback

PASSED, SYNTAX, ASSERTION, RAISED, BLOCKED, MEMORY, CPU, OUTPUT = 0, 10, 11, 12, 13, 14, 15, 16


class SandboxViolation(PermissionError):
    """Raised by the audit hook when the program attempts something the sandbox forbids."""


def limit(cpu_s: int, memory_mb: int, output_kb: int) -> None:
    # Kernel-enforced limits; lowering the hard limit too means the program cannot raise them back.
    # The CPU hard limit is later than the parent's wall-clock kill: the soft limit's signal is the one that counts.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    for what, value in ((resource.RLIMIT_AS, memory_mb * 1024 * 1024), (resource.RLIMIT_FSIZE, output_kb * 1024),
                        (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 0)):
        resource.setrlimit(what, (value, value))
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(CPU))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# seccomp: new processes are refused by the kernel (threads are still allowed).
_SYSCALLS = {"x86_64": (0xC000003E, 57, 58, 56), "aarch64": (0xC00000B7, 0xFFFF, 0xFFFF, 220)}  # arch, fork, vfork, clone


def forbid_processes() -> bool:
    """Install a seccomp filter: fork/vfork fail with EAGAIN, clone without CLONE_THREAD too, clone3 with ENOSYS.

    Returns False where it cannot (not Linux x86_64/aarch64): the audit hook is then the only process guard.
    ``RLIMIT_NPROC`` is not enough on its own: it does not hold for a process that started as root.
    """
    import ctypes
    import platform

    if sys.platform != "linux" or platform.machine() not in _SYSCALLS:
        return False
    arch, fork, vfork, clone = _SYSCALLS[platform.machine()]
    allow, eagain, enosys = 0x7FFF0000, 0x00050000 | errno.EAGAIN, 0x00050000 | errno.ENOSYS
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    program = [  # (code, jump if true, jump if false, k); jumps count instructions skipped
        (ld, 0, 0, 4), (jeq, 0, 7, arch),                        # 0-1: another architecture: allow
        (ld, 0, 0, 0),                                           # 2: the syscall number
        (jeq, 6, 0, fork), (jeq, 5, 0, vfork), (jeq, 5, 0, 435),  # 3-5: fork, vfork -> EAGAIN; clone3 -> ENOSYS
        (jeq, 0, 2, clone), (ld, 0, 0, 16), (jset, 0, 1, 0x10000),  # 6-8: clone: only with CLONE_THREAD
        (ret, 0, 0, allow), (ret, 0, 0, eagain), (ret, 0, 0, enosys),
    ]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*(Filter(*f) for f in program))
    prog = Program(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


_FORBIDDEN = {
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
    "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
}
_PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
                "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def install_audit_hook(root: str) -> None:
    """Refuse, from Python, what the kernel layers may not stop: writes outside ``root``, processes, sockets, ctypes."""
    root = os.path.realpath(root)

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
        return real == root or real.startswith(root + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event in _FORBIDDEN:
            raise SandboxViolation(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            if writes and not inside(path):
                raise SandboxViolation(f"sandbox: writing {path!r} outside the working directory is not allowed")
            if isinstance(path, (str, bytes)) and os.fsdecode(path).endswith("/environ"):
                raise SandboxViolation("sandbox: reading a process environment is not allowed")
        elif event in _PATH_EVENTS:
            for p in args:
                if isinstance(p, (str, bytes, os.PathLike)) and not inside(p):
                    raise SandboxViolation(f"sandbox: {event} on {p!r} outside the working directory is not allowed")

    sys.addaudithook(hook)


def main() -> int:
    opts = json.loads(sys.argv[1])
    # The program runs as a module would be imported: its own argv, an empty stdin (after the token line) and
    # __name__ "solution", so a `if __name__ == "__main__":` block does not run (and cannot read our options).
    token = sys.stdin.readline().strip()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.argv = ["solution.py"]
    done_fd = opts["done_fd"]
    with open("solution.py", encoding="utf-8") as f:
        solution = f.read()
    with open("tests.py", encoding="utf-8") as f:
        tests = f.read()
    limit(opts["cpu_s"], opts["memory_mb"], opts["output_kb"])
    try:
        code = compile(solution, "solution.py", "exec")
        test_code = compile(tests, "tests.py", "exec")
    except SyntaxError as exc:
        print(f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})", file=sys.stderr)
        return SYNTAX
    forbid_processes()
    if opts.get("audit_hook", True):
        install_audit_hook(os.getcwd())
    namespace: dict = {"__name__": "solution"}
    try:
        exec(code, namespace)
        exec(test_code, namespace)
        os.write(done_fd, token.encode())  # only reached when the tests ran to their end
    except SandboxViolation as exc:
        print(f"SandboxViolation: {exc}", file=sys.stderr)
        return BLOCKED
    except MemoryError:
        return MEMORY
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            return OUTPUT
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return RAISED
    except AssertionError as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"{fr.filename}, line {fr.lineno}: {fr.line}" for fr in reversed(tb) if fr.filename == "tests.py"), "")
        print(f"AssertionError: {exc} ({where})" if str(exc) else f"AssertionError ({where})", file=sys.stderr)
        return ASSERTION
    except BaseException as exc:  # noqa: BLE001  (the program's own error, SystemExit included, is a result)
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            print("SystemExit: the program exited before its tests ran", file=sys.stderr)
            return RAISED
        if isinstance(exc.__context__, SandboxViolation) or "sandbox:" in str(exc):
            print(f"SandboxViolation: {exc}", file=sys.stderr)
            return BLOCKED
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return RAISED
    return PASSED


if __name__ == "__main__":
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # output past the limit
        status = status or OUTPUT
    os._exit(status)  # skips the program's atexit handlers, which could otherwise change the verdict
