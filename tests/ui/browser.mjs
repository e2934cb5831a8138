// Drives Herald's web UI in Debian's headless Chromium (playwright-core,
// no browser download): filter the alerts, silence one from its "Silence"
// action, see it move to silenced, find the silence with the real amtool,
// expire it in the UI, see the alert active again. Saves a screenshot of
// every page. Exits non-zero on the first failed expectation.
//
// usage: node browser.mjs BASE_URL SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const [base, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

function expect(cond, what) {
  if (!cond) {
    throw new Error("expectation failed: " + what);
  }
  console.log("ok   " + what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  // A zone with a half-hour offset and no summer time: local times are
  // told apart from UTC for certain.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "Asia/Kolkata" });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // The alerts page, then a filter typed into the filter bar.
  await page.goto(`${base}/alerts`);
  expect((await page.locator("details.group").count()) === 3, "three alert groups shown");
  await shot("alerts");
  await page.fill("#filter", 'alertname="DiskFull"');
  await page.click("form.filter button[type=submit]");
  await page.waitForURL(/filter=/);
  expect((await page.locator("details.group").count()) === 1, "the filter leaves the DiskFull group");
  expect((await page.locator("li.alert").count()) === 2, "with its two alerts");
  // An annotation with markup shows as text.
  expect((await page.locator("dd", { hasText: "<script>" }).count()) >= 1, "an annotation's <script> is shown as text");

  // Clicking a label adds it to the filter.
  await page.locator("a.label", { hasText: 'instance="db1"' }).first().click();
  await page.waitForURL(/instance/);
  expect((await page.inputValue("#filter")).includes('instance="db1"'), "a clicked label joins the filter");
  expect((await page.locator("li.alert").count()) === 1, "one alert left");

  // Silence it from its own action.
  await page.locator("li.alert a.action", { hasText: "Silence" }).first().click();
  await page.waitForURL(/silences\/new/);
  expect((await page.inputValue("input[name=m0_name]")) !== "", "the form is pre-filled with the alert's labels");
  // With the script, one spare row instead of three; rows are added and
  // removed in place.
  const rows = () => page.locator(".matcher-row").count();
  expect((await rows()) === 4, "the three label rows and one spare row");
  await page.click("button.add");
  expect((await rows()) === 5, "Add matcher adds a row in place");
  expect((await page.locator(".matcher-row").last().locator("input").first().inputValue()) === "", "the new row is empty");
  const severity = page.locator(".matcher-row", { has: page.locator('input[value="severity"]') });
  await severity.locator("button.remove").click();
  expect((await rows()) === 4, "Remove takes the severity row out");
  expect((await page.locator(".tz").first().textContent()).includes("UTC+05:30"), "the form's times are in the viewer's zone");
  await page.fill("input[name=created_by]", "browser-test");
  await page.fill("textarea[name=comment]", "silenced from the UI");
  await page.click("button[value=preview]");
  await page.waitForSelector("#preview-h");
  expect((await page.locator("ul.preview li", { hasText: 'instance="db1"' }).count()) === 1, "the preview lists the alert it will silence");
  await shot("silence-form");
  await page.click("button[value=save]");
  await page.waitForURL(/\/silences\/[0-9a-f-]{36}$/);
  const id = page.url().split("/").pop();
  expect((await page.locator(".badge", { hasText: "active" }).count()) === 1, `silence ${id} is active`);
  const started = page.locator("time.abs").first();
  expect((await started.textContent()).endsWith("UTC+05:30"), "times are shown in the viewer's zone");
  expect((await started.getAttribute("title")).endsWith(" UTC"), "with UTC on hover");
  await shot("silence");

  // The real amtool sees it.
  const amtool = JSON.parse(execFileSync("/usr/bin/amtool", [
    `--alertmanager.url=${base}`, "silence", "query", "-o", "json",
  ]).toString());
  const found = amtool.find((s) => s.id === id);
  expect(found && found.createdBy === "browser-test" && found.comment === "silenced from the UI",
    "amtool silence query finds the silence with its author and comment");
  expect(found.matchers.map((m) => m.name).sort().join() === "alertname,instance",
    "with the rows left after the removal");
  const skew = Math.abs(Date.parse(found.startsAt) - Date.now());
  expect(skew < 120000, `the start entered in local time is the right moment (${skew} ms off)`);

  // The alert moved to silenced: hidden by default, shown as suppressed.
  await page.goto(`${base}/alerts?filter=${encodeURIComponent('instance="db1"')}`);
  expect((await page.locator("li.alert").count()) === 0, "the silenced alert is hidden by default");
  await page.check("input[name=silenced]");
  await page.click("form.filter button[type=submit]");
  await page.waitForURL(/silenced=true/);
  expect((await page.locator("li.alert.state-suppressed").count()) === 1, "and shown as suppressed with 'silenced'");
  expect((await page.locator(".why a", { hasText: id }).count()) === 1, "naming the silence");

  // The silences page, then expire it in the UI.
  await page.goto(`${base}/silences`);
  expect((await page.locator("li.silence").count()) === 1, "one active silence listed");
  expect((await page.locator("p.muting a").textContent()) === "Mutes 1 alert now", "saying how many alerts it mutes");
  await shot("silences");
  await page.goto(`${base}/silences/${id}`);
  await page.click("form.inline button");
  await page.waitForURL(new RegExp(`/silences/${id}$`));
  expect((await page.locator(".badge", { hasText: "expired" }).count()) === 1, "the silence is expired");
  await page.goto(`${base}/alerts?filter=${encodeURIComponent('instance="db1"')}`);
  expect((await page.locator("li.alert.state-active").count()) === 1, "the alert is active again");

  // Alertmanager's links from notifications land on the matching page.
  await page.goto(`${base}/#/silences/new?filter=${encodeURIComponent('{alertname="Linked"}')}`);
  await page.waitForURL(/\/silences\/new\?filter=/);
  expect((await page.inputValue("input[name=m0_value]")) === "Linked", "#/silences/new?filter= opens the pre-filled form");
  await page.goto(`${base}/#/alerts?receiver=pager`);
  await page.waitForURL(/\/alerts\?receiver=pager/);
  expect((await page.locator("details.group").count()) === 1, "#/alerts?receiver= shows that receiver's groups");

  // The notification history: what the team's receiver was sent.
  await page.goto(`${base}/notifications?outcome=success`);
  expect((await page.locator("li.notification").count()) >= 2, "the notifications page lists the team's notifications");
  expect((await page.locator("li.notification .receiver", { hasText: "team" }).count()) >= 2, "sent to the team receiver");
  await shot("notifications");

  // The status page and its routing tester.
  await page.goto(`${base}/status`);
  await page.fill("#labels", 'severity="critical"');
  await page.click("#tester + form button");
  await page.waitForURL(/labels=/);
  expect((await page.locator(".result strong", { hasText: "pager" }).count()) === 1, "the tester says pager gets severity=critical");
  await shot("status");

  // Keyboard: the skip link is the first stop on a fresh page.
  await page.goto(`${base}/alerts`);
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement.textContent === "Skip to content"), "the first Tab reaches the skip link");

  // A phone-sized window and dark mode.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const p2 = await phone.newPage();
  await p2.goto(`${base}/alerts`);
  const overflow = await p2.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  expect(!overflow, "no horizontal scrolling on a phone");
  const bg = await p2.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg !== "rgb(255, 255, 255)", "dark mode has a dark background");
  await p2.screenshot({ path: `${shots}/alerts-phone-dark.png`, fullPage: true });
} finally {
  await browser.close();
}
