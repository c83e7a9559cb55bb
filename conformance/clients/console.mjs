// The web admin console (/admin/) in headless Chromium (Debian's chromium, driven by playwright-core): signs in
// as an admin, sees the dashboard's charts refreshed in place by the console's script, adds an account, logs it in
// with xmpp.js over WebSocket, sends an announcement from the Server page (xmpp.js must get it) and checks the
// configuration, destroys a room xmpp.js made and sits in (xmpp.js must get <destroy/> with the reason), visits the
// Federation page, ends the xmpp.js session from the Sessions page (xmpp.js must see the stream error), changes its
// password (xmpp.js logs in with the new one), submits a form stripped of its token (refused with 403), deletes the
// account, and signs out.
// Screenshots of each page go to SHOT_DIR (console-dashboard.png, console-users.png, console-user.png,
// console-sessions.png, console-server.png; console-failure.png when a step fails).
// Usage: node console.mjs CONSOLE_URL WSS_URL ADMIN_JID ADMIN_PASSWORD SHOT_DIR
//   CONSOLE_URL is https://HOST:PORT/admin/. Run with NODE_TLS_REJECT_UNAUTHORIZED=0 for a self-signed certificate.
// Prints one line per step, and a final line starting with OK or FAIL.
import { chromium } from "playwright-core";
if (!globalThis.WebSocket) globalThis.WebSocket = (await import("ws")).WebSocket;
const { client, xml } = await import("@xmpp/client");

const [consoleUrl, wss, adminJid, adminPassword, shots] = process.argv.slice(2);
const domain = adminJid.split("@")[1];
const user = `web${Date.now() % 100000}`;
const step = (s) => console.log(`- ${s}`);

// An xmpp.js session of USER that resolves "online" when bound and records the stream error that ends it.
function login(password) {
  const xmpp = client({ service: wss, domain, username: user, password, resource: "console-test" });
  xmpp.reconnect?.stop?.();
  const state = { error: null, xmpp };
  state.ended = new Promise((resolve) => xmpp.on("error", (e) => { state.error = e.condition || e.message; resolve(state.error); }));
  // The console's announcement (a headline) and a room's end (unavailable presence with <destroy/>).
  state.announced = new Promise((resolve) => xmpp.on("stanza", (s) => { if (s.is("message") && (s.getChildText("body") || "").includes("console announcement")) resolve(s.getChildText("body")); }));
  state.destroyed = new Promise((resolve) => xmpp.on("stanza", (s) => {
    const d = s.is("presence") && s.attrs.type === "unavailable" ? s.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("destroy") : null;
    if (d) resolve(d.getChildText("reason") || "");
  }));
  state.online = new Promise((resolve, reject) => {
    xmpp.on("online", async () => { await xmpp.send(xml("presence")); resolve(); });
    xmpp.start().catch(reject);
  });
  state.stop = () => xmpp.stop().catch(() => {});
  return state;
}

const within = (promise, ms, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))]);

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--ignore-certificate-errors", "--no-sandbox"] });
let line;
let page;
try {
  page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A violation of the Content-Security-Policy (an inline style, say) shows as a console error; failed loads (the
  // 403 of a refused form, a missing favicon) are expected and checked where they happen.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text()); });
  const h1 = async (text) => {
    const got = (await page.locator("h1").innerText()).trim();
    if (got !== text) throw new Error(`expected the page "${text}", got "${got}" at ${page.url()}`);
  };
  const note = async (text) => {
    const got = await page.locator("p.note").innerText().catch(() => "");
    if (!got.includes(text)) throw new Error(`expected the note "${text}", got "${got}" at ${page.url()}`);
  };

  // Nothing without a session: the console sends the browser to the sign-in page.
  await page.goto(consoleUrl);
  await h1("Sign in");
  if (!page.url().endsWith("/admin/login")) throw new Error(`not redirected to sign in: ${page.url()}`);
  await page.fill("input[name=jid]", adminJid);
  await page.fill("input[name=password]", "not the password");
  await page.click("button[type=submit]");
  if (!(await page.locator("p.error").innerText()).includes("Wrong address or password")) throw new Error("a wrong password was not refused");
  await page.fill("input[name=password]", adminPassword);
  await page.click("button[type=submit]");
  await h1("Dashboard");
  const cookie = (await page.context().cookies()).find((c) => c.name === "__Secure-xmppconsole");
  if (!cookie || !cookie.httpOnly || !cookie.secure || cookie.sameSite !== "Strict" || cookie.path !== "/admin/") throw new Error(`session cookie: ${JSON.stringify({ ...cookie, value: "…" })}`);
  await page.screenshot({ path: `${shots}/console-dashboard.png` });
  step("signed in; dashboard shown; cookie HttpOnly, Secure, SameSite=Strict, Path=/admin/");
  // The charts: drawn on the server, swapped in by /admin/console.js every 10 s without reloading the page.
  const charts = await page.locator("svg[role=img]").count();
  if (charts < 6) throw new Error(`${charts} charts on the dashboard`);
  // The charts drawn with the page are marked; the refresh must replace them with new ones on the same page.
  await page.evaluate(() => { for (const svg of document.querySelectorAll("#charts svg")) svg.dataset.old = "1"; });
  const refreshed = await page.waitForResponse((r) => r.url().endsWith("/admin/charts"), { timeout: 25000 });
  if (refreshed.status() !== 200) throw new Error(`charts refresh: HTTP ${refreshed.status()}`);
  await page.waitForFunction(() => { const s = document.querySelectorAll("#charts svg[role=img]"); return s.length >= 6 && ![...s].some((x) => x.dataset.old); }, null, { timeout: 5000 });
  if (!page.url().endsWith("/admin/")) throw new Error("the charts were not swapped in place");
  step(`${charts} charts (SVG); refreshed in place by the console's script from /admin/charts`);

  await page.click("nav >> text=Users");
  await h1("Users");
  await page.fill("form[action$='users/add'] input[name=username]", user);
  await page.fill("form[action$='users/add'] input[name=password]", "first-pass");
  await page.fill("form[action$='users/add'] input[name=password2]", "first-pass");
  await page.click("form[action$='users/add'] button[type=submit]");
  await h1(`${user}@${domain}`);
  await note("The account was created.");
  step(`account ${user}@${domain} added`);

  const first = login("first-pass");
  await within(first.online, 20000, "xmpp.js login with the first password");
  await page.click("nav >> text=Sessions");
  await h1("Sessions");
  const row = page.locator("tr", { hasText: `${user}@${domain}/console-test` });
  if (!(await row.innerText()).includes("WebSocket")) throw new Error(`session row: ${await row.innerText()}`);
  await page.screenshot({ path: `${shots}/console-sessions.png`, fullPage: true });

  // Server page: an announcement reaches the xmpp.js session; the configuration check says it loads.
  await page.click("nav >> text=Server");
  await h1("Server");
  await page.fill("form[action$='server/announce'] textarea[name=announcement]", "console announcement: maintenance at noon");
  await page.click("form[action$='server/announce'] button[type=submit]");
  await h1("Server");
  const announced = await within(first.announced, 10000, "xmpp.js to get the announcement");
  await page.click("form[action$='server/check'] button[type=submit]");
  await h1("Server");
  const checked = await page.locator("div.note").innerText().catch(() => "");
  if (!checked.includes("The configuration loads")) throw new Error(`configuration check: ${checked}`);
  await page.screenshot({ path: `${shots}/console-server.png`, fullPage: true });
  step(`Server page: announcement received by xmpp.js ("${announced}"); configuration check: loads`);

  // Rooms: xmpp.js makes an instant room; the console lists it with its occupant and destroys it.
  const room = `consoleroom${Date.now() % 100000}@conference.${domain}`;
  await first.xmpp.send(xml("presence", { to: `${room}/owner` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
  await first.xmpp.iqCaller.request(xml("iq", { type: "set", to: room }, xml("query", { xmlns: "http://jabber.org/protocol/muc#owner" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }))));
  await page.click("nav >> text=Rooms");
  await h1("Rooms");
  const roomRow = page.locator("tr", { hasText: room });
  if (!(await roomRow.innerText()).includes("1")) throw new Error(`room row: ${await roomRow.innerText()}`);
  await roomRow.locator("a").first().click();
  await h1(room);
  if ((await page.locator("td", { hasText: "owner" }).count()) === 0) throw new Error("the room page does not show its owner");
  await page.fill("form[action$='rooms/destroy'] input[name=reason]", "closed from the console");
  await page.check("form[action$='rooms/destroy'] input[name=confirm]");
  await page.click("form[action$='rooms/destroy'] button[type=submit]");
  await h1("Rooms");
  await note("The room was destroyed");
  const reason = await within(first.destroyed, 10000, "xmpp.js to see the room destroyed");
  if (reason !== "closed from the console") throw new Error(`destroy reason: ${reason}`);
  step(`room ${room} listed with its occupant and destroyed; xmpp.js got <destroy/> ("${reason}")`);

  await page.click("nav >> text=Federation");
  await h1("Federation");
  step("Federation page shown");

  await page.click("nav >> text=Sessions");
  await h1("Sessions");
  await row.locator("button", { hasText: "End" }).click();
  await h1("Sessions");
  await note("The session was ended.");
  const condition = await within(first.ended, 10000, "xmpp.js to see its session end");
  await first.stop();
  if (condition !== "policy-violation") throw new Error(`xmpp.js saw ${condition}, not policy-violation`);
  step("xmpp.js session listed (WebSocket) and ended from the Sessions page: policy-violation");

  await page.goto(`${consoleUrl}users?q=${encodeURIComponent(user)}`);
  await page.click(`a:text-is("${user}@${domain}")`);
  await h1(`${user}@${domain}`);
  await page.fill("form[action$='users/password'] input[name=password]", "second-pass");
  await page.fill("form[action$='users/password'] input[name=password2]", "second-pass");
  await page.click("form[action$='users/password'] button[type=submit]");
  await note("The password was changed");
  await page.screenshot({ path: `${shots}/console-user.png`, fullPage: true });
  const second = login("second-pass");
  await within(second.online, 20000, "xmpp.js login with the new password");
  await second.stop();
  step("password changed; xmpp.js logs in with the new one");

  // A form whose token was taken out (as a forged form would be) is refused.
  await page.goto(`${consoleUrl}users`);
  await page.locator("form[action$='users/add'] input[name=csrf]").evaluate((e) => e.remove());
  await page.fill("form[action$='users/add'] input[name=username]", `${user}x`);
  await page.fill("form[action$='users/add'] input[name=password]", "x-pass");
  await page.fill("form[action$='users/add'] input[name=password2]", "x-pass");
  const [refused] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/admin/users/add")), page.click("form[action$='users/add'] button[type=submit]")]);
  if (refused.status() !== 403) throw new Error(`a form without its token got ${refused.status()}`);
  await page.goto(`${consoleUrl}users?q=${encodeURIComponent(user + "x")}`);
  if ((await page.locator("td", { hasText: `${user}x@` }).count()) !== 0) throw new Error("the account of the tokenless form exists");
  await page.screenshot({ path: `${shots}/console-users.png`, fullPage: true });
  step("a form without its token: 403, nothing created");

  await page.goto(`${consoleUrl}user?jid=${encodeURIComponent(`${user}@${domain}`)}`);
  await page.check("form[action$='users/delete'] input[name=confirm]");
  await page.click("form[action$='users/delete'] button[type=submit]");
  await h1("Users");
  await note("The account and its data were deleted");
  const gone = login("second-pass");
  const outcome = await within(Promise.race([gone.online.then(() => "online"), gone.ended, gone.online.catch((e) => e.condition || e.message)]), 20000, "xmpp.js login to a deleted account");
  await gone.stop();
  if (outcome === "online") throw new Error("the deleted account still logs in");
  step(`account deleted; xmpp.js login refused (${outcome})`);

  await page.click("header button[type=submit]");
  await h1("Sign in");
  await page.goto(consoleUrl);
  await h1("Sign in");
  step("signed out; the console asks to sign in again");
  line = `OK console: every page, charts refreshed, announcement, configuration check, room destroyed, add, end session, change password, tokenless form refused, delete, sign-out; screenshots in ${shots}` + (errors.length ? `; page errors: ${errors.join(" | ")}` : "");
  if (errors.length) line = `FAIL page errors (CSP?): ${errors.join(" | ")}`;
} catch (e) {
  line = `FAIL ${e.message.split("\n")[0]} (at ${page?.url()})`;
  await page?.screenshot({ path: `${shots}/console-failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(line);
process.exit(line.startsWith("OK") ? 0 : 1);
