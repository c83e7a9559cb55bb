// Converse.js in headless Chromium (Debian's chromium, driven by playwright-core): opens the page, which
// logs in over WebSocket; once SENDER shows up among the new messages, opens that chat as a user would
// (a click), waits until the message containing TEXT is shown, and saves a screenshot.
// Usage: node converse.mjs PAGE_URL WS_URL JID PASSWORD SENDER TEXT SCREENSHOT
// Prints "ONLINE" once Converse shows itself online, and one final line starting with OK or FAIL.
import { chromium } from "playwright-core";

const [pageUrl, ws, jid, password, sender, text, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--ignore-certificate-errors", "--no-sandbox"] });
let line;
try {
  const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const url = `${pageUrl}?ws=${encodeURIComponent(ws)}&jid=${encodeURIComponent(jid)}&password=${encodeURIComponent(password)}`;
  await page.goto(url);
  await page.waitForFunction(() => document.body.innerText.includes("I am online"), null, { timeout: 30000 });
  console.log("ONLINE");
  await page.waitForFunction(() => document.body.innerText.includes("New messages"), null, { timeout: 30000 });
  await page.getByText(sender.slice(0, 8)).first().click();
  await page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout: 20000 });
  await page.screenshot({ path: screenshot });
  line = `OK Converse.js showed the message "${text}"; screenshot ${screenshot}` + (errors.length ? `; page errors: ${errors.join(" | ")}` : "");
} catch (e) {
  line = `FAIL ${e.message.split("\n")[0]}`;
} finally {
  await browser.close();
}
console.log(line);
process.exit(line.startsWith("OK") ? 0 : 1);
