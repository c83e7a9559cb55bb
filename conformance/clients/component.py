"""An external component (XEP-0114) with slixmpp's ComponentXMPP (Debian python3-slixmpp), and a client.

Usage: component.py HOST C2S_PORT COMPONENT_PORT COMPONENT_DOMAIN SECRET USER PASSWORD
  An echo component for COMPONENT_DOMAIN connects with the shared secret and answers disco#info with
  slixmpp's XEP-0030 plugin. USER finds it in the server's disco#items, asks it for disco#info, and gets
  its messages echoed. Then the component disconnects: USER's message bounces with service-unavailable.
  A new component connects: echoes again. A third connects while the second is still there: the second
  is closed with <conflict/> and the third echoes. A wrong secret is refused with <not-authorized/>.
Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys
import uuid

import slixmpp
from slixmpp.componentxmpp import ComponentXMPP

host, c2s_port, comp_port, domain, secret, user, password = sys.argv[1:8]


class Echo(ComponentXMPP):
    def __init__(self, name, key=secret):
        super().__init__(domain, key, host, int(comp_port))
        self.name = name
        self.register_plugin("xep_0030")
        self["xep_0030"].add_identity(category="component", itype="generic", name="Echo " + name)
        self.ready = asyncio.get_event_loop().create_future()
        self.gone = asyncio.get_event_loop().create_future()
        self.errors = []
        self.add_event_handler("session_start", lambda _: self.ready.done() or self.ready.set_result(True))
        self.add_event_handler("disconnected", lambda _: self.gone.done() or self.gone.set_result(True))
        self.add_event_handler("stream_error", lambda e: self.errors.append(e["condition"]))
        self.add_event_handler("message", self.on_message)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            msg.reply(f"{self.name}: {msg['body']}").send()

    async def start(self):
        self.connect()
        await asyncio.wait_for(self.ready, timeout=10)
        return self


async def main():
    client = slixmpp.ClientXMPP(user, password)
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    client.register_plugin("xep_0030")
    started = asyncio.get_event_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
    inbox = asyncio.Queue()
    client.add_event_handler("message", lambda m: inbox.put_nowait(m))
    client.connect((host, int(c2s_port)), force_starttls=True)
    await asyncio.wait_for(started, timeout=15)
    client.send_presence()
    steps = []
    components = []
    bot = f"bot@{domain}"

    async def ask(tag):
        client.send_message(mto=bot, mbody=f"{tag} {uuid.uuid4().hex[:6]}", mtype="chat")
        m = await asyncio.wait_for(inbox.get(), timeout=10)
        return m["error"]["condition"] if m["type"] == "error" else m["body"].rsplit(" ", 1)[0]

    try:
        first = await Echo("one").start()
        components.append(first)
        items = [i[0] for i in (await client["xep_0030"].get_items(jid=client.boundjid.domain, timeout=10))["disco_items"]["items"]]
        info = await client["xep_0030"].get_info(jid=domain, timeout=10)
        names = [i[3] for i in info["disco_info"]["identities"]]
        steps.append(f"listed={domain in items} identity={names}")
        steps.append(await ask("hello"))
        first.disconnect()
        await asyncio.wait_for(first.gone, timeout=10)
        steps.append(await ask("anyone"))
        second = await Echo("two").start()
        components.append(second)
        steps.append(await ask("back"))
        third = await Echo("three").start()
        components.append(third)
        await asyncio.wait_for(second.gone, timeout=10)
        steps.append(f"replaced:{second.errors}")
        steps.append(await ask("again"))
        wrong = Echo("wrong", key="not-the-secret")
        wrong.connect()
        await asyncio.wait_for(wrong.gone, timeout=10)
        steps.append(f"wrong secret:{wrong.errors} ready={wrong.ready.done()}")
        expected = [f"listed=True identity=['Echo one']", "one: hello", "service-unavailable", "two: back",
                    "replaced:['conflict']", "three: again", "wrong secret:['not-authorized'] ready=False"]
        ok = steps == expected
        return f"{'OK' if ok else 'FAIL'} {steps}"
    finally:
        for c in components:
            c.disconnect()
        client.disconnect()


try:
    line = asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(), timeout=50))
except Exception as e:  # noqa: BLE001 - any failure is the result
    line = f"FAIL {type(e).__name__}: {e}"
print(line, flush=True)
sys.exit(0 if line.startswith("OK") else 1)
