"""After a migration: a user logs in with the old password (slixmpp) and finds the old roster and vCard.

Usage: migrate.py [fill] HOST PORT JID PASSWORD MECHANISM CONTACT NAME FN
  Logs in with MECHANISM (SCRAM-SHA-1 or -PLUS, as Prosody and ejabberd store it, or PLAIN), reads the roster and
  expects CONTACT with the name NAME, reads the own vCard and expects the full name FN ("-" for none).
  fill: before the migration, on the old server: adds CONTACT with the name NAME (group Friends) to the
  roster and publishes a vCard with the full name FN.
Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp

fill = sys.argv[1] == "fill"
host, port, jid, password, mechanism, contact, name, fn = sys.argv[2:10] if fill else sys.argv[1:9]


async def main():
    c = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.register_plugin("xep_0030")
    c.register_plugin("xep_0054")
    started = asyncio.get_event_loop().create_future()
    c.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
    c.add_event_handler("failed_auth", lambda _: started.done() or started.set_exception(RuntimeError("authentication failed")))
    c.connect((host, int(port)), force_starttls=True)
    try:
        await asyncio.wait_for(started, timeout=15)
        if fill:
            await c.update_roster(contact, name=name, groups=["Friends"], timeout=10)
            card = c["xep_0054"].make_vcard()
            card["FN"] = fn
            await c["xep_0054"].publish_vcard(card, timeout=10)
        roster = await c.get_roster(timeout=10)
        items = {str(j): i["name"] for j, i in roster["roster"]["items"].items()}
        got_fn = "-"
        if fn != "-":
            card = await c["xep_0054"].get_vcard(jid=c.boundjid.bare, timeout=10)
            got_fn = card["vcard_temp"]["FN"]
        ok = items.get(contact) == name and got_fn == fn
        return f"{'OK' if ok else 'FAIL'} {c.boundjid.bare} logged in with {mechanism}; roster {items}; vCard FN {got_fn!r}"
    finally:
        c.disconnect()


try:
    line = asyncio.get_event_loop().run_until_complete(main())
except Exception as e:  # noqa: BLE001 - any failure is the result
    line = f"FAIL {type(e).__name__}: {e}"
print(line, flush=True)
sys.exit(0 if line.startswith("OK") else 1)
