// Time to first paint of Herald's pages in Debian's headless Chromium, and
// beside them what Alertmanager's UI must wait for before it can paint
// anything: its data requests, timed in the same browser. Used by
// `benches/compare.rs` (section `silences20k`); prints one JSON object.
//
// usage: node paint.mjs HERALD_BASE ALERTMANAGER_BASE
import { chromium } from "playwright-core";

const [herald, am] = process.argv.slice(2);
const RUNS = 3;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const out = { herald: {}, alertmanager: {} };
  // Herald's pages: first contentful paint, from the start of navigation.
  const pages = {
    alerts: "/alerts?silenced=true&inhibited=true",
    silences: "/silences",
    "silences filtered": "/silences?filter=" + encodeURIComponent('instance="host-7"'),
  };
  for (const [name, path] of Object.entries(pages)) {
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      await page.goto(herald + path, { waitUntil: "load", timeout: 120000 });
      // The paint entry can come after the load event on a large page.
      const fcp = await page.evaluate(() => new Promise((resolve) => {
        const seen = (list) => {
          const e = list.getEntriesByName("first-contentful-paint")[0];
          if (e) { resolve(e.startTime); }
        };
        new PerformanceObserver(seen).observe({ type: "paint", buffered: true });
        setTimeout(() => resolve(null), 30000);
      }));
      if (fcp === null) { throw new Error(`no first paint for ${path}`); }
      samples.push(fcp);
    }
    out.herald[name] = median(samples);
  }
  // Alertmanager 0.33's UI asks for these before it shows the alerts and
  // silences views; fetched from a page of its own origin.
  await page.goto(am + "/-/healthy");
  const requests = {
    alerts: "/api/v2/alerts/groups?silenced=false&inhibited=false&active=true",
    silences: "/api/v2/silences",
  };
  for (const [name, path] of Object.entries(requests)) {
    const samples = [];
    for (let i = 0; i < RUNS; i++) {
      // Cut off after a minute, as the bench's other requests are: with
      // 20,000 silences Alertmanager may not answer for much longer.
      const ms = await page.evaluate(async (url) => {
        const t = performance.now();
        try {
          const r = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(60000) });
          await r.json();
        } catch (e) {
          return null;
        }
        return performance.now() - t;
      }, am + path);
      if (ms === null) { samples.length = 0; break; }
      samples.push(ms);
    }
    out.alertmanager[name] = samples.length ? median(samples) : null;
  }
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
