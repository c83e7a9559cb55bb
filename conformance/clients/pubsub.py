"""The publish-subscribe service (XEP-0060) with slixmpp's xep_0060 plugin, as a feed bot and its readers.

Usage:
  pubsub.py HOST PORT SERVER NODE -pass JID_A JID_B JID_C
      A finds the service in SERVER's disco#items (identity pubsub/service), creates NODE and configures
      it (title, max_items); B subscribes; A publishes Atom entries: B is notified with the payload and
      reads the items back; A retracts one (B is notified); A makes C a publisher and C publishes
      (B is notified); A lists the node's affiliations and subscriptions; a second node with the
      authorize access model leaves C's subscription pending until A approves it (§8.6 form in a
      message); A deletes NODE and B is told.
Passwords are the JID's local part followed by -pass.
Prints progress and finally one line starting with OK or FAIL.
"""
import asyncio
import ssl
import sys

import slixmpp
from slixmpp.xmlstream import ET

TIMEOUT = 25
ATOM = "http://www.w3.org/2005/Atom"


def say(text):
    print(text, flush=True)


def entry(title):
    e = ET.Element(f"{{{ATOM}}}entry")
    t = ET.SubElement(e, f"{{{ATOM}}}title")
    t.text = title
    return e


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0030", "xep_0004", "xep_0060", "xep_0203"):
            self.register_plugin(plugin)
        self.started = asyncio.Event()
        self.failed = None
        self.events = []
        self.forms = []
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_all_auth", lambda _: self.fail("authentication failed"))
        for kind in ("publish", "retract", "delete", "subscription"):
            self.add_event_handler("pubsub_" + kind, lambda m, kind=kind: self.events.append((kind, m)))
        self.add_event_handler("message_xform", self.forms.append)

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

    async def wait_event(self, kind, predicate=lambda m: True):
        await self.until(f"no pubsub {kind} event", lambda: any(k == kind and predicate(m) for k, m in self.events))


async def start(jid, host, port):
    c = Client(jid, slixmpp.JID(jid).user + "-pass")
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(c.started.wait(), TIMEOUT)
    if c.failed:
        raise RuntimeError(f"{jid}: {c.failed}")
    return c


async def find_service(client, server):
    items = await client.plugin["xep_0030"].get_items(jid=server, timeout=TIMEOUT)
    # slixmpp returns the items as a set (no order), and an item may be unavailable right now (an external
    # component that is not connected answers service-unavailable): skip those, as a client does.
    for jid, _, _ in sorted(items["disco_items"]["items"], key=lambda i: i[0]):
        try:
            info = await client.plugin["xep_0030"].get_info(jid=jid, timeout=TIMEOUT)
        except slixmpp.exceptions.IqError:
            continue
        if ("pubsub", "service") in [(i[0], i[1]) for i in info["disco_info"]["identities"]]:
            return jid
    raise RuntimeError(f"no pubsub service among {server}'s items")


def config_form(client, **fields):
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    for var, value in fields.items():
        form.add_field(var="pubsub#" + var, value=value)
    return form


async def run(host, port, server, node, jids):
    a, b, c = [await start(j, host, port) for j in jids]
    ps_a, ps_b, ps_c = (x.plugin["xep_0060"] for x in (a, b, c))
    step = "A finds the service"
    try:
        service = await find_service(a, server)
        say(f"service {service}")
        step = "A creates and configures the node"
        await ps_a.create_node(service, node, config=config_form(a, title="Conformance feed", max_items="10"), timeout=TIMEOUT)
        conf = await ps_a.get_node_config(service, node, timeout=TIMEOUT)
        values = conf["pubsub_owner"]["configure"]["form"].get_values()
        if values.get("pubsub#title") != "Conformance feed" or str(values.get("pubsub#max_items")) != "10":
            raise RuntimeError(f"configuration read back: {values}")
        step = "B subscribes"
        sub = await ps_b.subscribe(service, node, timeout=TIMEOUT)
        if sub["pubsub"]["subscription"]["subscription"] != "subscribed":
            raise RuntimeError(f"subscription {sub}")
        step = "A publishes, B is notified"
        await ps_a.publish(service, node, id="e1", payload=entry("First entry"), timeout=TIMEOUT)
        await ps_a.publish(service, node, id="e2", payload=entry("Second entry"), timeout=TIMEOUT)
        await b.wait_event("publish", lambda m: m["pubsub_event"]["items"]["item"]["id"] == "e2")
        step = "B reads the items"
        items = await ps_b.get_items(service, node, timeout=TIMEOUT)
        ids = [i["id"] for i in items["pubsub"]["items"]]
        if ids != ["e1", "e2"]:
            raise RuntimeError(f"items {ids}")
        say(f"B was notified and read back {ids}")
        step = "A retracts, B is notified"
        await ps_a.retract(service, node, "e1", notify=True, timeout=TIMEOUT)
        await b.wait_event("retract")
        step = "A makes C a publisher; C publishes"
        await ps_a.modify_affiliations(service, node, affiliations=[(c.boundjid.bare, "publisher")], timeout=TIMEOUT)
        await ps_c.publish(service, node, id="c1", payload=entry("From C"), timeout=TIMEOUT)
        await b.wait_event("publish", lambda m: m["pubsub_event"]["items"]["item"]["id"] == "c1")
        affiliations = await ps_a.get_node_affiliations(service, node, timeout=TIMEOUT)
        listed = sorted((str(x["jid"]), x["affiliation"]) for x in affiliations["pubsub_owner"]["affiliations"])
        subscriptions = await ps_a.get_node_subscriptions(service, node, timeout=TIMEOUT)
        subscribers = [str(x["jid"]) for x in subscriptions["pubsub_owner"]["subscriptions"]]
        say(f"affiliations {listed}, subscribers {subscribers}")
        if (c.boundjid.bare, "publisher") not in listed or b.boundjid.bare not in subscribers:
            raise RuntimeError("affiliations or subscriptions do not list C or B")
        step = "authorize: C waits for A's approval"
        club = node + "-club"
        await ps_a.create_node(service, club, config=config_form(a, access_model="authorize"), timeout=TIMEOUT)
        pending = await ps_c.subscribe(service, club, timeout=TIMEOUT)
        if pending["pubsub"]["subscription"]["subscription"] != "pending":
            raise RuntimeError(f"not pending: {pending}")
        await a.until("no approval request", lambda: bool(a.forms))
        request = a.forms[0]["form"]
        answer = a.plugin["xep_0004"].make_form(ftype="submit")
        for var in ("FORM_TYPE", "pubsub#subid", "pubsub#node", "pubsub#subscriber_jid"):
            answer.add_field(var=var, value=request.get_values()[var])
        answer.add_field(var="pubsub#allow", ftype="boolean", value=True)
        message = a.make_message(mto=service)
        message.append(answer)
        message.send()
        await c.wait_event("subscription", lambda m: m["pubsub_event"]["subscription"]["subscription"] == "subscribed")
        say("C's subscription was approved by A")
        step = "A deletes the node, B is told"
        await ps_a.delete_node(service, node, timeout=TIMEOUT)
        await b.wait_event("delete")
        await ps_a.delete_node(service, club, timeout=TIMEOUT)
        for x in (a, b, c):
            x.disconnect()
        print("OK slixmpp on the pubsub service: discovered, created and configured, subscribed, notified of items, retract and delete, publisher affiliation, approval of an authorize subscription", flush=True)
        return 0
    except Exception as ex:  # noqa: BLE001 - report any failure as the step that failed
        print(f"FAIL at step '{step}': {type(ex).__name__} {ex}", flush=True)
        return 1


def main():
    host, port, server, node, _, *jids = sys.argv[1:]
    return asyncio.get_event_loop().run_until_complete(run(host, port, server, node, jids))


sys.exit(main())
