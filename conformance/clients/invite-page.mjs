// The invitation page (README, "Invitations") in headless Chromium (Debian's chromium, driven by playwright-core)
// on a phone-sized screen, as the invited person meets it: the inviter's name, the xmpp: link, the QR code and
// the sign-up form. Saves a screenshot of the page and one of the QR code alone (for zbarimg to read back),
// creates the account with the form, then opens the page again, which must now say the invitation is used.
// Usage: node invite-page.mjs PAGE_URL INVITER USERNAME PASSWORD SCREENSHOT QR_SCREENSHOT
// Prints "URI <xmpp: link>" and one final line starting with OK or FAIL.
import { chromium } from "playwright-core";

const [pageUrl, inviter, username, password, screenshot, qrShot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--ignore-certificate-errors", "--no-sandbox"] });
let line;
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const first = await page.goto(pageUrl);
  if (first.status() !== 200) throw new Error(`the page answered ${first.status()}`);
  const body = await page.innerText("body");
  if (!body.includes(inviter)) throw new Error(`the page does not name the inviter ${inviter}`);
  const href = await page.getAttribute("a.button", "href");
  if (!href || !href.startsWith("xmpp:")) throw new Error(`no xmpp: button (${href})`);
  console.log(`URI ${href}`);
  // Nothing wider than the phone's screen: no sideways scrolling.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) throw new Error(`the page is ${wide} px wide on a 390 px screen`);
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.locator(".qr svg").screenshot({ path: qrShot });
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.fill("input[name=password2]", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const done = await page.innerText("body");
  if (!done.includes("Your account is ready")) throw new Error(`after the form: ${done.slice(0, 200)}`);
  const seen = errors.splice(0); // the 410 below is logged by Chromium as a failed load: that one is expected
  const again = await page.goto(pageUrl);
  if (again.status() !== 410) throw new Error(`the used invitation answered ${again.status()}, not 410`);
  line = `OK the page named ${inviter}, showed the link and its code on a phone screen, and its form created ${username}; opened again: 410` +
    (seen.length ? `; page errors: ${seen.join(" | ")}` : "");
  if (seen.length) line = "FAIL " + line.slice(3);
} catch (e) {
  line = `FAIL ${e.message.split("\n")[0]}`;
} finally {
  await browser.close();
}
console.log(line);
process.exit(line.startsWith("OK") ? 0 : 1);
