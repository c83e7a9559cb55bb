"""Turns bench/run's raw results into one table with ratios ours/Prosody and ours/ejabberd."""
import json
import statistics
import sys

lines = open(sys.argv[1]).read().splitlines()
header = [l for l in lines if "=" not in l and not l.startswith("before:")]
# KEY=JSON, one line per round (bench/run --rounds N): every key keeps the list of its rounds.
rounds = {}
for l in lines:
    if "=" in l:
        k, v = l.split("=", 1)
        rounds.setdefault(k, []).append(v)
# bench/run --before REV: our server as it was at REV, measured in the same run.
before = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("before:")), None)


def get(server, scenario, key):
    """The median over the rounds of a figure from the rounds that ran without errors; None (shown as '-')
    when none did."""
    values = [v for v in (get_one(text, scenario, key) for text in rounds.get(f"{server}.{scenario}", [])) if v is not None]
    if not values:
        return None
    m = statistics.median(values)
    return round(m, 2) if isinstance(m, float) else m


def get_one(text, scenario, key):
    """A figure from one round of a scenario that ran without errors; None otherwise."""
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    if not data:
        return None
    errors = data.get("errors", 0)
    # Idle memory stays meaningful when a few of thousands of logins failed (shown in their own row).
    tolerated = scenario == "idle" and errors <= data.get("count", 0) // 100
    if errors and not tolerated and key != "errors":
        return None
    if callable(key):
        try:
            return key(data)
        except (KeyError, TypeError, ZeroDivisionError):
            return None
    return data.get(key)


def per(total_key, count_key, scale):
    """A derived figure: data[total_key] * scale / data[count_key], rounded for the table."""
    return lambda d: round(d[total_key] * scale / d[count_key], 2)


rows = [
    ("RSS of the idle server MiB", "footprint", "rss_mib", False),
    ("logins/s", "login", "logins_per_second", True),
    ("login p50 ms", "login", "p50_ms", False),
    ("login p99 ms", "login", "p99_ms", False),
    ("login server CPU ms each", "login", per("server_cpu_seconds", "count", 1000), False),
    ("login generator CPU s", "login", "cpu_seconds_generator", None),
    ("login seconds", "login", "seconds", None),
    ("messages/s", "messages", "messages_per_second", True),
    ("message p50 ms", "messages", "p50_ms", False),
    ("message p99 ms", "messages", "p99_ms", False),
    ("message p99.9 ms", "messages", "p999_ms", False),
    ("message server CPU us each", "messages", per("server_cpu_seconds", "messages", 1e6), False),
    ("messages generator CPU s", "messages", "cpu_seconds_generator", None),
    ("messages missing", "messages", "missing", False),
    ("messages duplicated", "messages", "duplicates", False),
    ("fan-out seconds", "fanout", "seconds", False),
    ("fan-out presences seen", "fanout", "presences_seen", True),
    ("fan-out server CPU s", "fanout", "server_cpu_seconds", False),
    ("offline stored/s", "offline", "stored_per_second", True),
    ("offline fetched/s", "offline", "fetched_per_second", True),
    ("offline server CPU us each", "offline", per("server_cpu_seconds", "messages", 1e6), False),
    ("offline missing", "offline", "missing", False),
    ("offline duplicated", "offline", "duplicates", False),
    ("group chat deliveries/s", "muc", "deliveries_per_second", True),
    ("group chat p50 ms", "muc", "p50_ms", False),
    ("group chat p99 ms", "muc", "p99_ms", False),
    ("group chat server CPU us per delivery", "muc", per("server_cpu_seconds", "deliveries", 1e6), False),
    ("group chat missing", "muc", "missing", False),
    ("group chat duplicated", "muc", "duplicates", False),
    ("idle sessions", "idle", "sessions", True),
    ("idle logins failed", "idle", "errors", False),
    ("KiB per idle session", "idle", "kib_per_session", False),
    ("RSS with idle sessions MiB", "idle", "rss_after_mib", False),
]


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if isinstance(v, (int, float)) and abs(v) >= 100 else str(v)


def ratio(a, b, higher_is_better):
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    r = a / b if higher_is_better else b / a
    return f"{r:.2f}x"


for h in header:
    print(h)
print()
if before:
    print(f"before: our server at {before}")
    print()
extra_head = f" {'before':>10} | {'vs before':>10} |" if before else ""
extra_rule = f"{'-' * 12}|{'-' * 12}|" if before else ""
print(f"| {'metric':<28} | {'ours':>10} | {'Prosody':>10} | {'ejabberd':>10} | {'vs Prosody':>10} | {'vs ejabberd':>11} |{extra_head}")
print(f"|{'-' * 30}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 12}|{'-' * 13}|{extra_rule}")
for name, scenario, key, higher in rows:
    o, p, e = (get(s, scenario, key) for s in ("ours", "prosody", "ejabberd"))
    # Counts, and figures shown for context (the generator's CPU), get no ratio.
    plain = (not callable(key) and key in ("missing", "duplicates", "errors")) or higher is None
    better = ratio(o, p, higher) if not plain else "-"
    better_e = ratio(o, e, higher) if not plain else "-"
    extra = ""
    if before:
        b = get("before", scenario, key)
        extra = f" {fmt(b):>10} | {(ratio(o, b, higher) if not plain else '-'):>10} |"
    print(f"| {name:<28} | {fmt(o):>10} | {fmt(p):>10} | {fmt(e):>10} | {better:>10} | {better_e:>11} |{extra}")
print()
# bench/run --servers "... floor": the login exchange answered and nothing else (bench/Xmpp.Bench.Floor).
login_cpu = next(key for name, _, key, _ in rows if name == "login server CPU ms each")
floor = get("floor", "login", login_cpu)
if floor is not None:
    o, e = get("ours", "login", login_cpu), get("ejabberd", "login", login_cpu)
    versus = []
    if o:
        versus.append(f"ours costs {o / floor:.2f} times the floor")
    if e:
        versus.append(f"the floor costs {floor / e:.2f} of ejabberd's")
    print(f"floor (the login exchange and nothing else): {floor} ms of server CPU per login, {get('floor', 'login', 'logins_per_second')} logins/s" + ("; " + ", ".join(versus) if versus else ""))
    print()
print("Ratios: how many times better ours is (higher is better for rates, lower for times and memory).")
print("'-': the scenario did not run or had errors (failed logins, lost messages, a timeout); see the raw JSON.")
for s in ("before", "ours", "prosody", "ejabberd", "floor"):
    for scenario in ("idle", "login", "messages", "fanout", "offline"):
        for text in rounds.get(f"{s}.{scenario}", []):
            if text and '"errors": 0' not in text.replace('"errors":0', '"errors": 0'):
                print(f"{s} {scenario}: {text}")
for s in ("before", "ours", "prosody", "ejabberd", "floor"):
    cpu = ", ".join(c for c in rounds.get(f"{s}.cpu", []) if c)
    if cpu:
        print(f"{s}: server CPU time {cpu}")
