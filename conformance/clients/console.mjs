// The web admin console (/admin/) in headless Chromium (Debian's chromium, driven by playwright-core): signs in
// as an admin, visits every page, adds an account, logs it in with xmpp.js over WebSocket and ends that session
// from the Sessions page (xmpp.js must see the stream error), changes its password (xmpp.js logs in with the new
// one), submits a form stripped of its token (refused with 403), deletes the account, and signs out.
// Screenshots of each page go to SHOT_DIR (console-dashboard.png, console-users.png, console-user.png,
// console-sessions.png; console-failure.png when a step fails).
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
  const state = { error: null };
  state.ended = new Promise((resolve) => xmpp.on("error", (e) => { state.error = e.condition || e.message; resolve(state.error); }));
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
  line = `OK console: every page, add, end session, change password, tokenless form refused, delete, sign-out; screenshots in ${shots}` + (errors.length ? `; page errors: ${errors.join(" | ")}` : "");
  if (errors.length) line = `FAIL page errors (CSP?): ${errors.join(" | ")}`;
} catch (e) {
  line = `FAIL ${e.message.split("\n")[0]} (at ${page?.url()})`;
  await page?.screenshot({ path: `${shots}/console-failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(line);
process.exit(line.startsWith("OK") ? 0 : 1);
