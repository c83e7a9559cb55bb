"""slixmpp (Debian python3-slixmpp) against our server.

Usage: slix.py MODE HOST PORT JID PASSWORD [PEER_JID]
  login      STARTTLS with slixmpp's default settings, bind, roster get, presence; the first SASL attempt must
             succeed, with a -PLUS mechanism and channel binding (slixmpp 1.8 asks for tls-unique)
  login-tls  the same over direct TLS (XEP-0368)
  pinned     STARTTLS with the mechanism pinned to SCRAM-SHA-256: slixmpp then sends the gs2 flag "y" (it could
             bind, but does not see -PLUS for that mechanism), which the server must refuse (RFC 5802 §6)
  send       log in and send one chat message to PEER_JID
  receive    log in, send presence, wait for one chat message and print its body (and its XEP-0203 delay)
  echo       log in, send presence, print READY, answer the first chat message with "pong: " and its body
  time       log in and ask the server for its time with slixmpp's XEP-0202 plugin; also check disco#info
  im         log in, approve PEER_JID's subscription and subscribe back (slixmpp's defaults), wait until
             PEER_JID is online and has sent a message, answer it, then drop the TCP connection abruptly
Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp

mode, host, port, jid, password = sys.argv[1:6]
peer = sys.argv[6] if len(sys.argv) > 6 else None
result = {"line": "FAIL no session"}


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        # slixmpp's defaults: it picks the strongest mechanism offered (SCRAM-SHA-512-PLUS over TLS).
        super().__init__(jid, password, **({"sasl_mech": "SCRAM-SHA-256"} if mode == "pinned" else {}))
        self.auth_failures = 0
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", self.failed)
        self.add_event_handler("message", self.message)
        self.register_plugin("xep_0203")
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0202")
        self.peer_online = False
        if mode == "im":
            self.add_event_handler("presence_available", self.available)

    def failed(self, _):
        # slixmpp would go on with its next mechanism; this gives up at the first failure, as many bots do.
        self.auth_failures += 1
        result["line"] = "FAIL authentication"
        self.disconnect()

    def first_attempt(self):
        """Whether the first SASL attempt succeeded with channel binding; a description either way."""
        mech = self["feature_mechanisms"].mech
        gs2 = getattr(mech, "gs2_header", b"").decode()
        what = f"{mech.name}, gs2 header {gs2!r}, {self.auth_failures} failed attempts before"
        return self.auth_failures == 0 and mech.name.endswith("-PLUS") and gs2.startswith("p="), what

    async def start(self, _):
        roster = await self.get_roster()
        if roster["type"] != "result":
            result["line"] = "FAIL roster get"
            self.disconnect()
            return
        self.send_presence()
        if mode in ("login", "login-tls"):
            ok, what = self.first_attempt()
            result["line"] = f"{'OK' if ok else 'FAIL'} bound {self.boundjid.full}, roster received; authenticated with {what}"
            self.disconnect()
        elif mode == "send":
            self.send_message(mto=peer, mbody="hello from slixmpp", mtype="chat")
            result["line"] = "OK sent"
            await asyncio.sleep(0.5)
            self.disconnect()
        elif mode in ("receive", "im", "echo"):
            print("READY", flush=True)
        elif mode == "time":
            await self.entity_time()

    async def entity_time(self):
        server = self.boundjid.domain
        try:
            info = await self["xep_0030"].get_info(jid=server, timeout=10)
            if "urn:xmpp:time" not in info["disco_info"]["features"]:
                result["line"] = "FAIL urn:xmpp:time not in disco#info"
                return
            # COMPAT: slixmpp 1.8's XEP-0202 plugin appends a 'Z' to the <utc/> value before parsing it, so it
            # fails on the form the XEP prescribes ("2006-12-19T17:58:35Z", as Prosody also sends); the
            # answer is read from the XML here instead.
            import datetime
            import xml.etree.ElementTree as ET
            iq = self.Iq()
            iq["type"] = "get"
            iq["to"] = server
            iq.append(ET.Element("{urn:xmpp:time}time"))
            reply = await iq.send(timeout=10)
            utc = reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
            tzo = reply.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo")
            when = datetime.datetime.fromisoformat(utc)
            skew = abs((when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
            ok = utc.endswith("Z") and len(tzo) == 6 and tzo[0] in "+-" and skew < 30
            result["line"] = f"{'OK' if ok else 'FAIL'} server time {utc} tzo {tzo}, {skew:.1f} s from ours"
        except Exception as e:  # noqa: BLE001 - any failure is the test's result
            result["line"] = f"FAIL {type(e).__name__}: {e}"
        finally:
            self.disconnect()

    def available(self, presence):
        if presence["from"].bare == peer:
            self.peer_online = True
            print(f"peer online as {presence['from']}", flush=True)

    def message(self, msg):
        if mode == "echo" and msg["type"] in ("chat", "normal") and msg["body"]:
            self.send_message(mto=msg["from"], mbody="pong: " + msg["body"], mtype="chat")
            result["line"] = f"OK answered {msg['from']}: {msg['body']}"
            asyncio.get_event_loop().call_later(0.5, self.disconnect)
        elif mode == "receive" and msg["type"] in ("chat", "normal") and msg["body"]:
            delay = msg["delay"]["stamp"] if msg.xml.find("{urn:xmpp:delay}delay") is not None else None
            result["line"] = f"OK received from {msg['from']}: {msg['body']}" + (f" (delayed, stamped {delay})" if delay else "")
            self.disconnect()
        elif mode == "im" and msg["from"].bare == peer and msg["body"]:
            print(f"received from peer: {msg['body']}", flush=True)
            asyncio.ensure_future(self.answer())

    async def answer(self):
        # The peer may write before its approval of our own request (and its presence) has arrived.
        for _ in range(100):
            sub = self.client_roster[peer]["subscription"]
            if self.peer_online and sub == "both":
                break
            await asyncio.sleep(0.1)
        self.send_message(mto=peer, mbody="hello from slixmpp", mtype="chat")
        result["line"] = f"OK peer online={self.peer_online}, roster subscription={sub}, answered, dropping the connection"
        if not self.peer_online or sub != "both":
            result["line"] = f"FAIL peer online={self.peer_online}, roster subscription={sub}"
        # An abrupt end: no </stream:stream>, no unavailable presence; the server must notice.
        await asyncio.sleep(0.5)
        self.transport.abort()


async def main():
    client = Client()
    client.connect((host, int(port)), use_ssl=(mode == "login-tls"), force_starttls=(mode != "login-tls"))
    try:
        # COMPAT: Debian's slixmpp 1.8 process(timeout=...) misbehaves on Python 3.11; wait on disconnected.
        await asyncio.wait_for(client.disconnected, timeout=30)
    except asyncio.TimeoutError:
        result["line"] = result["line"] if result["line"].startswith("OK") else "FAIL timeout"


asyncio.get_event_loop().run_until_complete(main())
print(result["line"], flush=True)
sys.exit(0 if result["line"].startswith("OK") else 1)
