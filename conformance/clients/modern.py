"""Modern-client XEPs with slixmpp's own plugins (Debian python3-slixmpp), several clients in one process.

Usage: modern.py SCENARIO HOST PORT PASSWORD_SUFFIX USER...
  Each USER is "name@domain/resource"; the password is the local part followed by PASSWORD_SUFFIX.
  profile   USER1 publishes a vCard (XEP-0054) and bookmarks in private storage (XEP-0048 over XEP-0049);
            USER2 reads USER1's vCard; USER1 reads its bookmarks back.
Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp

scenario, host, port, suffix = sys.argv[1:5]
users = sys.argv[5:]


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, plugins):
        super().__init__(jid, jid.split("@")[0] + suffix, sasl_mech="SCRAM-SHA-256")
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in ["xep_0030"] + plugins:
            self.register_plugin(p)
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_exception(RuntimeError(f"{jid}: authentication failed")))

    async def _start(self, _):
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


async def connect(jid, plugins):
    client = Client(jid, plugins)
    client.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(client.started, timeout=15)
    return client


async def profile():
    alice = await connect(users[0], ["xep_0054", "xep_0049", "xep_0048"])
    bob = await connect(users[1], ["xep_0054"])
    try:
        vcard = alice["xep_0054"].make_vcard()
        vcard["FN"] = "Alice Liddell"
        vcard["NICKNAME"] = "alice"
        await alice["xep_0054"].publish_vcard(vcard, timeout=10)

        from slixmpp.plugins.xep_0048 import Bookmarks
        bookmarks = Bookmarks()
        bookmarks.add_conference("tea@conference.localhost", "Alice", name="Tea party", autojoin=False)
        await alice["xep_0048"].set_bookmarks(bookmarks, method="xep_0049", timeout=10)

        got = await bob["xep_0054"].get_vcard(alice.boundjid.bare, local=False, timeout=10)
        fn = got["vcard_temp"]["FN"]
        back = await alice["xep_0048"].get_bookmarks(method="xep_0049", timeout=10)
        confs = [str(c["jid"]) for c in back["private"]["bookmarks"]["conferences"]]
        ok = fn == "Alice Liddell" and confs == ["tea@conference.localhost"]
        return f"{'OK' if ok else 'FAIL'} vCard FN seen by {bob.boundjid.bare}: {fn!r}; bookmarks read back: {confs}"
    finally:
        alice.disconnect()
        bob.disconnect()


async def main():
    try:
        line = await asyncio.wait_for(globals()[scenario](), timeout=45)
    except Exception as e:  # noqa: BLE001 - any failure is the scenario's result
        line = f"FAIL {type(e).__name__}: {e}"
    await asyncio.sleep(0.3)
    return line


line = asyncio.get_event_loop().run_until_complete(main())
print(line, flush=True)
sys.exit(0 if line.startswith("OK") else 1)
