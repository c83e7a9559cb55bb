#!/usr/bin/env python3
"""The Native AOT build's method order (Xmpp.Server/aot-order.txt) from profiled runs: bench/aot-order.

A Native AOT executable's managed code (its __managedcode section, 14 MB) is laid out by the compiler in an
order of its own, so the methods a server runs at its start and when clients log in are spread over the whole
section, and the kernel maps 64 KiB around every page touched (fault-around): 11.5 of the 14.6 MB were
resident in an idle server. Given the methods in the order they were first touched, the compiler puts them
first (IlcOrderFile), and the rest stays on disk.

usage: aot_order.py reach IDLE_REACHED REACHED DEBUG_SYMBOLS OUT
         the methods an instrumented build ran (from bench/AotReach.cs) when started and left idle
         (IDLE_REACHED), then in the whole scenario (REACHED), matched to the symbols of that build
         (DEBUG_SYMBOLS, its xmppserver.dbg): those of the idle server first, each part in address order
       aot_order.py faults MAPS PERF_DATA DEBUG_SYMBOLS PREVIOUS_ORDER OUT [IDLE_END]
         MAPS: /proc/PID/maps of the profiled server; PERF_DATA: `perf record -k CLOCK_MONOTONIC -e
         page-faults -c 1 -d` and cpu-clock samples of its run; DEBUG_SYMBOLS: the build's xmppserver.dbg;
         PREVIOUS_ORDER: the order it was built with; OUT: the new order; IDLE_END: the CLOCK_MONOTONIC time
         at which the first client came (what ran before, start and idling, goes first).

The instrumented build (the compiler's reachability instrumentation) knows every method definition that ran,
but not which instantiations of generic code did, and its names are matched to the compiler's symbols by their
mangled form. What a profiled run shows: with read-ahead off and the executable out of the page cache, every
page of code touched faults on its own, and the fault's address is in the method that touched the page first
(exact); the other methods on that page may or may not have run (uncertain); sampled instruction addresses
are exact too. The new order is: the exact methods in the order they were first seen, then the uncertain ones
of the same pages (first what ran before IDLE_END, then the rest: an idle server maps only the first part),
then the methods of the previous order that this run did not see (other paths keep their places near the
front), so that a few runs converge on a compact front.
"""
import bisect
import re
import subprocess
import sys


def managed_symbols(dbg, exe):
    """(address, size, name) of the functions in __managedcode, sorted."""
    start = size = None
    for line in subprocess.run(['readelf', '-SW', exe], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r'\s*\[\s*\d+\]\s+__managedcode\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', line)
        if m:
            start, size = int(m.group(1), 16), int(m.group(2), 16)
    if start is None:
        sys.exit('aot_order: no __managedcode section in ' + exe)
    symbols = []
    nm = subprocess.run(['nm', '-S', '--defined-only', dbg], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in 'tT':
            address = int(parts[0], 16)
            if start <= address < start + size:
                symbols.append((address, int(parts[1], 16), parts[3]))
    symbols.sort()
    return start, start + size, symbols


# The compiler's short names for CoreLib's primitive types.
PRIMITIVES = {'String': 'String', 'Char': 'Char', 'Byte': 'UInt8', 'SByte': 'Int8', 'Int16': 'Int16',
              'Int32': 'Int32', 'Int64': 'Int64', 'UInt16': 'UInt16', 'UInt32': 'UInt32', 'UInt64': 'UInt64',
              'Single': 'Single', 'Double': 'Double', 'Boolean': 'Bool', 'IntPtr': 'IntPtr',
              'UIntPtr': 'UIntPtr', 'Object': 'Object'}


def reach(idle_reached, reached, dbg, out):
    def mangle(s):
        return re.sub(r'[^A-Za-z0-9_]', '_', s)

    def read_keys(path):
        keys = set()
        for line in open(path):
            assembly, type_name, method = line.rstrip('\n').split('|', 2)
            prefix = 'S_P_' + mangle(assembly[len('System.Private.'):]) if assembly.startswith('System.Private.') else mangle(assembly)
            keys.add(prefix + '_' + mangle(type_name) + '__' + mangle(method))
            if assembly == 'System.Private.CoreLib' and type_name.startswith('System.') and type_name[7:] in PRIMITIVES:
                keys.add(PRIMITIVES[type_name[7:]] + '__' + mangle(method))
        return keys

    def without_instantiations(name):
        out, depth = [], 0
        for ch in name:
            if ch == '<':
                depth += 1
            elif ch == '>':
                depth -= 1
            elif depth == 0:
                out.append(ch)
        return ''.join(out)

    _, _, symbols = managed_symbols(dbg, dbg)
    parts = []
    for keys in (read_keys(idle_reached), read_keys(reached)):
        chosen = []
        for _, _, name in symbols:
            key = without_instantiations(name)
            # Overloads get a numeric suffix (Memmove_0): all overloads of a method that ran are taken.
            if key in keys or re.sub(r'_\d+$', '', key) in keys:
                chosen.append(name)
        parts.append(chosen)
    idle = set(parts[0])
    order = parts[0] + [n for n in parts[1] if n not in idle]
    with open(out, 'w') as f:
        f.write('\n'.join(order) + '\n')
    print(f'{len(parts[0])} symbols of what ran in an idle server, {len(order)} in all', file=sys.stderr)


def faults(maps, perf_data, dbg, previous, out, idle_end='inf'):
    exe = base = None
    for line in open(maps):
        parts = line.split()
        if len(parts) >= 6 and parts[5].endswith('/xmppserver') and int(parts[2], 16) == 0:
            base = int(parts[0].split('-')[0], 16)
            exe = parts[5]
            break
    if base is None:
        sys.exit('aot_order: the executable is not in ' + maps)
    code_start, code_end, symbols = managed_symbols(dbg, exe)
    starts = [s[0] for s in symbols]

    def symbol_at(address):
        i = bisect.bisect_right(starts, address) - 1
        return i if i >= 0 and address < symbols[i][0] + max(symbols[i][1], 1) else None

    idle_end = float(idle_end)
    exact, pages = ([], []), ([], [])
    seen_exact, seen_pages = set(), set()
    script = subprocess.run(['perf', 'script', '-i', perf_data, '-F', 'time,event,ip,addr'],
                            capture_output=True, text=True, check=True).stdout
    for line in script.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        phase = 0 if float(fields[0].rstrip(':')) < idle_end else 1
        fault = 'page-faults' in line
        for field in fields[2:]:
            if not re.fullmatch(r'[0-9a-f]+', field):
                continue
            address = int(field, 16) - base
            if not code_start <= address < code_end:
                continue
            i = symbol_at(address)
            if i is not None and i not in seen_exact:
                seen_exact.add(i)
                exact[phase].append(i)
            page = address // 4096
            if fault and page not in seen_pages:
                seen_pages.add(page)
                pages[phase].append(page)

    uncertain = ([], [])
    for phase in (0, 1):
        for page in pages[phase]:
            j = max(bisect.bisect_right(starts, page * 4096) - 1, 0)
            while j < len(symbols) and symbols[j][0] < (page + 1) * 4096:
                if symbols[j][0] + symbols[j][1] > page * 4096 and j not in seen_exact:
                    seen_exact.add(j)
                    uncertain[phase].append(j)
                j += 1

    names = [symbols[i][2] for i in exact[0] + uncertain[0] + exact[1] + uncertain[1]]
    listed = set(names)
    known = {s[2] for s in symbols}
    kept = [n.strip() for n in open(previous) if n.strip() in known and n.strip() not in listed]
    with open(out, 'w') as f:
        f.write('\n'.join(names + kept) + '\n')
    for phase, name in ((0, 'start and idle'), (1, 'clients')):
        size = sum(symbols[i][1] for i in exact[phase])
        print(f'{name}: {len(exact[phase])} methods seen ({size // 1024} KiB), {len(uncertain[phase])} more on '
              f'their {len(pages[phase])} pages; ', end='', file=sys.stderr)
    print(f'{len(kept)} kept from the previous order', file=sys.stderr)


if __name__ == '__main__':
    if len(sys.argv) == 6 and sys.argv[1] == 'reach':
        reach(*sys.argv[2:])
    elif len(sys.argv) in (7, 8) and sys.argv[1] == 'faults':
        faults(*sys.argv[2:])
    else:
        sys.exit(__doc__)
