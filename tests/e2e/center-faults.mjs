// End-to-end faults of the console as a device of the center (issue 10's Tests): the real
// center (embedded broker, fresh SQLite) serving the release build of the console, the fake
// Web Serial port backed by the AT simulator (`sota simulate --stdio`), one manual plan to
// 1_0_2 with a 320 KiB package (five of the flow's 64 KiB chunks).
// - range: the response carrying byte 100000 ends there, once; the download resumes with
//   `Range` from a non-zero offset at or before the cut (not from 0), the log says so, and the
//   upgrade succeeds with a byte-exact image;
// - broker: the center's MQTT becomes unreachable mid-transfer; the flash goes on, the console
//   says the connection was lost and that reports are sent when it is back, and the reports
//   queued meanwhile reach the center, in order, once it is back;
// - reload: the page is reloaded mid-transfer; the new page offers to continue, and continues
//   on the same port from the last confirmed piece: nothing is downloaded again, the MCU reads
//   at most one piece twice, the image is byte-exact and the center has every status in order;
// - outbox: the page is reloaded while the reports of a flash that ended offline wait for the
//   broker; the new page sends them in the background, and the center gets them once it is back;
// - digest: a tampered file fails the digest check: the console and the center show the
//   mismatch, and the MCU received zero firmware bytes.
// Usage: node tests/e2e/center-faults.mjs <dist> <out-dir> <sota binary> <sota-center binary>
import { readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { tally, startCenter, scenarios, device as deviceOf, resultOf, browserRecords } from './center-lib.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota', centerBin = 'target/debug/sota-center'] = process.argv.slice(2);
const t = tally();
const check = t.check;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

const { tmp, center, base, api, outcome } = await startCenter(centerBin, dist, 'sota-e2e-faults-');
const { context, close } = await launch();
const scenario = scenarios(context, base, out, check, 'center-faults');
const device = (page, key, secret, output, address) => deviceOf(page, sota, key, '1_0_1', secret, output, address);
const figures = [];

/// The upgrade's step (`FlowState::step`) and the figures line under it.
async function progress(page) {
  return page.evaluate(() => ({
    step: document.querySelector('#step')?.dataset.step ?? null,
    figures: document.querySelector('#figures')?.textContent ?? '',
  }));
}

/// The console's log as the technician reads it, also kept as `<out>/center-faults-<name>-log.txt`.
async function logOf(page, name) {
  const text = await page.innerText('#log');
  writeFileSync(join(out, `center-faults-${name}-log.txt`), text);
  return text;
}

/// The device's statuses in the plan's log, in the center's order.
async function statusesOf(planId, key) {
  return (await api('GET', `/plans/${planId}/log`)).filter((e) => e.device_key === key);
}

/// Whether `codes` never goes back (a device reports 1, 2, 4, 5…, 8, 9, 11 or 6/12, in order).
const inOrder = (codes) => codes.every((c, i) => i === 0 || c >= codes[i - 1]);

/// A TCP proxy between the page and the center's MQTT-over-WebSocket (`/mqtt`). Why a proxy
/// rather than stopping and restarting the center: it cuts the page's MQTT exactly when the
/// test says, refuses new connections while cut (as a stopped broker does: the port is closed),
/// and comes back on the same port, without a restart's timing (the center's start-up, its
/// HTTP and SQLite) deciding the outcome; the center keeps serving the monitoring API the test
/// reads. `cut()` closes the listening port and destroys every piped socket (the browser sees
/// the WebSocket close abnormally, as when a broker process dies); `restore()` listens again.
async function mqttProxy(target) {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set();
  let server = null;
  let port = 0;
  const listen = () => new Promise((ok, fail) => {
    server = createServer((page) => {
      const up = connect(Number(targetPort), hostname);
      sockets.add(page); sockets.add(up);
      const end = () => { page.destroy(); up.destroy(); sockets.delete(page); sockets.delete(up); };
      page.on('error', end); up.on('error', end); page.on('close', end); up.on('close', end);
      page.pipe(up); up.pipe(page);
    });
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => { port = server.address().port; ok(); });
  });
  await listen();
  return {
    url: () => `ws://127.0.0.1:${port}/mqtt`,
    connections: () => sockets.size / 2,
    cut: () => { server.close(); for (const s of sockets) s.destroy(); sockets.clear(); },
    restore: listen,
    close: () => { server.close(); for (const s of sockets) s.destroy(); },
  };
}

/// Serves the firmware download through `answer(route, record)`; every request's `Range` and
/// `If-Range` are recorded in the returned list.
async function recordDownloads(page, answer) {
  const requests = [];
  await page.route('**/api/v1/firmware/**', async (route) => {
    const headers = route.request().headers();
    const m = /^bytes=(\d+)-(\d*)$/.exec(headers.range ?? '');
    const record = {
      range: headers.range ?? null, ifRange: headers['if-range'] ?? null,
      start: m ? Number(m[1]) : null, end: m && m[2] ? Number(m[2]) : null, at: Date.now(),
    };
    requests.push(record);
    try {
      await answer(route, record);
    } catch (e) {
      record.error = String(e);
      await route.continue().catch(() => {});
    }
  });
  return requests;
}

let proxy = null;
try {
  const secret = (await api('GET', '/products/demo-product')).product_secret;
  const form = new FormData();
  for (const [k, v] of Object.entries({ product_key: 'demo-product', name: 'Faults', component_type: 'SOTA', package_type: 'full', target_version: '1_0_2' })) form.append(k, v);
  const fw = randomBytes(320 * 1024);
  form.append('file', new Blob([fw]), 'faults-1_0_2.bin');
  const pkg = await api('POST', '/packages', form);
  const plan = await api('POST', '/plans', {
    name: 'Faults to 1_0_2', product_key: 'demo-product', time_zone: 'Asia/Shanghai', upgrade_mode: 'manual',
    whitelist: ['fault-range', 'fault-broker', 'fault-reload', 'fault-outbox', 'fault-digest'],
    texts: { en: 'Fault drill', zh: '故障演练' },
    components: [{ identity: 'STM32', component_type: 'SOTA', package_id: pkg.id }],
  });
  await api('POST', `/plans/${plan.id}/activate`, {});

  /// Asks the center for plans and accepts the manual plan.
  async function accept(page) {
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    await page.waitForSelector('#plan-accept', { timeout: 20000 });
    await page.click('#plan-accept');
  }

  // 1. A download cut part-way once resumes with Range from where it was cut: the first
  // response that covers byte CUT (not a 64 KiB boundary) ends there.
  const CUT = 100000;
  let requests = [];
  await scenario('range', async (page) => {
    const output = join(tmp, 'range.bin');
    const link = await device(page, 'fault-range', secret, output);
    const began = Date.now();
    await accept(page);
    const r = await resultOf(page, 90000);
    figures.push(`range: accept to success ${secs(Date.now() - began)}, ${requests.length} download requests`);
    check('range: the upgrade succeeds after the cut', r.cls.includes('ok') && r.text.includes('STM32 1_0_2'), JSON.stringify(r));
    await page.screenshot({ path: join(out, 'console-faults-range-success.png'), fullPage: true });
    const cut = requests.findIndex((q) => q.cut !== undefined);
    const next = requests[cut + 1];
    check('range: the download was cut part-way, at a non-zero offset', cut >= 0 && requests[cut].start + requests[cut].cut === CUT, JSON.stringify(requests));
    check('range: the next request resumes from a non-zero offset at or before the cut, with Range',
      next && next.range !== null && next.start > 0 && next.start <= CUT, JSON.stringify({ cut: requests[cut], next }));
    check('range: nothing after the cut starts again from byte 0', requests.slice(cut + 1).every((q) => q.start > 0), JSON.stringify(requests.map((q) => q.range)));
    check('range: every request carried Range', requests.every((q) => q.range !== null), JSON.stringify(requests.map((q) => q.range)));
    const log = await logOf(page, 'range');
    check('range: the log says the download broke off and where it resumes',
      log.includes('the download broke off') && log.includes(`resuming at byte ${next?.start}`), log.slice(-2500));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('range: the MCU got a byte-exact image', got.equals(fw), `${got.length} bytes`);
    const c = await outcome(plan.id, 'fault-range');
    check('range: monitoring shows update ok', c?.outcome === 'succeeded' && c?.status === 11, JSON.stringify(c));
    const codes = (await statusesOf(plan.id, 'fault-range')).map((e) => e.status);
    check('range: the center\'s log has the statuses in order, no download failure', inOrder(codes) && [4, 5, 8, 9, 11].every((s) => codes.includes(s)) && !codes.includes(6), JSON.stringify(codes));
    console.log(`     range requests: ${requests.map((q) => `${q.range}${q.ifRange ? ' If-Range' : ''}${q.cut !== undefined ? ` (cut after ${q.cut} B)` : ''}`).join(', ')}`);
  }, async (page) => {
    requests = await recordDownloads(page, async (route, record) => {
      // The first request that covers byte CUT: its body ends there, once.
      if (!requests.some((q) => q.cut !== undefined) && record.start <= CUT && (record.end === null || record.end >= CUT)) {
        const res = await route.fetch();
        const body = await res.body();
        record.cut = CUT - record.start;
        const headers = { ...res.headers() };
        delete headers['content-length'];
        await route.fulfill({ status: res.status(), headers, body: body.subarray(0, record.cut) });
      } else {
        await route.continue();
      }
    });
  });

  // 2. The center's MQTT unreachable mid-transfer: the flash goes on, reports follow later.
  proxy = await mqttProxy(base);
  await scenario('broker', async (page, errors) => {
    const output = join(tmp, 'broker.bin');
    const link = await device(page, 'fault-broker', secret, output, proxy.url());
    const began = Date.now();
    await accept(page);
    // Mid-transfer: the MCU has read a fifth of the image.
    await page.waitForFunction(() => document.querySelector('#step')?.dataset.step === 'Writing'
      && Number(/(\d+) %/.exec(document.querySelector('#figures')?.textContent ?? '')?.[1] ?? 0) >= 20, null, { timeout: 60000, polling: 50 });
    const atCut = await progress(page);
    const cutAt = Date.now();
    proxy.cut();
    await page.waitForFunction(() => document.querySelector('#center-state')?.classList.contains('error'), null, { timeout: 20000 });
    await page.screenshot({ path: join(out, 'console-faults-broker-lost.png'), fullPage: true });
    const lostState = await page.textContent('#center-state');
    check('broker: the center panel says the connection was lost', /lost|unreachable|closed/i.test(lostState), lostState);
    // The flash goes on without the center; the broker stays away a while after it ended.
    const r = await resultOf(page, 120000);
    const doneAt = Date.now();
    check('broker: the flash went on and succeeded without the center', r.cls.includes('ok') && r.text.includes('STM32 1_0_2'), JSON.stringify(r));
    await page.screenshot({ path: join(out, 'console-faults-broker-done-offline.png'), fullPage: true });
    const before = await statusesOf(plan.id, 'fault-broker');
    check('broker: the center had no final status while unreachable', !before.some((e) => e.status === 11), JSON.stringify(before.map((e) => e.status)));
    // Meanwhile the waiting reports are kept in browser storage (a reload or a crash keeps them).
    const outboxText = (await browserRecords(page))['outbox/demo-product/fault-broker'];
    const kept = outboxText ? JSON.parse(outboxText).map((m) => JSON.parse(m)) : [];
    const keptCodes = kept.filter((m) => m.type === 'status').map((m) => m.status);
    check('broker: the waiting reports are kept in browser storage, in order, up to update ok', keptCodes.length > 0 && keptCodes[keptCodes.length - 1] === 11 && inOrder(keptCodes), JSON.stringify(keptCodes));
    await sleep(Math.max(0, 8000 - (doneAt - cutAt)));
    const restoredAt = Date.now();
    await proxy.restore();
    const c = await outcome(plan.id, 'fault-broker', 60000);
    const deliveredAt = Date.now();
    figures.push(`broker: cut at ${atCut.figures.trim()} (${secs(cutAt - began)} after accept), flash ended ${secs(doneAt - cutAt)} after the cut, broker back ${secs(restoredAt - cutAt)} after the cut, center had update ok ${secs(deliveredAt - restoredAt)} after that`);
    check('broker: the queued reports reached the center when it was back (update ok)', c?.outcome === 'succeeded' && c?.status === 11, JSON.stringify(c));
    const entries = await statusesOf(plan.id, 'fault-broker');
    const codes = entries.map((e) => e.status);
    const final = entries.find((e) => e.status === 11);
    check('broker: the final status arrived after the broker was back', final && Date.parse(final.at) >= restoredAt - 1000, JSON.stringify({ final, restoredAt: new Date(restoredAt).toISOString() }));
    check('broker: the center\'s log has the statuses in order', inOrder(codes) && [1, 2, 4, 5, 8, 9, 11].every((s) => codes.includes(s)), JSON.stringify(codes));
    await page.screenshot({ path: join(out, 'console-faults-broker-back.png'), fullPage: true });
    const log = await logOf(page, 'broker');
    check('broker: the log says reports are sent when the center is back', log.includes('lost the center') && log.includes('reports are sent when it is back'), log.slice(0, 1500));
    check('broker: the log says the connection came back and the center confirmed the reports', /reconnected/.test(log) && log.includes('the center confirmed the waiting report(s)'), log.slice(-1500));
    check('broker: nothing was dropped', !/dropped|not confirmed/.test(log), log.slice(-1500));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('broker: the MCU got a byte-exact image', got.equals(fw), `${got.length} bytes`);
    // Chromium's own line for each refused WebSocket while the broker was away is expected.
    const refused = /^WebSocket connection to '.*' failed: .*ERR_CONNECTION_REFUSED/;
    errors.splice(0, errors.length, ...errors.filter((e) => !refused.test(e)));
  });

  // 3. A reload mid-transfer: the new page continues from the last confirmed piece.
  let reloadRequests = [];
  await scenario('reload', async (page) => {
    const output = join(tmp, 'reload.bin');
    const link = await device(page, 'fault-reload', secret, output);
    const began = Date.now();
    let warned = false;
    page.on('dialog', (d) => { warned ||= d.type() === 'beforeunload'; d.accept().catch(() => {}); });
    await accept(page);
    // Past two of the five pieces: the MCU confirmed at least 131072 bytes.
    await page.waitForFunction(() => document.querySelector('#step')?.dataset.step === 'Writing'
      && Number(/(\d+) %/.exec(document.querySelector('#figures')?.textContent ?? '')?.[1] ?? 0) >= 45, null, { timeout: 60000, polling: 50 });
    const atReload = await progress(page);
    const downloads = reloadRequests.length;
    // The kept upgrade is written in the background: give it a moment, as a technician would
    // (any moment will do: crates/flow/tests/at_reload.rs reloads at every step of a piece).
    await sleep(300);
    const reloadAt = Date.now();
    await page.reload();
    await page.waitForSelector('#kept-upgrade', { timeout: 20000 });
    const offer = await page.textContent('#kept-text');
    await page.screenshot({ path: join(out, 'console-faults-reload-offer.png'), fullPage: true });
    // The same offer in Chinese on a tablet.
    const viewport = page.viewportSize();
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.getByRole('button', { name: '中文' }).click();
    const zh = await page.textContent('#kept-upgrade');
    await page.screenshot({ path: join(out, 'console-faults-reload-offer-zh-tablet.png') });
    check('reload: the offer reads in Chinese', zh.includes('继续升级') && zh.includes('已由 MCU 确认'), zh);
    await page.getByRole('button', { name: 'English' }).click();
    await page.setViewportSize(viewport);
    // Where the MCU stood at the reload depends on this machine's speed: at least two whole
    // pieces (the reload came past 45 %), always a whole piece, not the end; the percent agrees.
    const offered = /STM32 → 1_0_2: (\d+) % confirmed by the MCU \((\d+) \/ 327680 B\)/.exec(offer);
    const confirmed = Number(offered?.[2] ?? -1);
    check('reload: the page offers to continue the interrupted upgrade from a confirmed piece',
      confirmed >= 131072 && confirmed < 327680 && confirmed % 65536 === 0
        && Number(offered[1]) === Math.floor((confirmed * 100) / 327680), offer);
    await page.click('#kept-continue');
    const continuedAt = Date.now();
    const r = await resultOf(page, 90000);
    figures.push(`reload: at ${atReload.figures.trim()} (${secs(reloadAt - began)} after accept); offer shown and continued ${secs(continuedAt - reloadAt)} after the reload; success ${secs(Date.now() - continuedAt)} later`);
    check('reload: the continued upgrade succeeds', r.cls.includes('ok') && r.text.includes('STM32 1_0_2'), JSON.stringify(r));
    await page.screenshot({ path: join(out, 'console-faults-reload-success.png'), fullPage: true });
    check('reload: the page asked before leaving mid-upgrade', warned, '');
    check('reload: nothing was downloaded again', reloadRequests.length === downloads, JSON.stringify(reloadRequests.map((q) => q.range)));
    const log = await logOf(page, 'reload');
    check('reload: the log says where it continued (as offered)', log.includes(`continuing the upgrade of STM32 to 1_0_2: the MCU confirmed ${confirmed} of 327680 bytes`), log.slice(0, 1500));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('reload: the MCU got a byte-exact image', got.equals(fw), `${got.length} bytes`);
    const received = Number(/\((\d+) firmware bytes received\)/.exec(link.stderr)?.[1] ?? -1);
    check('reload: the MCU read at most one piece twice', received >= fw.length && received <= fw.length + 65536, `${received} bytes received`);
    const c = await outcome(plan.id, 'fault-reload');
    check('reload: monitoring shows update ok', c?.outcome === 'succeeded' && c?.status === 11, JSON.stringify(c));
    const codes = (await statusesOf(plan.id, 'fault-reload')).map((e) => e.status);
    check('reload: the center\'s log has the statuses in order', inOrder(codes) && [1, 2, 4, 5, 8, 9, 11].every((s) => codes.includes(s)) && !codes.includes(6), JSON.stringify(codes));
    const kept = (await browserRecords(page)).resume ?? null;
    check('reload: nothing is kept to continue once it ended', kept === null, String(kept).slice(0, 200));
  }, async (page) => {
    reloadRequests = await recordDownloads(page, async (route) => route.continue());
  });

  // 4. The page closes while reports wait for the broker: the next page delivers them.
  await scenario('outbox', async (page, errors) => {
    const output = join(tmp, 'outbox.bin');
    const link = await device(page, 'fault-outbox', secret, output, proxy.url());
    page.on('dialog', (d) => d.accept().catch(() => {}));
    await accept(page);
    await page.waitForFunction(() => document.querySelector('#step')?.dataset.step === 'Writing'
      && Number(/(\d+) %/.exec(document.querySelector('#figures')?.textContent ?? '')?.[1] ?? 0) >= 20, null, { timeout: 60000, polling: 50 });
    proxy.cut();
    const r = await resultOf(page, 120000);
    check('outbox: the flash succeeded without the center', r.cls.includes('ok'), JSON.stringify(r));
    await link.stop();
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#log')?.innerText.includes('that an earlier page could not deliver: sending them'), null, { timeout: 20000 });
    const before = await statusesOf(plan.id, 'fault-outbox');
    check('outbox: the center had no final status before the new page sent it', !before.some((e) => e.status === 11), JSON.stringify(before.map((e) => e.status)));
    const restoredAt = Date.now();
    await proxy.restore();
    const c = await outcome(plan.id, 'fault-outbox', 60000);
    figures.push(`outbox: the reloaded page's reports reached the center ${secs(Date.now() - restoredAt)} after the broker was back`);
    check('outbox: the reports the new page sent reached the center (update ok)', c?.outcome === 'succeeded' && c?.status === 11, JSON.stringify(c));
    const codes = (await statusesOf(plan.id, 'fault-outbox')).map((e) => e.status);
    check('outbox: the center\'s log has the statuses in order', inOrder(codes) && [1, 2, 4, 5, 8, 9, 11].every((s) => codes.includes(s)), JSON.stringify(codes));
    await page.waitForFunction(() => /the center confirmed the \d+ kept report\(s\) of demo-product\/fault-outbox/.test(document.querySelector('#log')?.innerText ?? ''), null, { timeout: 20000 });
    await page.screenshot({ path: join(out, 'console-faults-outbox-delivered.png'), fullPage: true });
    await logOf(page, 'outbox');
    const refused = /^WebSocket connection to '.*' failed: .*ERR_CONNECTION_REFUSED/;
    errors.splice(0, errors.length, ...errors.filter((e) => !refused.test(e)));
  });

  // 5. A tampered file: the digests do not match and nothing reaches the MCU.
  await scenario('digest', async (page) => {
    const output = join(tmp, 'digest.bin');
    const link = await device(page, 'fault-digest', secret, output);
    const began = Date.now();
    await accept(page);
    const r = await resultOf(page, 90000);
    figures.push(`digest: accept to the failure screen ${secs(Date.now() - began)}`);
    await page.screenshot({ path: join(out, 'console-faults-digest.png'), fullPage: true });
    await logOf(page, 'digest');
    check('digest: the console shows the mismatch failure', r.cls.includes('error') && /mismatch|does not match|MD5|SHA-256|CRC32/i.test(r.text), JSON.stringify(r));
    const c = await outcome(plan.id, 'fault-digest');
    check('digest: the center receives a download failure', c?.outcome === 'failed' && c?.status === 6, JSON.stringify(c));
    const codes = (await statusesOf(plan.id, 'fault-digest')).map((e) => e.status);
    check('digest: the center\'s log has no transfer or update status', !codes.some((s) => s === 8 || s === 9 || s === 11) && codes.includes(6), JSON.stringify(codes));
    await link.stop();
    check('digest: the MCU received zero firmware bytes', /\(0 firmware bytes received\)/.test(link.stderr) && !/[1-9]\d* firmware bytes received/.test(link.stderr), link.stderr);
    check('digest: the MCU wrote no image', !existsSync(output) || readFileSync(output).length === 0, output);
  }, async (page) => {
    await recordDownloads(page, async (route, record) => {
      const res = await route.fetch();
      const body = Buffer.from(await res.body());
      // One byte changed in the first chunk; the length is right.
      if (record.start === 0 && body.length > 100) body[100] ^= 0xff;
      const headers = { ...res.headers() };
      delete headers['content-length'];
      await route.fulfill({ status: res.status(), headers, body });
    });
  });
} catch (e) {
  check('center faults setup', false, e.stack ?? String(e));
} finally {
  proxy?.close();
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
for (const f of figures) console.log(`     ${f}`);
console.log(`e2e: ${t.passed} passed, ${t.failed} failed`);
process.exit(t.failed === 0 ? 0 : 1);
