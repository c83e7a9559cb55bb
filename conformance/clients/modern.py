"""Modern-client XEPs with slixmpp's own plugins (Debian python3-slixmpp), several clients in one process.

Usage: modern.py SCENARIO HOST PORT PASSWORD_SUFFIX USER...
  Each USER is "name@domain/resource"; the password is the local part followed by PASSWORD_SUFFIX.
  profile   USER1 publishes a vCard (XEP-0054) and bookmarks in private storage (XEP-0048 over XEP-0049);
            USER2 reads USER1's vCard; USER1 reads its bookmarks back.
  carbons   USER1 and USER2 are two resources of one account, both enabling XEP-0280 with slixmpp's plugin;
            USER3 writes to USER1, USER2 answers: USER2 sees the message as a received carbon, USER1 the
            answer as a sent carbon.
  pep       USER1 and USER2 subscribe to each other (slixmpp's defaults approve); USER1 publishes an avatar
            with slixmpp's XEP-0084 plugin (data, then metadata); USER2, whose XEP-0115 caps carry the
            metadata node's +notify, gets the notification and fetches the data by its id, finds the same
            image in USER1's vCard and its hash in USER1's presence (XEP-0398, XEP-0153).
  mam       USER1 and USER2 exchange five messages; a second client of USER1 reads the conversation back
            with slixmpp's XEP-0313 plugin (with USER2, since just before), two per page (XEP-0059), in order.
  resume    USER1 enables XEP-0198 with slixmpp's plugin; its TCP connection is cut without a closing tag,
            USER2 writes meanwhile; slixmpp reconnects and resumes: every message arrives exactly once and
            USER2 never sees USER1 go offline.
  csi       USER1 tells the server it is inactive with slixmpp's XEP-0352 plugin; USER2 changes its presence
            three times, then writes: USER1 gets one presence (the latest), then the message.
  extdisco  USER1 asks for external services (XEP-0215) and gets a TURN server with credentials; coturn's own
            client (turnutils_uclient) allocates a relay on that server with them, and fails with a
            tampered password.
  register  a new account named after USER1 (with a random suffix) is created in-band with slixmpp's XEP-0077
            plugin, logs in, changes its password, and removes itself.
  blocking  USER1 blocks USER2 with slixmpp's XEP-0191 plugin: USER2's message bounces with
            service-unavailable, USER1's own message to USER2 comes back not-acceptable with <blocked/>;
            after unblocking, USER2's message arrives.
  admin     USER1 is an admin, USER2 is not: USER2 sees no commands; USER1 runs XEP-0133 commands with
            slixmpp's XEP-0050 plugin (execute, then complete with the filled-in form): add-user creates an
            account that logs in, get-online-users-list shows it, announce reaches it as a headline,
            end-user-session disconnects it, delete-user removes it (its login then fails).
Prints one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp
import logging, os
if os.environ.get("SLIXDEBUG"): logging.basicConfig(level=logging.DEBUG)

scenario, host, port, suffix = sys.argv[1:5]
users = sys.argv[5:]


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, plugins):
        super().__init__(jid, jid.split("@")[0] + suffix)
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


async def befriend(a, b):
    """B subscribes to A; slixmpp's defaults approve and subscribe back. True once both rosters say both."""
    b.send_presence_subscription(pto=a.boundjid.bare)
    for _ in range(100):
        if a.client_roster[b.boundjid.bare]["subscription"] == "both" and b.client_roster[a.boundjid.bare]["subscription"] == "both":
            await asyncio.sleep(0.5)
            return True
        await asyncio.sleep(0.1)
    return False


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


async def carbons():
    one = await connect(users[0], ["xep_0280"])
    two = await connect(users[1], ["xep_0280"])
    peer = await connect(users[2], [])
    try:
        await one["xep_0280"].enable(timeout=10)
        await two["xep_0280"].enable(timeout=10)
        info = await one["xep_0030"].get_info(jid=one.boundjid.domain, timeout=10)
        if "urn:xmpp:carbons:2" not in info["disco_info"]["features"]:
            return "FAIL urn:xmpp:carbons:2 not in the server's disco#info"
        got = {}
        done = asyncio.get_event_loop().create_future()

        def seen(kind):
            def handler(msg):
                inner = msg["carbon_received" if kind == "received" else "carbon_sent"]
                if msg["from"] != two.boundjid.bare:
                    got[kind] = f"spoofed carbon from {msg['from']}"
                else:
                    got[kind] = f"{inner['from']}->{inner['to']}: {inner['body']}"
                if len(got) == 2 and not done.done():
                    done.set_result(True)
            return handler

        two.add_event_handler("carbon_received", seen("received"))
        one.add_event_handler("carbon_sent", seen("sent"))
        await asyncio.sleep(0.3)
        peer.send_message(mto=one.boundjid.full, mbody="to one", mtype="chat")
        await asyncio.sleep(0.3)
        two.send_message(mto=peer.boundjid.bare, mbody="from two", mtype="chat")
        await asyncio.wait_for(done, timeout=10)
        ok = got["received"] == f"{peer.boundjid.full}->{one.boundjid.full}: to one" and got["sent"] == f"{two.boundjid.full}->{peer.boundjid.bare}: from two"
        return f"{'OK' if ok else 'FAIL'} received carbon {got['received']!r}; sent carbon {got['sent']!r}"
    finally:
        for c in (one, two, peer):
            c.disconnect()


async def pep():
    plugins = ["xep_0115", "xep_0163", "xep_0060", "xep_0084", "xep_0054", "xep_0153"]
    alice = await connect(users[0], plugins)
    bob = await connect(users[1], plugins)
    try:
        hashes = {}
        bob.add_event_handler("vcard_avatar_update", lambda p: hashes.__setitem__(p["from"].bare, p["vcard_temp_update"]["photo"]))
        got = asyncio.get_event_loop().create_future()
        bob.add_event_handler("avatar_metadata_publish", lambda m: got.done() or got.set_result(m))
        if not await befriend(alice, bob):
            return "FAIL the two accounts did not become mutual contacts"

        import hashlib
        data = b"\x89PNG\r\n\x1a\n conformance avatar"
        avatar_id = hashlib.sha1(data).hexdigest()
        await alice["xep_0084"].publish_avatar(data, timeout=10)
        await alice["xep_0084"].publish_avatar_metadata({"id": avatar_id, "type": "image/png", "bytes": len(data)}, timeout=10)
        event = await asyncio.wait_for(got, timeout=10)
        info = event["pubsub_event"]["items"]["item"]["avatar_metadata"]["info"]
        fetched = await bob["xep_0084"].retrieve_avatar(alice.boundjid.bare, info["id"], timeout=10)
        value = fetched["pubsub"]["items"]["item"]["avatar_data"]["value"]

        # XEP-0398: the same avatar in Alice's vCard, and its hash in her presence (XEP-0153), for clients
        # that know only those.
        for _ in range(50):
            if hashes.get(alice.boundjid.bare) == avatar_id:
                break
            await asyncio.sleep(0.1)
        vcard = await bob["xep_0054"].get_vcard(alice.boundjid.bare, local=False, timeout=10)
        photo = vcard["vcard_temp"]["PHOTO"]["BINVAL"]
        ok = info["id"] == avatar_id and value == data and event["from"] == alice.boundjid.bare and photo == data and hashes.get(alice.boundjid.bare) == avatar_id
        return (f"{'OK' if ok else 'FAIL'} notification from {event['from']} for avatar {info['id'][:12]}…, data fetched: {value == data}; "
                f"vCard photo equal: {photo == data}; presence hash: {hashes.get(alice.boundjid.bare, 'none')[:12]}…")
    finally:
        alice.disconnect()
        bob.disconnect()


async def mam():
    alice = await connect(users[0], ["xep_0313", "xep_0059"])
    bob = await connect(users[1], [])
    try:
        inbox = asyncio.Queue()
        # Earlier cases wrote to these accounts too: this run's messages carry a tag, and only they count.
        import uuid
        tag = uuid.uuid4().hex[:8]
        alice.add_event_handler("message", lambda m: tag in (m["body"] or "") and inbox.put_nowait(m))
        bob.add_event_handler("message", lambda m: tag in (m["body"] or "") and inbox.put_nowait(m))
        import datetime
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
        said = []
        for i in range(5):
            sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
            text = f"mam {i} from {sender.boundjid.user} {tag}"
            sender.send_message(mto=receiver.boundjid.bare, mbody=text, mtype="chat")
            said.append(text)
            await asyncio.wait_for(inbox.get(), timeout=10)
        alice.disconnect()
        await asyncio.sleep(0.3)

        reader = await connect(users[0].split("/")[0] + "/history", ["xep_0313", "xep_0059"])
        try:
            read = []
            async for m in reader["xep_0313"].iterate(jid=reader.boundjid.bare, start=since, with_jid=bob.boundjid.bare, rsm={"max": 2}):
                body = m["mam_result"]["forwarded"]["stanza"]["body"]
                if tag in body:
                    read.append(body)
            ok = read == said
            return f"{'OK' if ok else 'FAIL'} read back {len(read)} of {len(said)} messages in pages of 2, in order: {ok}"
        finally:
            reader.disconnect()
    finally:
        alice.disconnect()
        bob.disconnect()


async def resume():
    alice = await connect(users[0], ["xep_0198"])
    bob = await connect(users[1], [])
    try:
        bodies = []
        arrived = asyncio.Queue()
        alice.add_event_handler("message", lambda m: m["body"] and (bodies.append(m["body"]), arrived.put_nowait(m["body"])))
        offline = []
        bob.add_event_handler("presence_unavailable", lambda p: p["from"].bare == alice.boundjid.bare and offline.append(str(p["from"])))
        for _ in range(50):
            if alice["xep_0198"].sm_id:
                break
            await asyncio.sleep(0.1)
        else:
            return "FAIL stream management was not enabled with resumption"
        alice.send_presence_subscription(pto=bob.boundjid.bare)
        await asyncio.sleep(0.5)

        bob.send_message(mto=alice.boundjid.full, mbody="before", mtype="chat")
        await asyncio.wait_for(arrived.get(), timeout=10)
        await asyncio.sleep(0.3)
        # The network goes away: no closing tag, no unavailable presence from the client.
        alice.transport.abort()
        await asyncio.sleep(0.5)
        bob.send_message(mto=alice.boundjid.full, mbody="during 1", mtype="chat")
        bob.send_message(mto=alice.boundjid.bare, mbody="during 2", mtype="chat")
        await asyncio.sleep(0.5)

        # COMPAT: slixmpp 1.8 empties its own unacknowledged queue when it sends <resume/>, so the server's
        # correct 'h' in <resumed/> makes it log "Inconsistent sequence numbers" (harmless here).
        resumed = asyncio.get_event_loop().create_future()
        alice.add_event_handler("session_resumed", lambda _: resumed.done() or resumed.set_result(True))
        alice.connect((host, int(port)), force_starttls=True)
        await asyncio.wait_for(resumed, timeout=15)
        while bodies.count("during 2") == 0:
            await asyncio.wait_for(arrived.get(), timeout=10)
        await asyncio.sleep(0.5)
        ok = bodies == ["before", "during 1", "during 2"] and not offline
        return f"{'OK' if ok else 'FAIL'} resumed as {alice.boundjid.full}; messages {bodies}; contact saw it offline: {offline or 'never'}"
    finally:
        alice.disconnect()
        bob.disconnect()


async def csi():
    alice = await connect(users[0], ["xep_0352"])
    bob = await connect(users[1], [])
    try:
        import uuid
        tag = uuid.uuid4().hex[:8]
        if not await befriend(alice, bob):
            return "FAIL the two accounts did not become mutual contacts"
        seen = []
        done = asyncio.get_event_loop().create_future()
        alice.add_event_handler("presence", lambda p: p["from"] == bob.boundjid and p["status"].startswith(tag) and seen.append(p["status"][len(tag) + 1:]))

        def on_message(m):
            if tag in (m["body"] or ""):
                seen.append("message")
                done.done() or done.set_result(True)
        alice.add_event_handler("message", on_message)
        if not alice["xep_0352"].enabled:
            return "FAIL the server did not offer urn:xmpp:csi:0"
        alice["xep_0352"].send_inactive()
        await asyncio.sleep(0.3)
        for status in ("one", "two", "three"):
            bob.send_presence(pstatus=f"{tag} {status}")
        await asyncio.sleep(0.5)
        bob.send_message(mto=alice.boundjid.bare, mbody=f"important {tag}", mtype="chat")
        await asyncio.wait_for(done, timeout=10)
        alice["xep_0352"].send_active()
        ok = seen == ["three", "message"]
        return f"{'OK' if ok else 'FAIL'} while inactive the client got {seen}"
    finally:
        alice.disconnect()
        bob.disconnect()


async def extdisco():
    import subprocess
    import xml.etree.ElementTree as ET
    alice = await connect(users[0], [])
    try:
        iq = alice.Iq()
        iq["type"] = "get"
        iq["to"] = alice.boundjid.domain
        iq.append(ET.Element("{urn:xmpp:extdisco:2}services"))
        reply = await iq.send(timeout=10)
        turn = [e for e in reply.xml.iter("{urn:xmpp:extdisco:2}service") if e.get("type") == "turn" and e.get("transport") == "udp"]
        if not turn:
            return f"FAIL no TURN service offered: {reply}"
        t = turn[0]

        def allocate(password):
            run = subprocess.run(["turnutils_uclient", "-u", t.get("username"), "-w", password, "-p", t.get("port"), "-n", "1", "-m", "1",
                                  "-e", t.get("host"), t.get("host")], capture_output=True, text=True, timeout=30)
            out = run.stdout + run.stderr
            return run.returncode == 0 and "Cannot complete Allocation" not in out and "tot_send_msgs=2" in out

        good = allocate(t.get("password"))
        bad = allocate(t.get("password")[::-1])
        ok = good and not bad
        return f"{'OK' if ok else 'FAIL'} TURN {t.get('host')}:{t.get('port')} user {t.get('username')} (expires {t.get('expires')}): relay allocated with the given password: {good}, with a tampered one: {bad}"
    finally:
        alice.disconnect()


async def register():
    import uuid
    name = users[0].split("@")[0] + "-" + uuid.uuid4().hex[:6]
    domain = users[0].split("@")[1].split("/")[0]
    jid = f"{name}@{domain}/ibr"
    client = slixmpp.ClientXMPP(jid, "first-pass")
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE
    for p in ("xep_0030", "xep_0004", "xep_0066", "xep_0077"):
        client.register_plugin(p)
    # COMPAT: slixmpp 1.8 holds back every stanza before the session starts except bind and session iqs, so
    # its own XEP-0077 plugin cannot send the registration iq; this private switch lets stanzas through.
    client._always_send_everything = True
    registered = asyncio.get_event_loop().create_future()
    started = asyncio.get_event_loop().create_future()

    async def on_register(_form):
        iq = client.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = name
        iq["register"]["password"] = "first-pass"
        try:
            await iq.send(timeout=10)
            registered.done() or registered.set_result("created")
        except Exception as e:  # noqa: BLE001
            registered.done() or registered.set_result(f"refused: {e}")

    client.add_event_handler("register", on_register)
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
    client.connect((host, int(port)), force_starttls=True)
    try:
        outcome = await asyncio.wait_for(registered, timeout=15)
        if outcome != "created":
            return f"FAIL registration {outcome}"
        await asyncio.wait_for(started, timeout=15)
        await client["xep_0077"].change_password("second-pass", timeout=10)
        await client["xep_0077"].cancel_registration(timeout=10)
        return f"OK registered {name}@{domain}, logged in as {client.boundjid.full}, changed the password and removed the account"
    finally:
        client.disconnect()


async def blocking():
    alice = await connect(users[0], ["xep_0191"])
    bob = await connect(users[1], [])
    try:
        # Only this scenario's messages count: earlier cases may have left offline messages for these accounts.
        import uuid
        tag = uuid.uuid4().hex[:8]
        inbox = asyncio.Queue()
        mine = lambda m: tag in (m["body"] or "") or m["id"].startswith(tag)
        alice.add_event_handler("message", lambda m: mine(m) and inbox.put_nowait(("alice", m)))
        bob.add_event_handler("message", lambda m: mine(m) and inbox.put_nowait(("bob", m)))
        await alice["xep_0191"].block([bob.boundjid.bare], timeout=10)
        listed = [str(j) for j in (await alice["xep_0191"].get_blocked(timeout=10))["blocklist"]["items"]]
        msg = bob.make_message(mto=alice.boundjid.bare, mbody=f"can you hear me {tag}", mtype="chat")
        msg["id"] = tag + "-1"
        msg.send()
        who, m = await asyncio.wait_for(inbox.get(), timeout=10)
        bounce = m["error"]["condition"] if who == "bob" and m["type"] == "error" else f"{who} got {m['type']}"
        msg = alice.make_message(mto=bob.boundjid.bare, mbody=f"blocked {tag}", mtype="chat")
        msg["id"] = tag + "-2"
        msg.send()
        who, m = await asyncio.wait_for(inbox.get(), timeout=10)
        refused = m["error"]["condition"] if who == "alice" and m["type"] == "error" else f"{who} got {m['type']}"
        app = m.xml.find("{jabber:client}error/{urn:xmpp:blocking:errors}blocked") is not None
        await alice["xep_0191"].unblock([bob.boundjid.bare], timeout=10)
        bob.send_message(mto=alice.boundjid.bare, mbody=f"now? {tag}", mtype="chat")
        who, m = await asyncio.wait_for(inbox.get(), timeout=10)
        after = f"{who} got {m['body'].replace(' ' + tag, '')!r}"
        ok = listed == [bob.boundjid.bare] and bounce == "service-unavailable" and refused == "not-acceptable" and app and after == "alice got 'now?'"
        return f"{'OK' if ok else 'FAIL'} list {listed}; blocked sender got {bounce}; own message {refused} (blocked element: {app}); after unblock: {after}"
    finally:
        alice.disconnect()
        bob.disconnect()


async def admin():
    import uuid
    boss = await connect(users[0], ["xep_0004", "xep_0050", "xep_0133"])
    other = await connect(users[1], ["xep_0050"])
    domain = boss.boundjid.domain
    newbie = None

    async def run(name, values):
        done = asyncio.get_event_loop().create_future()

        def on_next(iq, session):
            command = iq["command"]
            if command["status"] == "executing":
                form = boss["xep_0004"].make_form(ftype="submit")
                form.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/admin", ftype="hidden")
                for var, value in values.items():
                    form.add_field(var=var, value=value)
                session["payload"] = form
                boss["xep_0050"].complete_command(session)
            else:
                done.done() or done.set_result(command)

        def on_error(iq, _session):
            done.done() or done.set_exception(RuntimeError(f"{name}: {iq['error']['condition']}"))

        getattr(boss["xep_0133"], name.replace("-", "_"))(jid=domain, session={"next": on_next, "error": on_error})
        return await asyncio.wait_for(done, timeout=10)

    try:
        theirs = await other["xep_0050"].get_commands(domain, timeout=10)
        # Administration commands only: every account may run XEP-0401's urn:xmpp:invite#invite (invites module).
        seen_by_other = len([i for i in theirs["disco_items"]["items"] if i[1] != "urn:xmpp:invite#invite"])
        mine = [i[1] for i in (await boss["xep_0133"].get_commands(timeout=10))["disco_items"]["items"]]
        name = "adm" + uuid.uuid4().hex[:6]
        added = await run("add-user", {"accountjid": f"{name}@{domain}", "password": name + suffix, "password-verify": name + suffix})
        newbie = await connect(f"{name}@{domain}/new", [])
        headlines = asyncio.Queue()
        newbie.add_event_handler("message", lambda m: m["type"] == "headline" and headlines.put_nowait(m["body"]))
        gone = asyncio.get_event_loop().create_future()
        newbie.add_event_handler("disconnected", lambda _: gone.done() or gone.set_result(True))
        await asyncio.sleep(0.3)
        online = (await run("get-online-users-list", {"max_items": "100"}))["form"]["values"]["onlineuserjids"]
        await run("announce", {"subject": "Note", "announcement": "conformance announcement"})
        heard = await asyncio.wait_for(headlines.get(), timeout=10)
        newbie.auto_reconnect = False
        await run("end-user-session", {"accountjids": f"{name}@{domain}"})
        kicked = await asyncio.wait_for(gone, timeout=10)
        deleted = await run("delete-user", {"accountjids": f"{name}@{domain}"})
        try:
            await connect(f"{name}@{domain}/again", [])
            relogin = "logged in"
        except Exception:  # noqa: BLE001
            relogin = "refused"
        notes = [c["notes"][0][1] if c["notes"] else "" for c in (added, deleted)]
        ok = (seen_by_other == 0 and "http://jabber.org/protocol/admin#add-user" in mine and f"{name}@{domain}" in online
              and heard == "conformance announcement" and kicked and relogin == "refused")
        return f"{'OK' if ok else 'FAIL'} non-admin sees {seen_by_other} commands besides invite, admin {len(mine)}; {notes}; online {online}; headline {heard!r}; kicked {kicked}; login after delete {relogin}"
    finally:
        boss.disconnect()
        other.disconnect()
        if newbie is not None:
            newbie.disconnect()


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
