"""Checks an XMPP Interop Testing run against the reviewed list of test-suite assumptions.

usage: sint_results.py TEST-RESULTS.XML ASSUMPTIONS [SINT.OUT]

Every failed test must match an entry of ASSUMPTIONS (a line "Class.method", or "Class.*" for every test of a
class; indented lines, comments and blank lines are the entry's reasons), and every entry must match at least
one failed test, so that the list never outlives its reason. Prints each unexpected failure with the suite's
own explanation, and a last line with the counts. Exit status 0 when both hold.
"""
import re
import sys
import xml.etree.ElementTree as ET


def patterns(path):
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith((" ", "\t", "#")):
                entries.append(line.strip())
    return entries


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


def main():
    entries = patterns(sys.argv[2])
    failed = failed_tests(sys.argv[1])
    unexpected = [(t, why) for t, why in failed if not any(matches(p, t) for p in entries)]
    stale = [p for p in entries if not any(matches(p, t) for t, _ in failed)]
    for test, why in unexpected:
        print(f"FAILED (not a listed assumption): {test}\n    {why[:400]}")
    for entry in stale:
        print(f"LISTED BUT NOT FAILING (remove it from the list): {entry}")
    expected = len(failed) - len(unexpected)
    print(f"{len(failed)} failed: {expected} listed test-suite assumptions, {len(unexpected)} not listed; {len(stale)} stale entries")
    return 0 if not unexpected and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
