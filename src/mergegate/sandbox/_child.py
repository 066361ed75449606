"""Runs inside the sandbox: limits itself, then runs ``solution.py`` followed by ``tests.py``.

This file is copied into the sandbox's working directory and started by
:func:`mergegate.sandbox.run_python`; it imports nothing from mergegate. It
exits with one of the codes below, which the parent turns into a failure kind.
Limits end the process through exit codes too (a signal death would be
reported by ``unshare`` as a plain exit 1): the CPU limit's SIGXCPU is caught
and exits with ``CPU``; SIGXFSZ is ignored so that a write past the output
limit raises ``OSError(EFBIG)``, which exits with ``OUTPUT``. A program that
resets those handlers runs into the hard CPU limit or the wall-clock kill.

On the pipe ``done_fd`` it writes either this run's token (the tests ran to
their end) or a small JSON record of how they failed: an exception class name,
the file and line, an errno or a refused audit event. The parent builds the
failure's detail from that record and its own copies of the sources, never
from free text, so what the program read cannot reach the report that way.
"""

import contextlib
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

    def __init__(self, event: str, message: str) -> None:
        super().__init__(message)
        self.event = event


def limit(cpu_s: int, memory_mb: int, output_kb: int, no_processes: bool) -> None:
    # Kernel-enforced limits; lowering the hard limit too means the program cannot raise them back.
    # The CPU hard limit is later than the parent's wall-clock kill: the soft limit's signal is the one that counts.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    limits = [(resource.RLIMIT_AS, memory_mb * 1024 * 1024), (resource.RLIMIT_FSIZE, output_kb * 1024),
              (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)]
    if no_processes:
        # Only without seccomp: RLIMIT_NPROC counts threads too, so for any user but root (for whom it is not
        # enforced at all) 0 also makes threading.Thread fail.
        limits.append((resource.RLIMIT_NPROC, 0))
    for what, value in limits:
        resource.setrlimit(what, (value, value))
    signal.signal(signal.SIGXCPU, lambda *_: os._exit(CPU))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# seccomp: new processes are refused by the kernel (threads are still allowed).
_SYSCALLS = {"x86_64": (0xC000003E, 57, 58, 56), "aarch64": (0xC00000B7, 0xFFFF, 0xFFFF, 220)}  # arch, fork, vfork, clone


def forbid_processes() -> bool:
    """Install a seccomp filter: fork/vfork fail with EAGAIN, clone without CLONE_THREAD too, clone3 with ENOSYS.

    Returns False where it cannot (not Linux x86_64/aarch64): ``RLIMIT_NPROC`` and the audit hook are then the
    process guards. A filter cannot be removed by the process that installed it.
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


FORBIDDEN = frozenset({
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
    "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
})
PATH_EVENTS = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
                         "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def install_audit_hook(root: str) -> None:
    """Refuse, from Python, what the kernel layers may not stop: writes outside ``root``, processes, sockets, ctypes.

    Defence in depth only: code in the same interpreter can always find a way around it. Everything it uses is
    bound here, in its closure, so that rebinding module globals (``posixpath.realpath``, this module's sets)
    no longer switches it off.
    """
    realpath, fsdecode, isdir, sep = os.path.realpath, os.fsdecode, os.path.isdir, os.sep
    forbidden, path_events, write_flags = FORBIDDEN, PATH_EVENTS, _WRITE_FLAGS
    root = realpath(root)

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        real = realpath(fsdecode(path))  # type: ignore[arg-type]
        return real == root or real.startswith(root + sep)

    def refuse(event: str, message: str) -> None:
        raise SandboxViolation(event, f"sandbox: {message}")

    def check_open(path: object, mode: object, flags: object) -> None:
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)  # type: ignore[operator]
        if writes and not inside(path):
            refuse("open", f"writing {path!r} outside the working directory is not allowed")
        if isinstance(path, (str, bytes)) and not inside(path) and isdir(path):
            # a descriptor of an outside directory would let os.open(name, ..., dir_fd=fd) write there
            refuse("open", f"opening the directory {path!r} outside the working directory is not allowed")
        if isinstance(path, (str, bytes)) and fsdecode(path).endswith("/environ"):
            refuse("open", "reading a process environment is not allowed")

    def hook(event: str, args: tuple) -> None:
        if event in forbidden:
            refuse(event, f"{event} is not allowed")
        elif event == "open":
            check_open(*args[:3])
        elif event == "object.__setattr__" and args[1] == "__code__":
            refuse(event, "replacing a function's code is not allowed")  # e.g. this hook's
        elif event in path_events:
            for p in args:
                if isinstance(p, (str, bytes, os.PathLike)) and not inside(p):
                    refuse(event, f"{event} on {p!r} outside the working directory is not allowed")

    sys.addaudithook(hook)


def where(exc: BaseException) -> tuple[str, int]:
    """Return the innermost place in ``solution.py`` or ``tests.py`` the exception passed through."""
    if isinstance(exc, SyntaxError) and exc.filename in ("solution.py", "tests.py"):
        return exc.filename, exc.lineno or 0
    found = ("", 0)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):  # reads no source file
        if frame.f_code.co_filename in ("solution.py", "tests.py"):
            found = (frame.f_code.co_filename, lineno)
    return found


def report(fd: int, exc: BaseException, **extra: object) -> None:
    """Write how the run failed to the parent: names and numbers only (see the module docstring)."""
    file, line = where(exc)
    record = {"type": type(exc).__name__, "file": file, "line": line, **extra}
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        record["errno"] = exc.errno
    with contextlib.suppress(OSError, ValueError, MemoryError):  # the exit code alone still classifies the failure
        os.write(fd, json.dumps(record).encode()[:4000])


def status_of(exc: BaseException, fd: int) -> int:
    """Return the exit code for the program's exception, after reporting it on ``fd`` (and, for humans, stderr)."""
    violation = exc if isinstance(exc, SandboxViolation) else exc.__context__
    if isinstance(violation, SandboxViolation):
        report(fd, exc, event=violation.event)
        print(f"SandboxViolation: {violation}", file=sys.stderr)
        return BLOCKED
    if isinstance(exc, MemoryError):
        return MEMORY
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return OUTPUT
    report(fd, exc)
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        print("SystemExit: the program exited before its tests ran", file=sys.stderr)
        return RAISED
    file, line = where(exc)
    print(f"{type(exc).__name__}: {exc} ({file}, line {line})", file=sys.stderr)
    return ASSERTION if isinstance(exc, AssertionError) else RAISED


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
    # seccomp first: where it holds, threads stay allowed (no RLIMIT_NPROC)
    limit(opts["cpu_s"], opts["memory_mb"], opts["output_kb"], no_processes=not forbid_processes())
    try:
        code = compile(solution, "solution.py", "exec")
        test_code = compile(tests, "tests.py", "exec")
    except SyntaxError as exc:
        report(done_fd, exc)
        print(f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})", file=sys.stderr)
        return SYNTAX
    if opts.get("audit_hook", True):
        install_audit_hook(os.getcwd())
    namespace: dict = {"__name__": "solution"}
    try:
        exec(code, namespace)
        exec(test_code, namespace)
        os.write(done_fd, token.encode())  # only reached when the tests ran to their end
    except BaseException as exc:  # noqa: BLE001  (the program's own error, SystemExit included, is a result)
        return status_of(exc, done_fd)
    return PASSED


if __name__ == "__main__":
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # output past the limit
        status = status or OUTPUT
    os._exit(status)  # skips the program's atexit handlers, which could otherwise change the verdict
