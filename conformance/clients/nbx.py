"""nbxmpp (Debian python3-nbxmpp, the library Gajim is built on) logging in to our server.

Usage: nbx.py HOST PORT DOMAIN USER PASSWORD starttls|directtls [time|contact|blocking|bookmarks|mam|legacy-bookmarks|adhoc|no-version]
  time: after login, ask the server for its time (XEP-0202, as Gajim's contact info does)
  contact: read the server's contact addresses (XEP-0157) from disco#info, as Gajim's server info does
  blocking: with nbxmpp's Blocking module (Gajim's "Block" menu, XEP-0191): read the list, block an
            address, read it again, unblock it, read it once more
  legacy-bookmarks: read the native bookmarks (XEP-0402) and find tea@conference.DOMAIN, which another
       client stored the old way (XEP-0048 in private XML): the server converts (XEP-0411)
  mam: send two messages to bob@DOMAIN, then read them back from the archive with nbxmpp's MAM module and
       a message handler like Gajim's (XEP-0313), checking that results come from the own archive
  bookmarks: store two bookmarks with nbxmpp's NativeBookmarks (XEP-0402 on PEP, with Gajim's
            publish-options) and read them back
  no-version: the server's XEP-0092 version query must fail with service-unavailable (the module was
         reloaded away)
  adhoc: as an admin, the way Gajim's "Execute Command" window does it with nbxmpp's AdHoc module
         (XEP-0050): list the server's commands, run XEP-0133's get-online-users-list, fill in its form
         (max_items) and submit it with the default action; the result lists the admin's own account
  muc: Gajim's way into a new group chat (XEP-0045): disco#info of the room (item-not-found: it does not
       exist), the join presence, the owner's configuration form from request_config made persistent and
       submitted with set_config, the room's features read again, a message sent and seen back from the
       own nick with an occupant id and the room's stanza id, the subject set, and the owner list read
Prints one line starting with OK or FAIL.
"""
import sys

from gi.repository import GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType

host, port, domain, user, password, kind = sys.argv[1:7]
action = sys.argv[7] if len(sys.argv) > 7 else "login"
loop = GLib.MainLoop()
result = {"line": "FAIL no connection"}

client = Client(log_context="conformance")
client.set_domain(domain)
client.set_username(user)
client.set_password(password)
client.set_resource("gajim")
ctype = ConnectionType.DIRECT_TLS if kind == "directtls" else ConnectionType.START_TLS
client.set_custom_host(f"{host}:{port}", ConnectionProtocol.TCP, ctype)
# The server's certificate is self-signed (generated on first start).
client.set_ignore_tls_errors(True)


def time_line(parsed):
    return f"OK server time as nbxmpp parsed it: {parsed}"


def contact_line(disco):
    found = {}
    for form in disco.dataforms:
        if form["FORM_TYPE"].value == "http://jabber.org/network/serverinfo":
            for field in form.iter_fields():
                if field.var != "FORM_TYPE":
                    found[field.var] = list(field.values)
    ok = bool(found.get("admin-addresses")) and bool(found.get("abuse-addresses"))
    return f"{'OK' if ok else 'FAIL'} contact addresses: {found}"


def run_task(c, start, describe):
    """Starts an nbxmpp task; its result, described, is the line printed. Then disconnects."""
    def done(task):
        try:
            result["line"] = describe(task.finish())
        except Exception as e:  # noqa: BLE001 - any failure is the result
            result["line"] = f"FAIL {type(e).__name__}: {e}"
        c.disconnect()

    # nbxmpp holds done-callbacks weakly (Gajim's are methods of live objects): keep this one alive.
    result["callback"] = done
    result["task"] = start(callback=done)


def blocking_flow(c):
    """Each step starts the next from its callback; nbxmpp keeps callbacks weakly, so they live in result."""
    from nbxmpp.protocol import JID
    module = c.get_module("Blocking")
    spammer = JID.from_string("spammer@spam.example")
    seen = []

    def fail(e):
        result["line"] = f"FAIL {type(e).__name__}: {e}"
        c.disconnect()

    def listed(then):
        def callback(task):
            try:
                seen.append(sorted(str(j) for j in task.finish()))
            except Exception as e:  # noqa: BLE001
                return fail(e)
            then()
        result.setdefault("callbacks", []).append(callback)
        return callback

    def changed(then):
        def callback(task):
            try:
                task.finish()
            except Exception as e:  # noqa: BLE001
                return fail(e)
            then()
        result.setdefault("callbacks", []).append(callback)
        return callback

    def finish():
        ok = seen == [[], ["spammer@spam.example"], []]
        result["line"] = f"{'OK' if ok else 'FAIL'} block lists read by nbxmpp: {seen}"
        c.disconnect()

    def read_last():
        result["t4"] = module.request_blocking_list(callback=listed(finish))

    def unblock():
        result["t3"] = module.unblock([spammer], callback=changed(read_last))

    def read_blocked():
        result["t2"] = module.request_blocking_list(callback=listed(unblock))

    def block():
        result["t1"] = module.block([spammer], callback=changed(read_blocked))

    result["t0"] = module.request_blocking_list(callback=listed(block))


def bookmarks_flow(c):
    from nbxmpp.protocol import JID
    from nbxmpp.structs import BookmarkData
    module = c.get_module("NativeBookmarks")
    wanted = [BookmarkData(jid=JID.from_string("tea@conference.localhost"), name="Tea", nick="carol", autojoin=True),
              BookmarkData(jid=JID.from_string("chess@conference.localhost"), name="Chess", nick="carol")]

    def describe(bookmarks):
        got = sorted((str(b.jid), b.name, b.nick, b.autojoin) for b in bookmarks)
        expected = sorted((str(b.jid), b.name, b.nick, b.autojoin) for b in wanted)
        return f"{'OK' if got == expected else 'FAIL'} native bookmarks read back by nbxmpp: {got}"

    def stored(task):
        try:
            task.finish()
        except Exception as e:  # noqa: BLE001
            result["line"] = f"FAIL {type(e).__name__}: {e}"
            c.disconnect()
            return
        # The publishes went out before this request on the same stream, and the server handles a stream in order.
        run_task(c, lambda callback: module.request_bookmarks(callback=callback), describe)

    result["stored"] = stored
    result["store"] = module.store_bookmarks(wanted, callback=stored)


def mam_flow(c):
    import uuid
    from nbxmpp.protocol import JID, Message
    from nbxmpp.structs import StanzaHandler
    own = JID.from_string(f"{user}@{domain}")
    peer = JID.from_string(f"bob@{domain}")
    tag = uuid.uuid4().hex[:8]
    texts = [f"nbxmpp mam {tag} {i}" for i in range(2)]
    seen = []

    def on_message(_client, _stanza, properties):
        if properties.is_mam_message and properties.mam.archive == own.bare and properties.body and tag in properties.body:
            seen.append(properties.body)

    c.register_handler(StanzaHandler(name="message", callback=on_message, priority=51))
    for t in texts:
        c.send_stanza(Message(to=peer, body=t, typ="chat"))

    def describe(data):
        ok = seen == texts and data.complete
        return f"{'OK' if ok else 'FAIL'} archive {data.jid} returned {seen}, complete={data.complete}"

    result["handler"] = on_message
    # The own archive since a point in time, as a first history sync asks for it. (COMPAT: Debian's nbxmpp
    # raises TypeError building the jid-single field of its own with_ filter, so that filter is not used.)
    import datetime
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    run_task(c, lambda callback: c.get_module("MAM").make_query(own.bare, queryid=tag, start=since, max_=50, callback=callback), describe)


def adhoc_flow(c):
    from nbxmpp.modules.dataforms import extend_form
    module = c.get_module("AdHoc")
    wanted = "http://jabber.org/protocol/admin#get-online-users-list"
    own = f"{user}@{domain}"

    def fail(e):
        result["line"] = f"FAIL {type(e).__name__}: {e}"
        c.disconnect()

    def completed(task):
        try:
            cmd = task.finish()
            form = extend_form(node=cmd.data)
            online = list(form["onlineuserjids"].values)
            ok = cmd.is_completed and own in online
            result["line"] = f"{'OK' if ok else 'FAIL'} {result['count']} commands listed; {cmd.node} {cmd.status.value}: online {online}"
        except Exception as e:  # noqa: BLE001
            result["line"] = f"FAIL {type(e).__name__}: {e}"
        c.disconnect()

    def executing(task):
        try:
            cmd = task.finish()
            form = extend_form(node=cmd.data)
            form["max_items"].value = "25"
            form.type_ = "submit"
            result["t2"] = module.execute_command(cmd, action=cmd.default, dataform=form, callback=completed)
        except Exception as e:  # noqa: BLE001
            fail(e)

    def listed(task):
        try:
            commands = task.finish()
            result["count"] = len(commands)
            cmd = next(x for x in commands if x.node == wanted)
            result["t1"] = module.execute_command(cmd, callback=executing)
        except Exception as e:  # noqa: BLE001
            fail(e)

    result["callbacks"] = (listed, executing, completed)
    result["t0"] = module.request_command_list(jid=domain, callback=listed)


def muc_flow(c):
    import uuid
    from nbxmpp.protocol import JID, Message, Presence
    from nbxmpp.namespaces import Namespace
    from nbxmpp.structs import StanzaHandler
    from nbxmpp.const import StatusCode
    module = c.get_module("MUC")
    room = JID.from_string(f"gajim{uuid.uuid4().hex[:6]}@conference.{domain}")
    nick = "Gajim"
    steps = []
    state = {}

    def fail(e):
        result["line"] = f"FAIL after {steps}: {type(e).__name__}: {e}"
        c.disconnect()

    def on_presence(_client, _stanza, properties):
        if properties.jid.bare != str(room) or properties.muc_nickname != nick or "joined" in state:
            return
        codes = properties.muc_status_codes or set()
        if StatusCode.SELF in codes:
            state["joined"] = True
            steps.append("joined" + (" (created)" if StatusCode.CREATED in codes else ""))
            result["t1"] = module.request_config(room, callback=configure)

    def on_message(_client, _stanza, properties):
        if properties.jid.bare != str(room):
            return
        if properties.muc_subject is not None and properties.muc_subject.text == state.get("subject") and "subject" not in steps:
            steps.append("subject")
            result["t4"] = module.get_affiliation(room, "owner", callback=owners)
        elif properties.body == state.get("body") and properties.muc_nickname == nick and "echo" not in steps:
            ids = [s.id for s in (properties.stanza_ids or []) if str(s.by) == str(room)]
            if not properties.occupant_id or not ids:
                return fail(RuntimeError(f"no occupant id ({properties.occupant_id}) or room stanza id ({properties.stanza_ids})"))
            steps.append("echo")
            state["subject"] = "Gajim was here"
            module.set_subject(room, state["subject"])

    def configure(task):
        try:
            form = task.finish().form
            form["muc#roomconfig_persistentroom"].value = True
            form["muc#roomconfig_roomname"].value = "Gajim's room"
            steps.append("form")
            result["t2"] = module.set_config(room, form, callback=configured)
        except Exception as e:  # noqa: BLE001
            fail(e)

    def configured(task):
        try:
            task.finish()
            steps.append("configured")
            result["t3"] = module.request_info(room, callback=informed)
        except Exception as e:  # noqa: BLE001
            fail(e)

    def informed(task):
        try:
            info = task.finish().info
            for feature in ("muc_persistent", Namespace.MAM_2, "urn:xmpp:occupant-id:0"):
                if feature not in info.features:
                    raise RuntimeError(f"{feature} missing from {info.features}")
            steps.append("features")
            state["body"] = "hello from nbxmpp"
            c.send_stanza(Message(to=room, body=state["body"], typ="groupchat"))
        except Exception as e:  # noqa: BLE001
            fail(e)

    def owners(task):
        try:
            listed = [str(j) for j in task.finish().users]
            ok = f"{user}@{domain}" in listed
            result["line"] = f"{'OK' if ok else 'FAIL'} nbxmpp (as Gajim) in {room}: {', '.join(steps)}; owners {listed}"
        except Exception as e:  # noqa: BLE001
            result["line"] = f"FAIL after {steps}: {type(e).__name__}: {e}"
        c.disconnect()

    def absent(task):
        try:
            task.finish()
            return fail(RuntimeError("the room existed before it was created"))
        except Exception as e:  # noqa: BLE001 - item-not-found is the expected answer
            if getattr(e, "condition", None) != "item-not-found":
                return fail(e)
        steps.append("not yet there")
        join = Presence(to=f"{room}/{nick}")
        join.setTag("x", namespace=Namespace.MUC).setTag("history", {"maxchars": "0"})
        c.send_stanza(join)

    result["callbacks"] = (on_presence, on_message, configure, configured, informed, owners, absent)
    c.register_handler(StanzaHandler(name="presence", callback=on_presence, ns=Namespace.MUC_USER, priority=51))
    c.register_handler(StanzaHandler(name="message", callback=on_message, typ="groupchat", priority=51))
    result["t0"] = module.request_info(room, callback=absent)


def on_connected(c, _signal):
    if action == "time":
        run_task(c, lambda callback: c.get_module("EntityTime").request_entity_time(domain, callback=callback), time_line)
    elif action == "contact":
        run_task(c, lambda callback: c.get_module("Discovery").disco_info(domain, callback=callback), contact_line)
    elif action == "blocking":
        blocking_flow(c)
    elif action == "bookmarks":
        bookmarks_flow(c)
    elif action == "mam":
        mam_flow(c)
    elif action == "adhoc":
        adhoc_flow(c)
    elif action == "muc":
        muc_flow(c)
    elif action == "no-version":
        def version_line(result_or_error):
            return f"FAIL the server still answered: {result_or_error}"

        def asked(task):
            try:
                result["line"] = version_line(task.finish())
            except Exception as e:  # noqa: BLE001 - the expected outcome is an error
                cond = getattr(e, "condition", None)
                result["line"] = (f"OK logged in; version query answered with {cond}" if cond == "service-unavailable"
                                  else f"FAIL {type(e).__name__}: {e}")
            c.disconnect()

        result["cb"] = asked
        result["t"] = c.get_module("SoftwareVersion").request_software_version(domain, callback=asked)
    elif action == "legacy-bookmarks":
        room = f"tea@conference.{domain}"
        run_task(c, lambda callback: c.get_module("NativeBookmarks").request_bookmarks(callback=callback),
                 lambda bookmarks: f"{'OK' if room in [str(b.jid) for b in bookmarks] else 'FAIL'} native bookmarks seen by nbxmpp: {[str(b.jid) for b in bookmarks]}")
    else:
        result["line"] = f"OK bound {c.get_bound_jid()} over {c.tls_version} {c.ciphersuite}"
        c.disconnect()


def on_failed(c, signal, *args):
    result["line"] = f"FAIL {signal} {args} {c.get_error() if hasattr(c, 'get_error') else ''}"
    loop.quit()


client.subscribe("connected", on_connected)
client.subscribe("connection-failed", on_failed)
client.subscribe("disconnected", lambda *a: loop.quit())


def timeout():
    if not result["line"].startswith("OK"):
        result["line"] = "FAIL timeout"
    loop.quit()
    return False


GLib.timeout_add_seconds(30, timeout)
client.connect()
loop.run()
print(result["line"], flush=True)
sys.exit(0 if result["line"].startswith("OK") else 1)
