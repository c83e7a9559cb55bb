"""Multi-user chat (XEP-0045) with slixmpp's xep_0045 plugin.

Usage:
  muc.py local HOST PORT ROOM -pass JID_A JID_B JID_C JID_D
      A creates ROOM and configures it (persistent, named) with the owner form; B and C join and see
      each other; messages reach every occupant; B changes nick; A kicks C (307); A makes D a member,
      invites it directly (XEP-0249); D joins and gets the earlier messages as history.
  muc.py fed JID_A PASS_A HOST_A PORT_A JID_B PASS_B HOST_B PORT_B ROOM_AT_A ROOM_AT_B
      Federation both ways: B (on another server) joins A's room, and A joins B's, and they chat.
  muc.py webpeer HOST PORT JID PASSWORD ROOM PEER_NICK FILE_TEXT
      The slixmpp side of the Converse.js case: creates ROOM (persistent), prints READY, waits for PEER_NICK,
      says "hello from slixmpp", waits for "hello from Converse", then for a message with an https URL (an
      uploaded file), downloads it and checks it holds FILE_TEXT.
Passwords in local mode are the JID's local part followed by -pass.
Prints progress and finally one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp

TIMEOUT = 25


def say(text):
    print(text, flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0030", "xep_0045", "xep_0249", "xep_0203"):
            self.register_plugin(plugin)
        self.started = asyncio.Event()
        self.failed = None
        self.groupchat = []
        self.presences = []
        self.invites = []
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("groupchat_message", lambda m: self.groupchat.append(m))
        self.add_event_handler("groupchat_presence", lambda p: self.presences.append(p))
        self.add_event_handler("groupchat_direct_invite", lambda m: self.invites.append(m))

    def fail(self, why):
        self.failed = why
        self.started.set()

    async def on_start(self, _):
        self.send_presence()
        self.started.set()

    async def until(self, what, predicate, timeout=TIMEOUT):
        for _ in range(timeout * 10):
            if predicate():
                return
            await asyncio.sleep(0.1)
        raise asyncio.TimeoutError(what)

    async def wait_body(self, body, nick=None):
        def seen():
            return any(m["body"] == body and (nick is None or m["from"].resource == nick) for m in self.groupchat)
        await self.until(f"no groupchat message {body!r}", seen)

    async def wait_presence(self, nick, ptype, code=None):
        def seen():
            for p in self.presences:
                if p["from"].resource == nick and (p["type"] == "unavailable") == (ptype == "unavailable"):
                    codes = {int(c) for c in p["muc"]["status_codes"]}
                    if code is None or code in codes:
                        return True
            return False
        await self.until(f"no {ptype} presence from {nick} with {code}", seen)


async def start(jid, password, host, port):
    c = Client(jid, password)
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(c.started.wait(), TIMEOUT)
    if c.failed:
        raise RuntimeError(f"{jid}: {c.failed}")
    return c


async def create_room(owner, room, nick, **fields):
    muc = owner.plugin["xep_0045"]
    pres, _, _, _ = await muc.join_muc_wait(room, nick, timeout=TIMEOUT)
    codes = {int(c) for c in pres["muc"]["status_codes"]}
    form = await muc.get_room_config(room, timeout=TIMEOUT)
    values = {"muc#roomconfig_" + k: v for k, v in fields.items()}
    for var, value in values.items():
        if var in form["fields"]:
            form["fields"][var]["value"] = value
    await muc.set_room_config(room, form, timeout=TIMEOUT)
    return codes


async def local(host, port, room, jids):
    a, b, c, d = [await start(j, slixmpp.JID(j).user + "-pass", host, port) for j in jids]
    step = "A creates and configures the room"
    try:
        codes = await create_room(a, room, "Alice", persistentroom=True, roomname="Conformance room")
        if 201 not in codes:
            raise RuntimeError(f"no status 201 on creation: {codes}")
        say("A created the room (201) and submitted the configuration form")
        step = "B and C join"
        _, _, occupants_b, _ = await b.plugin["xep_0045"].join_muc_wait(room, "Bob", timeout=TIMEOUT)
        _, _, occupants_c, _ = await c.plugin["xep_0045"].join_muc_wait(room, "Carol", timeout=TIMEOUT)
        nicks_c = sorted(p["from"].resource for p in occupants_c if p["from"].resource != "Carol")
        if nicks_c != ["Alice", "Bob"]:
            raise RuntimeError(f"C saw occupants {nicks_c}")
        await a.wait_presence("Carol", "available")
        say(f"B and C joined; C saw {nicks_c}")
        step = "messages reach every occupant"
        a.send_message(mto=room, mbody="hello room", mtype="groupchat")
        for cl in (a, b, c):
            await cl.wait_body("hello room", "Alice")
        c.send_message(mto=room, mbody="hello from Carol", mtype="groupchat")
        for cl in (a, b):
            await cl.wait_body("hello from Carol", "Carol")
        say("groupchat messages reached all three occupants")
        step = "B changes nick"
        b.send_presence(pto=f"{room}/Robert")
        await c.wait_presence("Bob", "unavailable", 303)
        await c.wait_presence("Robert", "available")
        if "Robert" not in c.plugin["xep_0045"].get_roster(room):
            raise RuntimeError(f"C's roster of the room: {c.plugin['xep_0045'].get_roster(room)}")
        say("B is now Robert (303)")
        step = "A kicks C"
        await a.plugin["xep_0045"].set_role(room, "Carol", "none", reason="conformance", timeout=TIMEOUT)
        await c.wait_presence("Carol", "unavailable", 307)
        await b.wait_presence("Carol", "unavailable", 307)
        say("C was kicked (307), B saw it")
        step = "A makes D a member and invites it directly"
        await a.plugin["xep_0045"].set_affiliation(room, "member", jid=slixmpp.JID(jids[3]).bare, timeout=TIMEOUT)
        members = await a.plugin["xep_0045"].get_affiliation_list(room, "member", timeout=TIMEOUT)
        if slixmpp.JID(jids[3]).bare not in [str(m) for m in members]:
            raise RuntimeError(f"member list {members}")
        a.plugin["xep_0249"].send_invitation(slixmpp.JID(jids[3]).bare, room, reason="come in")
        await d.until("no direct invitation", lambda: bool(d.invites))
        invited = d.invites[0]["groupchat_invite"]["jid"]
        step = "D joins and gets the history"
        _, _, _, history = await d.plugin["xep_0045"].join_muc_wait(slixmpp.JID(invited), "Dave", maxstanzas=10, timeout=TIMEOUT)
        bodies = [m["body"] for m in history]
        if "hello room" not in bodies or "hello from Carol" not in bodies:
            raise RuntimeError(f"history {bodies}")
        say(f"D was invited to {invited}, joined and got {len(bodies)} messages of history")
        for cl in (a, b, c, d):
            cl.disconnect()
        print("OK 4 slixmpp occupants: created and configured, joined, chatted, nick change 303, kick 307, member list, direct invitation, history", flush=True)
        return 0
    except Exception as ex:  # noqa: BLE001 - report any failure as the step that failed
        print(f"FAIL at step '{step}': {type(ex).__name__} {ex}", flush=True)
        return 1


async def fed(ja, pa, ha, porta, jb, pb, hb, portb, room_a, room_b):
    step = "login"
    try:
        a = await start(ja, pa, ha, porta)
        b = await start(jb, pb, hb, portb)
        step = f"A creates {room_a}"
        await create_room(a, room_a, "Ours")
        step = f"B ({jb}) joins {room_a}"
        _, _, occupants, _ = await b.plugin["xep_0045"].join_muc_wait(room_a, "Theirs", timeout=TIMEOUT)
        if [p["from"].resource for p in occupants if p["from"].resource != "Theirs"] != ["Ours"]:
            raise RuntimeError(f"B saw {[str(p['from']) for p in occupants]}")
        await a.wait_presence("Theirs", "available")
        step = "chat in A's room"
        b.send_message(mto=room_a, mbody="from the other server", mtype="groupchat")
        await a.wait_body("from the other server", "Theirs")
        a.send_message(mto=room_a, mbody="from the room's server", mtype="groupchat")
        await b.wait_body("from the room's server", "Ours")
        say(f"{jb} joined {room_a} and chatted")
        step = f"B creates {room_b}"
        await create_room(b, room_b, "Host")
        step = f"A ({ja}) joins {room_b}"
        await a.plugin["xep_0045"].join_muc_wait(room_b, "Guest", timeout=TIMEOUT)
        step = "chat in B's room"
        a.send_message(mto=room_b, mbody="guest speaking", mtype="groupchat")
        await b.wait_body("guest speaking", "Guest")
        b.send_message(mto=room_b, mbody="host speaking", mtype="groupchat")
        await a.wait_body("host speaking", "Host")
        say(f"{ja} joined {room_b} and chatted")
        step = "B leaves A's room"
        b.plugin["xep_0045"].leave_muc(room_a, "Theirs")
        await a.wait_presence("Theirs", "unavailable")
        a.disconnect()
        b.disconnect()
        print(f"OK rooms joined across servers both ways ({room_a}, {room_b}), messages in both, leave seen", flush=True)
        return 0
    except Exception as ex:  # noqa: BLE001
        print(f"FAIL at step '{step}': {type(ex).__name__} {ex}", flush=True)
        return 1


async def webpeer(host, port, jid, password, room, peer, text):
    step = "login"
    try:
        c = await start(jid, password, host, port)
        step = "create the room"
        await create_room(c, room, "slixmpp", persistentroom=True, roomname="Web room")
        say("READY")
        step = f"wait for {peer} to join"
        await c.until(f"{peer} did not join", lambda: any(p["from"].resource == peer and p["type"] != "unavailable" for p in c.presences), timeout=120)
        await asyncio.sleep(1)
        c.send_message(mto=room, mbody="hello from slixmpp", mtype="groupchat")
        step = "wait for Converse's message"
        await c.until("no message from Converse", lambda: any(m["from"].resource == peer and m["body"] == "hello from Converse" for m in c.groupchat), timeout=90)
        step = "wait for the uploaded file's URL"
        await c.until("no upload URL", lambda: any(m["from"].resource == peer and m["body"].startswith("https://") for m in c.groupchat), timeout=90)
        url = next(m["body"] for m in c.groupchat if m["from"].resource == peer and m["body"].startswith("https://")).strip()
        step = f"download {url}"
        import urllib.request
        got = urllib.request.urlopen(url, context=ssl._create_unverified_context(), timeout=20).read().decode()
        if got != text:
            raise RuntimeError(f"downloaded {got!r}, expected {text!r}")
        c.disconnect()
        print(f"OK slixmpp saw {peer} join {room}, chatted both ways, and downloaded the file Converse uploaded ({len(got)} bytes) from {url}", flush=True)
        return 0
    except Exception as ex:  # noqa: BLE001
        print(f"FAIL at step '{step}': {type(ex).__name__} {ex}", flush=True)
        return 1


def main():
    mode = sys.argv[1]
    if mode == "webpeer":
        return asyncio.get_event_loop().run_until_complete(webpeer(*sys.argv[2:9]))
    if mode == "local":
        host, port, room, _, *jids = sys.argv[2:]
        return asyncio.get_event_loop().run_until_complete(local(host, port, room, jids))
    return asyncio.get_event_loop().run_until_complete(fed(*sys.argv[2:12]))


sys.exit(main())
