"""nbxmpp (the library Gajim is built on): the IM scenario with a contact on another client.

Usage: nbx_im.py HOST PORT DOMAIN USER PASSWORD CONTACT_JID
Requests the roster, goes online, subscribes to CONTACT, approves CONTACT's request, waits until the
contact is online, sends it a chat message, waits for the answer, then waits until the contact goes
offline (the other client drops its connection) and sends one more message, which the server must keep
offline. Prints progress lines and finally one line starting with OK or FAIL.
"""
import sys

from gi.repository import GLib
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.protocol import Iq, Message, Presence
from nbxmpp.structs import StanzaHandler

host, port, domain, user, password, contact = sys.argv[1:7]
loop = GLib.MainLoop()
state = {"line": "FAIL no connection", "online": False, "answered": False, "sent": False}

client = Client(log_context="conformance-im")
client.set_domain(domain)
client.set_username(user)
client.set_password(password)
client.set_resource("gajim")
client.set_custom_host(f"{host}:{port}", ConnectionProtocol.TCP, ConnectionType.START_TLS)
client.set_ignore_tls_errors(True)


def say(text):
    print(text, flush=True)


def finish(line):
    state["line"] = line
    client.disconnect()


def bare(jid):
    return str(jid).split("/")[0]


def on_presence(c, stanza, _props):
    if bare(stanza.getFrom()) != contact:
        return
    typ = stanza.getType()
    if typ == "subscribe":
        say("subscription request from contact: approving")
        c.send_stanza(Presence(to=contact, typ="subscribed"))
    elif typ == "subscribed":
        say("contact approved our subscription")
    elif typ in (None, "", "available"):
        if not state["online"]:
            state["online"] = True
            say(f"contact online as {stanza.getFrom()}")
            c.send_stanza(Message(to=contact, body="hello from nbxmpp", typ="chat"))
    elif typ == "unavailable":
        if state["answered"] and not state["sent"]:
            state["sent"] = True
            say(f"contact went offline ({stanza.getFrom()})")
            c.send_stanza(Message(to=contact, body="sent while you were away", typ="chat"))
            GLib.timeout_add(500, lambda: finish("OK subscribed both ways, chatted, saw the contact go offline, left a message") and False)


def on_message(_c, stanza, _props):
    if bare(stanza.getFrom()) == contact and stanza.getBody():
        state["answered"] = True
        say(f"received from contact: {stanza.getBody()}")


def on_connected(c, _signal):
    say(f"bound {c.get_bound_jid()}")
    c.send_stanza(Iq(typ="get", queryNS="jabber:iq:roster"))
    c.send_stanza(Presence())
    c.send_stanza(Presence(to=contact, typ="subscribe"))


def on_failed(c, signal, *args):
    state["line"] = f"FAIL {signal} {args}"
    loop.quit()


client.register_handler(StanzaHandler(name="presence", callback=on_presence))
client.register_handler(StanzaHandler(name="message", callback=on_message))
client.subscribe("connected", on_connected)
client.subscribe("connection-failed", on_failed)
client.subscribe("disconnected", lambda *a: loop.quit())


def timeout():
    if not state["line"].startswith("OK"):
        state["line"] = f"FAIL timeout (online={state['online']} answered={state['answered']})"
    loop.quit()
    return False


GLib.timeout_add_seconds(45, timeout)
client.connect()
loop.run()
print(state["line"], flush=True)
sys.exit(0 if state["line"].startswith("OK") else 1)
