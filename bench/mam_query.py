"""Times XEP-0313 queries against our server (see bench/mam). Usage: mam_query.py HOST PORT N"""
import asyncio, ssl, time, statistics, sys
import slixmpp
import xml.etree.ElementTree as ET

class C(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__("alice@localhost/timer", "alice-pass")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.ready.set_result(True))
        self.results = 0
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "mam results", slixmpp.xmlstream.matcher.MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"),
            lambda _: setattr(self, "results", self.results + 1)))

def q(form, rsm):
    x = ""
    if form:
        x = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" + form + "</x>"
    return ET.fromstring(f"<query xmlns='urn:xmpp:mam:2'>{x}<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></query>")

async def main():
    c = C()
    c.connect((sys.argv[1], int(sys.argv[2])), force_starttls=True)
    await c.ready
    middle = f"fill{int(sys.argv[3]) // 2:08d}"
    # The filler's timestamps are one second apart from 2023-11-14T22:13:20Z: an hour in the middle of the archive.
    import datetime
    t0 = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=int(sys.argv[3]) // 2)
    t1 = t0 + datetime.timedelta(hours=1)
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = {
        "last page (max 50)": ("", "<max>50</max><before/>"),
        "after an id in the middle": ("", f"<max>50</max><after>{middle}</after>"),
        "before an id in the middle": ("", f"<max>50</max><before>{middle}</before>"),
        "with carol, last page": ("<field var='with'><value>carol@localhost</value></field>", "<max>50</max><before/>"),
        "with carol, after middle": ("<field var='with'><value>carol@localhost</value></field>", f"<max>50</max><after>{middle}</after>"),
        "start..end, one hour in the middle": (f"<field var='start'><value>{iso(t0)}</value></field><field var='end'><value>{iso(t1)}</value></field>", "<max>50</max>"),
        "first page (max 50)": ("", "<max>50</max>"),
    }
    for name, (form, rsm) in cases.items():
        times = []
        c.results = 0
        for _ in range(20):
            iq = c.Iq(); iq["type"] = "set"; iq.append(q(form, rsm))
            t = time.perf_counter()
            r = await iq.send(timeout=30)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{name}: median {statistics.median(times):.2f} ms, p95 {sorted(times)[18]:.2f} ms, {c.results / 20:.0f} results per query ({r['type']})", flush=True)
    c.disconnect()

asyncio.get_event_loop().run_until_complete(main())
