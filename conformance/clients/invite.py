"""slixmpp (Debian python3-slixmpp) redeeming an invitation made by `xmppserver invite --roster INVITER`.

Usage: invite.py HOST PORT TOKEN INVITER_JID INVITER_PASSWORD [remove]
The inviter logs in and waits for a roster push; a new client sends the XEP-0445 preauth iq with the token
before its XEP-0077 registration (slixmpp's own plugin), logs in as the new account and must find the inviter
in its roster with subscription both, while the inviter's push says both too; a second new client presenting
the same (single-use) token must get item-not-found and create nothing.
With "remove" (a server with the register module), the new account removes itself at the end (XEP-0077 §3.2),
so that the accounts of the other cases stay as they were. Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

host, port, token, inviter_jid, inviter_password = sys.argv[1:6]
remove = sys.argv[6:7] == ["remove"]
domain = inviter_jid.split("@")[1]


def insecure(client):
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE


async def inviter():
    client = slixmpp.ClientXMPP(inviter_jid + "/inviter", inviter_password)
    insecure(client)
    pushes = asyncio.Queue()
    started = asyncio.get_event_loop().create_future()

    async def start(_):
        await client.get_roster()
        client.send_presence()
        started.done() or started.set_result(True)

    client.add_event_handler("session_start", start)
    client.add_event_handler("roster_update", lambda iq: pushes.put_nowait(iq))
    client.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(started, timeout=15)
    return client, pushes


async def register(name):
    """Registers NAME with the token; returns (outcome, client): 'created' or the preauth's error condition."""
    client = slixmpp.ClientXMPP(f"{name}@{domain}/invited", "invited-pass")
    insecure(client)
    for p in ("xep_0030", "xep_0004", "xep_0066", "xep_0077"):
        client.register_plugin(p)
    # COMPAT: slixmpp 1.8 holds back every stanza before the session starts except bind and session iqs, so
    # its own XEP-0077 plugin cannot send the registration iq; this private switch lets stanzas through.
    client._always_send_everything = True
    outcome = asyncio.get_event_loop().create_future()

    async def on_register(_form):
        preauth = client.Iq()
        preauth["type"] = "set"
        preauth["to"] = domain
        preauth.xml.append(ET.fromstring(f"<preauth xmlns='urn:xmpp:pars:0' token='{token}'/>"))
        try:
            await preauth.send(timeout=10)
        except IqError as e:
            outcome.done() or outcome.set_result(e.iq["error"]["condition"])
            return
        iq = client.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = name
        iq["register"]["password"] = "invited-pass"
        try:
            await iq.send(timeout=10)
            outcome.done() or outcome.set_result("created")
        except IqError as e:
            outcome.done() or outcome.set_result("registration refused: " + e.iq["error"]["condition"])

    client.add_event_handler("register", on_register)
    client.connect((host, int(port)), force_starttls=True)
    return await asyncio.wait_for(outcome, timeout=15), client


async def main():
    boss, pushes = await inviter()
    name = "invited-" + uuid.uuid4().hex[:6]
    jid = f"{name}@{domain}"
    outcome, client = await register(name)
    if outcome != "created":
        client.disconnect()
        boss.disconnect()
        return f"FAIL the first registration with the token: {outcome}"
    started = asyncio.get_event_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
    await asyncio.wait_for(started, timeout=15)
    roster = await client.get_roster(timeout=10)
    mine = {str(j): item["subscription"] for j, item in roster["roster"]["items"].items()}
    pushed = None
    while pushed is None:
        iq = await asyncio.wait_for(pushes.get(), timeout=15)
        for item_jid, item in iq["roster"]["items"].items():
            if str(item_jid) == jid:
                pushed = item["subscription"]
    if remove:
        await client["xep_0077"].cancel_registration(timeout=10)
    client.disconnect()

    second, other = await register("second-" + uuid.uuid4().hex[:6])
    other.disconnect()
    boss.disconnect()
    ok = mine.get(inviter_jid) == "both" and pushed == "both" and second == "item-not-found"
    return (f"{'OK' if ok else 'FAIL'} {jid} registered with the token (XEP-0445 preauth, then XEP-0077); its roster: {mine}; "
            f"the inviter's push: {pushed}; the token again: {second}")


print(asyncio.run(main()))
