"""Federation scenario with two slixmpp clients, one on each server.

Usage: fed.py JID_A PASS_A HOST_A PORT_A JID_B PASS_B HOST_B PORT_B
A subscribes to B (both clients approve and subscribe back, slixmpp's defaults), each must see the other
online, they exchange messages both ways; then B drops its TCP connection and A must see B go offline;
B comes back, A sees it online again; then A drops its connection and B must see A go offline.
Prints progress and finally one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp

ja, pa, ha, porta, jb, pb, hb, portb = sys.argv[1:9]
TIMEOUT = 25


def say(text):
    print(text, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, label):
        super().__init__(jid, password)
        self.label = label
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.started = asyncio.Event()
        self.failed = None
        self.online = {}
        self.offline = {}
        self.messages = []
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("presence_unavailable", self.on_unavailable)
        self.add_event_handler("message", self.on_message)

    def fail(self, why):
        self.failed = why
        self.started.set()

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    def on_available(self, p):
        self.online.setdefault(p["from"].bare, asyncio.Event()).set()
        self.offline.setdefault(p["from"].bare, asyncio.Event()).clear()

    def on_unavailable(self, p):
        self.offline.setdefault(p["from"].bare, asyncio.Event()).set()
        self.online.setdefault(p["from"].bare, asyncio.Event()).clear()

    def on_message(self, m):
        if m["body"]:
            self.messages.append((m["from"].bare, m["body"]))

    async def wait_online(self, bare):
        await asyncio.wait_for(self.online.setdefault(bare, asyncio.Event()).wait(), TIMEOUT)

    async def wait_offline(self, bare):
        await asyncio.wait_for(self.offline.setdefault(bare, asyncio.Event()).wait(), TIMEOUT)

    async def wait_message(self, sender, body):
        for _ in range(TIMEOUT * 10):
            if (sender, body) in self.messages:
                return
            await asyncio.sleep(0.1)
        raise asyncio.TimeoutError(f"no message {body!r} from {sender}")


async def start(jid, password, host, port, label):
    c = Client(jid, password, label)
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(c.started.wait(), TIMEOUT)
    if c.failed:
        raise RuntimeError(f"{label}: {c.failed}")
    say(f"{label} online as {c.boundjid.full}")
    return c


async def main():
    bare_a, bare_b = slixmpp.JID(ja).bare, slixmpp.JID(jb).bare
    step = "login"
    try:
        a = await start(ja, pa, ha, porta, "A")
        b = await start(jb, pb, hb, portb, "B")
        step = "subscription"
        a.send_presence_subscription(pto=bare_b)
        step = "A sees B online"
        await a.wait_online(bare_b)
        step = "B sees A online"
        await b.wait_online(bare_a)
        say("both see each other online")
        step = "message A to B"
        a.send_message(mto=bare_b, mbody="hello from A", mtype="chat")
        await b.wait_message(bare_a, "hello from A")
        step = "message B to A"
        b.send_message(mto=bare_a, mbody="hello from B", mtype="chat")
        await a.wait_message(bare_b, "hello from B")
        say("messages delivered both ways")
        step = "A sees B go offline (B dropped its connection)"
        b.transport.abort()
        await a.wait_offline(bare_b)
        say("A saw B go offline")
        step = "B back online"
        b = await start(jb, pb, hb, portb, "B")
        await a.wait_online(bare_b)
        step = "B sees A go offline (A dropped its connection)"
        await b.wait_online(bare_a)
        a.transport.abort()
        await b.wait_offline(bare_a)
        say("B saw A go offline")
        b.disconnect()
        print("OK subscribed, saw each other online, chatted both ways, saw abrupt disconnects both ways", flush=True)
        return 0
    except Exception as ex:  # noqa: BLE001 - report any failure as the step that failed
        print(f"FAIL at step '{step}': {type(ex).__name__} {ex}", flush=True)
        return 1


sys.exit(asyncio.get_event_loop().run_until_complete(main()))
