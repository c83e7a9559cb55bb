// xmpp.js (npm @xmpp/client 0.14) logging in with SASL2 (XEP-0388), Bind2 (XEP-0386) and FAST (XEP-0484).
// Usage: node xmppjs-fast.mjs SERVICE DOMAIN USER PASSWORD
//   SERVICE: xmpp://HOST:PORT (STARTTLS), xmpps://HOST:PORT (direct TLS) or wss://HOST:PORT/xmpp-websocket.
// Four logins with one user agent id, as one device would make them across restarts, each checked from
// what xmpp.js sent and received:
//   1. password: SASL2 with SCRAM, Bind2 (no legacy <auth/> or bind iq), a FAST token requested and received;
//   2. the token alone (no password given): HT-SHA-256-NONE, bound by Bind2 again;
//   3. a wrong token: refused with <not-authorized/>; xmpp.js drops it, falls back to the password on the
//      same stream and asks for a new token;
//   4. the new token alone: HT-SHA-256-NONE;
//   5. the first token again, now that a newer one was issued and used: refused too (retired).
// Prints one line per login ("login N: ...") on stderr and a last line starting with OK or FAIL.
// Node before 22 has no global WebSocket: the ws package stands in (as browsers provide one).
if (!globalThis.WebSocket) globalThis.WebSocket = (await import("ws")).WebSocket;
const { client, xml } = await import("@xmpp/client");

const [service, domain, username, password] = process.argv.slice(2);
const SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2 = "urn:xmpp:sasl:2";
const BIND = "urn:ietf:params:xml:ns:xmpp-bind";
const BIND2 = "urn:xmpp:bind:0";
const FAST = "urn:xmpp:fast:0";
const agentId = globalThis.crypto.randomUUID();
const resource = "fastjs";

// One login: resolves with what went over the wire and the tokens xmpp.js saved, once online or failed.
function login({ pass, token, label }) {
  return new Promise((resolve) => {
    const userAgent = xml("user-agent", { id: agentId }, xml("software", {}, "xmpp.js conformance"));
    const xmpp = client({ service, domain, username, password: pass, resource, userAgent });
    const seen = { sent: [], received: [], saved: [], deleted: 0, jid: null, error: null };
    // Where xmpp.js keeps the token: an application persists it; here it is kept for the next login.
    xmpp.fast.fetchToken = async () => token;
    xmpp.fast.saveToken = async (t) => seen.saved.push(t);
    xmpp.fast.deleteToken = async () => { seen.deleted++; };
    // XMPPJS_WIRE=1 shows what goes over the wire (the tokens too: for debugging only).
    xmpp.on("send", (e) => { seen.sent.push(e); if (process.env.XMPPJS_WIRE) console.error(`${label} >> ${e}`); });
    xmpp.on("element", (e) => { seen.received.push(e); if (process.env.XMPPJS_WIRE) console.error(`${label} << ${e}`); });
    const timer = setTimeout(() => end("timeout"), 20000);
    let ended = false;
    async function end(error) {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      seen.error = error;
      await xmpp.stop().catch(() => {});
      resolve(seen);
    }
    xmpp.on("error", (err) => end(`${label}: ${err.condition || err.message}`));
    xmpp.on("online", async (jid) => {
      seen.jid = jid.toString();
      try {
        // The session works: an iq round trip to the server (after which what followed the success has come).
        await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: "urn:xmpp:ping" })));
        await end(null);
      } catch (err) {
        await end(`${label}: ping: ${err.message}`);
      }
    });
    xmpp.start().catch((err) => end(`${label}: ${err.condition || err.message}`));
  });
}

const authenticates = (s) => s.sent.filter((e) => e.is("authenticate", SASL2));
const legacy = (s) => s.sent.some((e) => e.is("auth", SASL) || (e.is("iq") && e.getChild("bind", BIND)));
const successes = (s) => s.received.filter((e) => e.is("success", SASL2));
const failures = (s) => s.received.filter((e) => e.is("failure", SASL2));
const bound = (s) => successes(s).some((e) => e.getChild("bound", BIND2));
const describe = (s) => authenticates(s).map((a) => a.attrs.mechanism + (a.getChild("bind", BIND2) ? "+bind2" : "") + (a.getChild("request-token", FAST) ? "+request-token" : "")).join(" then ");

function check(label, s, expect) {
  const problems = [];
  if (s.error) problems.push(s.error);
  if (legacy(s)) problems.push("legacy SASL or resource binding was used");
  if (!bound(s)) problems.push("no Bind2 <bound/> in the SASL2 success");
  if (!s.jid?.startsWith(`${username}@${domain}/${resource}`)) problems.push(`bound as ${s.jid}, not ${resource}...`);
  // Stream management was enabled inside Bind2: xmpp.js must not be led to resume or enable it again.
  const smFailed = s.received.filter((e) => e.is("failed", "urn:xmpp:sm:3"));
  if (smFailed.length) problems.push(`stream management answered <failed/> ${smFailed.length} time(s) after ${s.sent.filter((e) => ["resume", "enable"].includes(e.name) && e.attrs.xmlns === "urn:xmpp:sm:3").map((e) => e.name).join(", ")}`);
  problems.push(...expect(s));
  console.error(`login ${label}: ${describe(s)}; ${failures(s).length} SASL2 failure(s); bound ${s.jid}${problems.length ? "; PROBLEMS: " + problems.join("; ") : ""}`);
  return problems.length === 0;
}

const failedWith = (s, condition) => failures(s).some((f) => f.getChild(condition, SASL));
let ok = true;
const verdict = (passed) => { ok = passed && ok; };

const first = await login({ pass: password, label: "1" });
const token = first.saved.at(-1);
verdict(check("1 (password)", first, (s) => [
  ...(authenticates(s)[0]?.attrs.mechanism?.startsWith("SCRAM-") ? [] : ["not SCRAM first"]),
  ...(authenticates(s)[0]?.getChild("request-token", FAST) ? [] : ["no <request-token/>"]),
  ...(token?.token && token.mechanism === "HT-SHA-256-NONE" ? [] : ["no HT-SHA-256-NONE token received"]),
]));

// No password given: only the token can log this one in.
const second = await login({ token, label: "2" });
verdict(check("2 (token only, no password)", second, (s) => [
  ...(authenticates(s).length === 1 && authenticates(s)[0].attrs.mechanism === "HT-SHA-256-NONE" ? [] : ["not one HT-SHA-256-NONE attempt"]),
  ...(successes(s)[0]?.getChildText("additional-data") ? [] : ["no server proof (additional-data)"]),
]));

const wrong = { ...token, token: Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(32))).toString("base64") };
const third = await login({ pass: password, token: wrong, label: "3" });
const renewed = third.saved.at(-1);
verdict(check("3 (wrong token, then password)", third, (s) => [
  ...(authenticates(s)[0]?.attrs.mechanism === "HT-SHA-256-NONE" && failedWith(s, "not-authorized") ? [] : ["the wrong token was not refused with not-authorized"]),
  ...(s.deleted > 0 ? [] : ["xmpp.js did not drop the refused token"]),
  ...(renewed?.token && renewed.token !== token?.token ? [] : ["no new token after the fallback"]),
]));

// The new token, used once, retires the first one (which stayed valid until then, in case the client had
// not stored the new one): the first one is then refused. The password is given so that xmpp.js's fallback
// (SCRAM after the refused token) does not fail for want of one.
const fourth = await login({ token: renewed, label: "4" });
verdict(check("4 (the new token, no password)", fourth, (s) => (authenticates(s).length === 1 && authenticates(s)[0].attrs.mechanism === "HT-SHA-256-NONE" ? [] : ["the new token did not log in"])));
const fifth = await login({ pass: password, token, label: "5" });
verdict(check("5 (the first token, now retired, then password)", fifth, (s) => [
  ...(authenticates(s)[0]?.attrs.mechanism === "HT-SHA-256-NONE" && failedWith(s, "not-authorized") ? [] : ["the retired token was not refused with not-authorized"]),
]));

console.log(ok ? `OK xmpp.js over ${service}: SASL2 + Bind2 with SCRAM, a FAST token login (HT-SHA-256-NONE), wrong and retired tokens refused` : `FAIL xmpp.js over ${service}: see above`);
process.exit(ok ? 0 : 1);
