#!/usr/bin/python3
"""Runs a command under a unit's system call filter, as systemd would apply it.

usage: syscall-sandbox.py UNIT-FILE -- COMMAND [ARGS...]

Reads the unit's SystemCallFilter= lines (allow lists, "~" deny lists, @groups expanded with
`systemd-analyze syscall-filter`, which lists the groups of the systemd installed here),
SystemCallErrorNumber= and SystemCallArchitectures=native, installs the same seccomp filter with
libseccomp (Debian's python3-seccomp) and execs COMMAND under it. As systemd does, calls outside the
filter fail with the unit's errno (or kill the process without SystemCallErrorNumber=). Only the
system call filter is reproduced: the other sandboxing settings need systemd itself.
"""
import errno
import os
import subprocess
import sys

import seccomp


def groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True, capture_output=True, text=True).stdout
    result, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            result[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            result[current].append(line.strip())
    return result


def expand(names, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            if n not in table:
                sys.exit(f"unknown system call group {n}")
            calls |= expand(table[n], table, seen)
        else:
            calls.add(n)
    return calls


def main():
    if "--" not in sys.argv:
        sys.exit(__doc__)
    unit, command = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    table = groups()
    allowed, denied_only, error, native = None, set(), None, False
    for raw in open(unit, encoding="utf-8"):
        line = raw.strip()
        if "=" not in line or line.startswith("#"):
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if key == "SystemCallFilter":
            # systemd(5): the first line decides allow or deny list; "~" lines then remove from an allow list.
            deny = value.startswith("~")
            names = expand(value.lstrip("~").split(), table)
            if allowed is None and not deny:
                allowed = names | expand(["@default"], table)
            elif allowed is None:
                denied_only |= names
            elif deny:
                allowed -= names
            else:
                allowed |= names
        elif key == "SystemCallErrorNumber":
            error = getattr(errno, value)
        elif key == "SystemCallArchitectures" and value == "native":
            native = True
    if allowed is None and not denied_only:
        sys.exit(f"{unit}: no SystemCallFilter=")
    refuse = seccomp.ERRNO(error) if error is not None else seccomp.KILL_PROCESS
    if allowed is not None:
        f = seccomp.SyscallFilter(defaction=refuse)
        known = 0
        for name in sorted(allowed):
            try:
                f.add_rule(seccomp.ALLOW, name)
                known += 1
            except (RuntimeError, ValueError):
                pass  # a call this architecture does not have (e.g. the 32-bit time64 ones)
    else:
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for name in sorted(denied_only):
            try:
                f.add_rule(refuse, name)
            except (RuntimeError, ValueError):
                pass
    # SystemCallArchitectures=native: libseccomp's filter covers the native architecture only, and its
    # default for calls made through another one (int 0x80 on x86-64) is to kill the process.
    if not native:
        sys.exit(f"{unit}: without SystemCallArchitectures=native this sandbox would differ from systemd's")
    print(f"syscall-sandbox: {len(allowed) if allowed is not None else 'all but ' + str(len(denied_only))} system calls allowed, others get "
          f"{'errno ' + errno.errorcode[error] if error is not None else 'SIGSYS'}", file=sys.stderr, flush=True)
    f.load()
    os.execvp(command[0], command)


main()
