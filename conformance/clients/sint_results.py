"""Checks an XMPP Interop Testing run against the reviewed list of test-suite assumptions.

usage: sint_results.py TEST-RESULTS.XML ASSUMPTIONS [SINT.OUT]

Every failed test must match an entry of ASSUMPTIONS (a line "Class.method", or "Class.*" for every test of a
class; indented lines, comments and blank lines are the entry's reasons), and every entry must match at least
one failed test, so that the list never outlives its reason. Prints each unexpected failure with the suite's
own explanation, and a last line with the counts. Exit status 0 when both hold.

An entry "~Class.method" is a race in the test suite's own client that shows now and then: its failure is
accepted only when the failure's stack trace in SINT.OUT holds the text of the entry's indented "where: TEXT"
line (the place of the race, so that the same test failing anywhere else still fails the run), and, when the entry
has an indented "log: REGEX" line, only when the test's stanza log matches that regular expression (the stanzas that
show the race), and, when the entry has an indented "after: Class.method" line, only when that test failed earlier in
the same run on its own listed race (a knock-on: what a raced test left behind, such as a room it never left); it
is never stale.

For each unexpected failure the end of its stanza log (and of the test that ran just before it, which shares the
accounts) is printed, so that a failure seen once in CI can be read without the run's files.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET


def patterns(path):
    """The entries, and for each intermittent ("~") one the text its failure's stack trace must hold."""
    entries, races, logs, after, last = [], {}, {}, {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith((" ", "\t", "#")):
                last = line.strip()
                if last.startswith("~"):
                    races[last[1:]] = None
                else:
                    entries.append(last)
            elif last and last.startswith("~") and line.strip().startswith("where:"):
                races[last[1:]] = line.strip()[len("where:"):].strip()
            elif last and last.startswith("~") and line.strip().startswith("log:"):
                logs[last[1:]] = re.compile(line.strip()[len("log:"):].strip(), re.S)
            elif last and last.startswith("~") and line.strip().startswith("after:"):
                after[last[1:]] = line.strip()[len("after:"):].strip()
    for race, where in races.items():
        if not where:
            sys.exit(f"{path}: the intermittent entry ~{race} needs a 'where: TEXT' line")
    for race, cause in after.items():
        if cause not in races:
            sys.exit(f"{path}: ~{race} is 'after: {cause}', which is not an intermittent entry")
    return entries, races, logs, after


def stanza_log(logs, test):
    cls, _, method = test.partition(".")
    path = os.path.join(logs, cls, method, "log")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def stack_traces(path):
    """Each failed test's stack trace in SINT.OUT: from its "SEVERE: ... Failed" line to the next log record."""
    traces, current = {}, None
    if not path:
        return traces
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"SEVERE: (\S+) \(.*\) Failed", line)
            if m:
                current = m.group(1)
                traces[current] = ""
            elif current and re.match(r"^[A-Z][a-z]{2} \d{2}, \d{4} ", line):
                current = None
            elif current:
                traces[current] += line
    return traces


def matches(pattern, test):
    if pattern.endswith(".*"):
        return test.split(".", 1)[0] == pattern[:-2]
    return test == pattern


def failed_tests(path):
    failed = []
    for case in ET.parse(path).iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        # "Class.method (Normal)" -> "Class.method"
        name = re.sub(r" \(.*\)$", "", case.get("name", ""))
        failed.append((name, (problem.get("message") or problem.text or "").strip()))
    return failed


def run_order(path):
    """The tests in the order the suite started them (from SINT.OUT)."""
    order = []
    if path:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"INFO: (\S+) \(.*\) Start", line)
                if m:
                    order.append(m.group(1))
    return order


def print_stanza_log(logs, test, lines=60):
    tail = [l for l in stanza_log(logs, test).splitlines() if l.strip()][-lines:]
    if not tail:
        return
    print(f"    --- the last {len(tail)} lines of {test}'s stanza log ---")
    for l in tail:
        print("    | " + l[:200])


def main():
    entries, races, race_logs, after = patterns(sys.argv[2])
    failed = failed_tests(sys.argv[1])
    traces = stack_traces(sys.argv[3] if len(sys.argv) > 3 else None)
    logs = os.path.dirname(os.path.abspath(sys.argv[1]))
    order = run_order(sys.argv[3] if len(sys.argv) > 3 else None)

    def own_race(t):
        return (t in races and races[t] in traces.get(t, "")
                and (t not in race_logs or race_logs[t].search(stanza_log(logs, t))))

    def ran_before(cause, t):
        return cause in order and t in order and order.index(cause) < order.index(t)

    raced = [t for t, _ in failed if own_race(t) and t not in after]
    # Knock-ons: accepted only after their cause raced (itself accepted above) earlier in this run.
    raced += [t for t, _ in failed if own_race(t) and t in after and after[t] in raced and ran_before(after[t], t)]
    for test in raced:
        print(f"RACE IN THE TEST CLIENT (listed, at {races[test]}): {test}")
    unexpected = [(t, why) for t, why in failed if t not in raced and not any(matches(p, t) for p in entries)]
    stale = [p for p in entries if not any(matches(p, t) for t, _ in failed)]
    for test, why in unexpected:
        print(f"FAILED (not a listed assumption): {test}\n    {why[:400]}")
        if test in order and order.index(test) > 0:
            print_stanza_log(logs, order[order.index(test) - 1], 30)
        print_stanza_log(logs, test, 250)
    for entry in stale:
        print(f"LISTED BUT NOT FAILING (remove it from the list): {entry}")
    expected = len(failed) - len(unexpected) - len(raced)
    print(f"{len(failed)} failed: {expected} listed test-suite assumptions, {len(raced)} listed test-client races, "
          f"{len(unexpected)} not listed; {len(stale)} stale entries")
    return 0 if not unexpected and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
