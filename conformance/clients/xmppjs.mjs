// xmpp.js (npm @xmpp/client) from Node over WebSocket (RFC 7395), as a browser client would connect.
// Usage: node xmppjs.mjs WSS_URL DOMAIN USER PASSWORD PEER
//   Logs in, fetches the roster, sends PEER a message and waits for PEER's answer "pong: <text>".
// Prints one line starting with OK or FAIL.
// Node before 22 has no global WebSocket: the ws package stands in (as browsers provide one).
if (!globalThis.WebSocket) globalThis.WebSocket = (await import("ws")).WebSocket;
const { client, xml } = await import("@xmpp/client");

const [url, domain, username, password, peer] = process.argv.slice(2);
const xmpp = client({ service: url, domain, username, password, resource: "xmppjs" });
const timer = setTimeout(() => finish("FAIL timeout"), 30000);
let done = false;

function finish(line) {
  if (done) return;
  done = true;
  clearTimeout(timer);
  console.log(line);
  xmpp.stop().catch(() => {}).finally(() => process.exit(line.startsWith("OK") ? 0 : 1));
}

xmpp.on("error", (err) => finish(`FAIL ${err.condition || err.message}`));
xmpp.on("stanza", (stanza) => {
  if (stanza.is("message") && stanza.getChildText("body")?.startsWith("pong: ")) {
    finish(`OK logged in as ${xmpp.jid} over ${url}; answer: ${stanza.getChildText("body")}`);
  }
});
xmpp.on("online", async () => {
  try {
    const roster = await xmpp.iqCaller.request(xml("iq", { type: "get" }, xml("query", { xmlns: "jabber:iq:roster" })));
    if (!roster.getChild("query", "jabber:iq:roster")) throw new Error("no roster");
    await xmpp.send(xml("presence"));
    await xmpp.send(xml("message", { to: peer, type: "chat" }, xml("body", {}, "ping from xmpp.js")));
  } catch (err) {
    finish(`FAIL ${err.message}`);
  }
});
xmpp.start().catch((err) => finish(`FAIL ${err.message}`));
