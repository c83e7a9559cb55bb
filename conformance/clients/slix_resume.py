"""slixmpp (Debian python3-slixmpp) across a cluster node's drain: XEP-0198 resumption on another node.

Usage: slix_resume.py MOVER_JID MOVER_PASS HOST_A PORT_A PID_A CONTACT_JID CONTACT_PASS HOST_B PORT_B
  The mover logs in on node A with slixmpp's stream management (resumable by default), the contact on node B;
  they subscribe to each other's presence. Then node A (process PID_A) gets SIGTERM, which in cluster mode
  drains it. When its connection ends, the mover connects to node B, where slixmpp sends <resume/>; the
  contact writes to it while it is away and again after it resumed. It must get <resumed/> (not <failed/>),
  both messages, and the contact must never see it go offline.
Prints one line starting with OK or FAIL.
"""
import asyncio
import os
import signal
import ssl
import sys

import slixmpp

mover_jid, mover_pass, host_a, port_a, pid_a, contact_jid, contact_pass, host_b, port_b = sys.argv[1:10]
result = {"line": "FAIL no session"}
state = {"resumed": False, "moved": False, "got": [], "unavailable": []}
done = asyncio.Event()
online = {"mover": asyncio.Event(), "contact": asyncio.Event()}


def tls(client):
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE


class Mover(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(mover_jid, mover_pass)
        tls(self)
        self.register_plugin("xep_0198")
        self.register_plugin("xep_0203")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("session_resumed", self.resumed)
        self.add_event_handler("disconnected", self.gone)
        self.add_event_handler("message", self.message)
        self.add_event_handler("presence_available", self.available)

    async def start(self, _):
        await self.get_roster()
        self.send_presence()
        self.send_presence_subscription(pto=contact_jid.split("/")[0])

    def available(self, pres):
        if pres["from"].bare == contact_jid.split("/")[0]:
            online["contact"].set()

    def gone(self, _):
        if state["moved"] or done.is_set():
            return
        state["moved"] = True
        # Node A is draining: the session waits on another node; slixmpp resumes when it connects there.
        self.connect((host_b, int(port_b)), force_starttls=True)

    def resumed(self, _):
        state["resumed"] = True

    def message(self, msg):
        if msg["body"]:
            state["got"].append(msg["body"])
            if msg["body"] == "after the resumption":
                done.set()


class Contact(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(contact_jid, contact_pass)
        tls(self)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("presence_available", self.available)
        self.add_event_handler("presence_unavailable", self.unavailable)

    async def start(self, _):
        await self.get_roster()
        self.send_presence()
        self.send_presence_subscription(pto=mover_jid.split("/")[0])

    def available(self, pres):
        if pres["from"].bare == mover_jid.split("/")[0]:
            online["mover"].set()

    def unavailable(self, pres):
        if pres["from"].bare == mover_jid.split("/")[0]:
            state["unavailable"].append(str(pres["from"]))


async def main():
    contact = Contact()
    contact.connect((host_b, int(port_b)), force_starttls=True)
    mover = Mover()
    mover.connect((host_a, int(port_a)), force_starttls=True)
    try:
        await asyncio.wait_for(asyncio.gather(online["mover"].wait(), online["contact"].wait()), timeout=30)
    except asyncio.TimeoutError:
        result["line"] = "FAIL the two never saw each other online"
        return
    sm = mover.plugin["xep_0198"]
    if not sm.sm_id:
        result["line"] = "FAIL slixmpp's session is not resumable"
        return
    full = str(mover.boundjid)
    os.kill(int(pid_a), signal.SIGTERM)
    for _ in range(200):
        if state["moved"]:
            break
        await asyncio.sleep(0.05)
    contact.send_message(mto=full, mbody="while you were moving", mtype="chat")
    for _ in range(300):
        if state["resumed"]:
            break
        await asyncio.sleep(0.05)
    if not state["resumed"]:
        result["line"] = f"FAIL no <resumed/> on the other node (moved: {state['moved']}, sm_id now {sm.sm_id})"
        return
    contact.send_message(mto=full, mbody="after the resumption", mtype="chat")
    try:
        await asyncio.wait_for(done.wait(), timeout=20)
    except asyncio.TimeoutError:
        result["line"] = f"FAIL messages received: {state['got']}"
        return
    await asyncio.sleep(0.5)
    if "while you were moving" not in state["got"]:
        result["line"] = f"FAIL the message sent while it moved was not delivered: {state['got']}"
    elif state["unavailable"]:
        result["line"] = f"FAIL the contact saw it go offline: {state['unavailable']}"
    else:
        result["line"] = f"OK {full} resumed on the other node as the same resource; got {state['got']}; its contact saw no unavailable presence"
    mover.disconnect()
    contact.disconnect()


asyncio.get_event_loop().run_until_complete(main())
print(result["line"], flush=True)
sys.exit(0 if result["line"].startswith("OK") else 1)
