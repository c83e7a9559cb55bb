// Converse.js in headless Chromium over BOSH or WebSocket (SERVICE_URL https://…/http-bind or
// wss://…/xmpp-websocket): logs in, joins ROOM as NICK (auto_join_rooms), waits for a
// slixmpp user's "hello from slixmpp" in the room, answers "hello from Converse" by typing in the room's
// text area, then shares a file through the upload button's file input (XEP-0363: slot, PUT, message with
// the URL), waits until the room shows it, and saves a screenshot.
// Usage: node converse-room.mjs PAGE_URL SERVICE_URL JID PASSWORD ROOM NICK FILE_TEXT SCREENSHOT
// Prints "ONLINE" once Converse shows itself online, and one final line starting with OK or FAIL.
import { chromium } from "playwright-core";

const [pageUrl, service, jid, password, room, nick, fileText, screenshot] = process.argv.slice(2);
const transport = service.startsWith("wss:") ? "ws" : "bosh";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--ignore-certificate-errors", "--no-sandbox"] });
let line;
let page;
try {
  page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => { if (r.url().includes("/http-bind")) requests.push(r.method()); });
  const q = new URLSearchParams({ [transport]: service, jid, password, room, nick });
  await page.goto(`${pageUrl}?${q}`);
  await page.waitForFunction(() => document.body.innerText.includes("I am online"), null, { timeout: 30000 });
  console.log("ONLINE");
  await page.waitForFunction(() => document.body.innerText.includes("hello from slixmpp"), null, { timeout: 60000 });
  const textarea = page.locator("converse-muc textarea.chat-textarea");
  await textarea.fill("hello from Converse");
  await textarea.press("Enter");
  await page.locator("converse-muc input.fileupload").setInputFiles({ name: "note.txt", mimeType: "text/plain", buffer: Buffer.from(fileText) });
  await page.waitForFunction(() => [...document.querySelectorAll("converse-muc .chat-msg__text, converse-muc a")].some((e) => (e.textContent || "").includes("note.txt") || (e.href || "").includes("/upload/")), null, { timeout: 30000 });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: screenshot });
  const how = transport === "bosh" ? `BOSH (${requests.length} POSTs to /http-bind)` : "WebSocket";
  line = `OK Converse.js over ${how} joined ${room}, chatted with slixmpp and shared note.txt by HTTP upload; screenshot ${screenshot}` +
    (errors.length ? `; page errors: ${errors.join(" | ")}` : "");
} catch (e) {
  if (page) await page.screenshot({ path: screenshot }).catch(() => {});
  line = `FAIL ${e.message.split("\n")[0]}`;
} finally {
  await browser.close();
}
console.log(line);
process.exit(line.startsWith("OK") ? 0 : 1);
