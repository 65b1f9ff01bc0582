// End-to-end: an engineer prepares and watches an upgrade on the center's pages, against the
// real center (`sota-center serve`, embedded broker, fresh SQLite, demo data) serving the
// release build on its own origin:
// - signs in and adds a version package by uploading a generated file (the packages page);
// - verifies it on one device through the verify page: the device is played by
//   `sota serve-at --center` against the AT simulator (`sota simulate`), first to register and
//   report its version, then to run the verification job; the job's details page follows the
//   device's reports live (no reload) until "succeeded"; a delta package for another version
//   is refused with the API's message;
// - creates a manual plan on the plans pages (the keys pasted, the time zone picked, zh and en
//   texts, the uploaded package), saves the draft, opens it again and activates it through its
//   confirmation (`createPlan`);
// - opens the plan's monitoring page, then a fleet of 5 simulated devices (the load tool's
//   `upgrade` mode, 1 of them blacklisted) runs the upgrade: the page shows them reaching
//   "update ok" live (statuses and progress arriving without a reload), the counts, a
//   component's details, the log, the CSV export; the blacklisted device is never offered;
// - screenshots of the plan, verify and monitoring pages at 1280 px and 768 px under <out>.
// Usage: node tests/e2e/center-engineer.mjs <dist> <out-dir> <sota> <sota-center> <channel_bench>
import { rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomBytes, createHash } from 'node:crypto';
import { launch } from './browser.mjs';
import { tally, startCenter, engineerPages, text, fits, openPlanForm, planText, planComponent } from './center-lib.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota', centerBin = 'target/debug/sota-center', bench = 'target/debug/examples/channel_bench'] = process.argv.slice(2);
const t = tally();
const check = t.check;

const { tmp, token, center, base, api, mqtt } = await startCenter(centerBin, dist, 'sota-e2e-engineer-');
const { context, close } = await launch();
const { pages, shot } = engineerPages(context, out, check, 'center-engineer');
const PRODUCT = 'demo-product';
const FROM = '1_0_1';
const TARGET = '1_0_2';

/// Runs a program to its end: { code, stdout, stderr }.
function run(bin, args, timeout = 120000) {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill(), timeout);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/// An AT MCU on a new pseudo-terminal (`sota simulate`): { tty, ended(ms), stop() }; it saves
/// the image it received in `output` when its upgrade ends.
async function simulator(version, output) {
  const child = spawn(sota, ['simulate', '--protocol', 'at', '--firmware-version', version, '--output', output], { stdio: ['ignore', 'pipe', 'inherit'] });
  const tty = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('sota simulate printed no pty within 20 s')), 20000);
    createInterface({ input: child.stdout }).once('line', (line) => { clearTimeout(timer); ok(line.trim()); });
    child.on('exit', (code) => fail(new Error(`sota simulate exited (${code})`)));
  });
  const exited = new Promise((ok) => child.on('exit', ok));
  return {
    tty,
    ended: (ms) => Promise.race([exited, new Promise((ok) => setTimeout(ok, ms))]),
    stop: () => { if (child.exitCode === null) child.kill(); },
  };
}

/// `sota serve-at --center` as device `key` on the simulator at `tty`; `secret`: [flag, value].
const serveAt = (tty, key, secret) => run(sota, [
  'serve-at', '--port', tty, '--piece-size', '16384', '--center', base, '--mqtt', `mqtt://${mqtt()}`,
  '--product', PRODUCT, '--device', key, ...secret,
]);

/// Creates the manual plan on the plans pages as the engineer would: the form filled in (the
/// device keys pasted, the time zone picked, manual mode with its zh and en texts, the uploaded
/// package for STM32), the draft saved, opened again from the list and activated through its
/// confirmation. The plan's id.
async function createPlan({ name, packageId, whitelist, blacklist }) {
  let id;
  await pages('plan', 1280, async (page) => {
    await page.goto(`${base}/center/plans`);
    await page.waitForSelector('#add-plan', { timeout: 30000 });
    await openPlanForm(page, PRODUCT);
    await page.fill('#plan-name', name);
    await page.fill('#plan-whitelist', whitelist.join('\n'));
    await page.fill('#plan-blacklist', blacklist.join('\n'));
    await page.waitForFunction(([w, b]) => document.querySelector('#plan-whitelist-count')?.textContent === `Device keys: ${w}`
      && document.querySelector('#plan-blacklist-count')?.textContent === `Device keys: ${b}`, [whitelist.length, blacklist.length]);
    const both = await text(page, '#plan-in-both');
    check('plan: the form says the device on both lists never gets the plan', both.includes(`${blacklist.length} device(s) are on both lists`) && both.includes('never get this plan'), both);
    await page.fill('#plan-tz', 'Asia/Shanghai');
    await page.waitForFunction(() => document.querySelector('#plan-tz-now')?.textContent.startsWith('Now there:'));
    await page.check('#plan-manual');
    await planText(page, 'zh', '新的香型');
    await page.waitForFunction(() => document.querySelector('#plan-texts-missing')?.textContent.endsWith(': en'));
    await planText(page, 'en', 'New scent profiles');
    await page.waitForSelector('#plan-texts-missing', { state: 'detached' });
    await planComponent(page, 0, 'STM32', packageId);
    check('plan: the uploaded package is offered for the component', (await page.$eval('.comp-package', (s) => s.selectedOptions[0]?.textContent ?? '')).includes(`#${packageId} Scent profiles ${TARGET}`), 'not picked');
    await shot(page, 'center-engineer-plan-form-1280');
    await page.click('#plan-save');
    await page.waitForSelector('#plan-activate', { timeout: 20000 });
    id = Number(new URL(page.url()).pathname.split('/').pop());
    const stored = await api('GET', `/plans/${id}`);
    check('plan: the draft is stored with what the form said', stored.name === name && stored.state === 'draft' && stored.product_key === PRODUCT
      && JSON.stringify(stored.whitelist) === JSON.stringify(whitelist) && JSON.stringify(stored.blacklist) === JSON.stringify(blacklist)
      && stored.time_zone === 'Asia/Shanghai' && stored.upgrade_mode === 'manual' && stored.texts.zh === '新的香型' && stored.texts.en === 'New scent profiles'
      && stored.components.length === 1 && stored.components[0].identity === 'STM32' && stored.components[0].package_id === packageId, JSON.stringify(stored));

    // Opened again from the list, as the engineer comes back to it.
    await page.click('.crumbs a');
    await page.waitForSelector(`#plan-${id} a.plan-name`, { timeout: 20000 });
    check('plan: the list shows the draft', (await text(page, `#plan-${id}`)).includes('draft'), await text(page, `#plan-${id}`));
    await page.click(`#plan-${id} a.plan-name`);
    await page.waitForSelector('#plan-activate', { timeout: 20000 });
    await page.waitForSelector('#plan-whitelist');
    check('plan: the opened draft holds its lists', (await page.inputValue('#plan-whitelist')) === whitelist.join('\n') && (await page.inputValue('#plan-blacklist')) === blacklist.join('\n'), await page.inputValue('#plan-whitelist'));
    await page.click('#plan-activate');
    await page.waitForSelector('#plan-activate-confirm');
    check('plan: activation asks first, saying an activated plan cannot be deleted', (await text(page, '#plan-activate-confirm')).includes('Activated plans cannot be deleted'), await text(page, '#plan-activate-confirm'));
    await page.click('#plan-activate-yes');
    await page.waitForSelector('#plan-pause', { timeout: 20000 });
    check('plan: activated, with no delete button', (await api('GET', `/plans/${id}`)).state === 'active' && (await page.$('#plan-delete')) === null && (await text(page, '#plan-title')).endsWith('active'), await text(page, 'main'));
    await shot(page, 'center-engineer-plan-active-1280');
  });
  if (!Number.isInteger(id) || (await api('GET', `/plans/${id}`)).state !== 'active') throw new Error('the plan was not created and activated through its pages');
  return id;
}

/// Collects, in the page, every value `attribute` takes on elements matching `selector`
/// (`window.__seen`), and marks the document (`window.__same`) so a reload would show.
async function watch(page, selector, attribute) {
  await page.evaluate(([selector, attribute]) => {
    window.__same = true;
    window.__seen = [];
    const note = () => {
      for (const el of document.querySelectorAll(selector)) {
        const v = el.getAttribute(attribute);
        const key = `${el.dataset.device ?? ''}:${v}`;
        if (v && !window.__seen.includes(key)) window.__seen.push(key);
      }
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true });
  }, [selector, attribute]);
}

try {
  const secret = (await api('GET', `/products/${PRODUCT}`)).product_secret;

  // A device for the verification: registers and reports STM32 1_0_1 (the demo plan's target,
  // so it has no plan now).
  const sim1 = await simulator(FROM, join(tmp, 'first.bin'));
  const first = await serveAt(sim1.tty, 'bench-1', ['--product-secret', secret]);
  sim1.stop();
  const deviceSecret = first.stderr.split('keep it for --device-secret): ')[1]?.split(/\s/)[0];
  check('device: bench-1 registered and reported its version', first.code === 0 && !!deviceSecret && first.stderr.includes('no plan for'), first.stderr.slice(-400));

  // Another product version's delta package, for the refusal.
  const delta = new FormData();
  for (const [k, v] of Object.entries({ product_key: PRODUCT, name: 'Delta from 1_0_0', component_type: 'SOTA', package_type: 'delta', source_version: '1_0_0', target_version: TARGET })) delta.append(k, v);
  delta.append('file', new Blob([randomBytes(4000)]), 'delta-1_0_2.bin');
  const deltaPackage = await api('POST', '/packages', delta);

  let packageId;
  const image = randomBytes(48 * 1024);
  await pages('package', 1280, async (page) => {
    await page.goto(`${base}/center/packages/new`);
    await page.fill('#token', token);
    await page.click('#sign-in');
    await page.waitForSelector('#pkg-name', { timeout: 30000 });
    await page.waitForFunction((p) => document.querySelector('#pkg-product')?.value === p, PRODUCT);
    await page.fill('#pkg-name', 'Scent profiles 1_0_2');
    await page.fill('#pkg-target', TARGET);
    const file = join(tmp, 'scent-1_0_2.bin');
    writeFileSync(file, image);
    await page.setInputFiles('#pkg-files', file);
    await page.click('#pkg-submit');
    await page.waitForSelector('#pkg-result', { timeout: 60000 });
    const sha = await text(page, '#pkg-result .sha256');
    check('package: uploaded through the packages page, digests shown', sha === createHash('sha256').update(image).digest('hex'), sha);
    packageId = (await api('GET', '/packages')).find((p) => p.name === 'Scent profiles 1_0_2')?.id;
    check('package: stored', Number.isInteger(packageId), String(packageId));
  });

  for (const width of [1280, 768]) {
    await pages(`verify-form-${width}`, width, async (page) => {
      await page.goto(`${base}/center/verify`);
      await page.waitForSelector('#vf-package', { timeout: 30000 });
      check(`${width}: the navigation leads to the verify page`, (await page.getAttribute('nav.center-nav a[href="/center/verify"]', 'aria-current')) === 'page', 'not current');
      await page.waitForFunction((id) => !!document.querySelector(`#vf-package option[value="${id}"]`), packageId);
      await page.selectOption('#vf-package', String(deltaPackage.id));
      await page.click('#vf-submit');
      await page.waitForSelector('#vf-error');
      const missing = await text(page, '#vf-error');
      check(`${width}: without a device the form says what to pick, before sending`, missing.includes('pick the device'), missing);
      await page.fill('#vf-device-search', 'bench');
      await page.click('#vf-device-go');
      await page.waitForSelector('#vf-devices tr[data-device="bench-1"]', { timeout: 20000 });
      const found = await text(page, '#vf-devices');
      check(`${width}: the device search on the server finds bench-1 and its version`, found.includes('bench-1') && found.includes(`STM32 ${FROM}`) && !found.includes('demo-device'), found);
      await page.click('#vf-devices tr[data-device="bench-1"] button.choose');
      await page.waitForSelector('#vf-component');
      await page.click('#vf-submit');
      await page.waitForFunction(() => document.querySelector('#vf-error')?.textContent.includes('upgrades from'), null, { timeout: 20000 });
      const refused = await text(page, '#vf-error');
      check(`${width}: a delta for another version is refused with the API's message`, refused.includes('1_0_0') && refused.includes(FROM), refused);
      await page.selectOption('#vf-package', String(packageId));
      await page.click('#vf-device-go');
      await page.click('#vf-devices tr[data-device="bench-1"] button.choose');
      await page.waitForSelector('#vf-component');
      check(`${width}: no sideways scrolling`, await fits(page), 'wider than the screen');
      await shot(page, `center-verify-${width}`);
    });
  }

  await pages('verification', 1280, async (page) => {
    await page.goto(`${base}/center/verify?package=${packageId}`);
    await page.waitForFunction((id) => document.querySelector('#vf-package')?.value === String(id), packageId, { timeout: 30000 });
    await page.fill('#vf-device-search', 'bench-1');
    await page.click('#vf-device-go');
    await page.click('#vf-devices tr[data-device="bench-1"] button.choose');
    await page.waitForSelector('#vf-component');
    await page.click('#vf-submit');
    await page.waitForSelector('#job-facts', { timeout: 20000 });
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    check('verification: the details page of the new job', page.url().endsWith(`/center/verifications/${id}`) && (await text(page, '#job-outcome')) === 'in progress', page.url());
    await page.waitForSelector('#live.open', { timeout: 20000 });
    await shot(page, 'center-verification-waiting-1280');
    await watch(page, '#job-status', 'data-status');

    // The device connects with its secret, gets the job first and runs it.
    const sim2 = await simulator(FROM, join(tmp, 'verified.bin'));
    const served = serveAt(sim2.tty, 'bench-1', ['--device-secret', deviceSecret]);
    await page.waitForSelector('#job-outcome[data-outcome="succeeded"]', { timeout: 120000 });
    const r = await served;
    await sim2.ended(10000);
    sim2.stop();
    check('verification: sota serve-at ran the job', r.code === 0, r.stderr.slice(-400));
    const seen = await page.evaluate(() => window.__seen);
    check('verification: the status followed the device live, without a reload', (await page.evaluate(() => window.__same)) === true && seen.length >= 3 && seen.some((s) => s.endsWith(':downloading') || s.endsWith(':updating')), JSON.stringify(seen));
    const log = await text(page, '#job-log');
    check('verification: the log has the device\'s reports and the outcome by version', log.includes('device: accepted') && log.includes(`${TARGET}, the package's target`), log.slice(-300));
    await page.waitForSelector('#live', { state: 'detached', timeout: 10000 }).catch(() => {});
    check('verification: the stream ended with the outcome', (await page.$('#live')) === null, 'still live');
    const got = existsSync(join(tmp, 'verified.bin')) ? readFileSync(join(tmp, 'verified.bin')) : Buffer.alloc(0);
    check('verification: the MCU got the uploaded image', got.equals(image), `${got.length} bytes`);
    await shot(page, 'center-verification-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    check('verification: no sideways scrolling at 768 px', await fits(page), 'wider than the screen');
    await shot(page, 'center-verification-768');
    await page.click('#verify-again');
    await page.waitForSelector(`#vf-jobs tr[data-job="${id}"]`, { timeout: 20000 });
    check('verification: the package lists its job', (await text(page, `#vf-jobs tr[data-job="${id}"]`)).includes('succeeded'), await text(page, '#vf-jobs'));
  });

  // The fleet: fleet-1…5 whitelisted, fleet-5 blacklisted too (the blacklist wins).
  const fleet = ['fleet-1', 'fleet-2', 'fleet-3', 'fleet-4', 'fleet-5'];
  const planId = await createPlan({ name: 'Scent profiles to 1_0_2', packageId, whitelist: fleet, blacklist: ['fleet-5'] });

  await pages('monitoring', 1280, async (page) => {
    await page.goto(`${base}/center/plans/${planId}/monitoring`);
    await page.waitForSelector('#live.open', { timeout: 30000 });
    await page.waitForSelector('#no-plan-devices', { timeout: 20000 });
    await watch(page, '#plan-devices tr', 'data-status');

    const ran = run(bench, ['upgrade', `${base}/api/v1`, token, mqtt(), String(planId), FROM, '150', '120', ...fleet], 180000);
    await page.waitForFunction(() => document.querySelectorAll('#plan-devices tr[data-outcome="succeeded"]').length === 4, null, { timeout: 120000 });
    const r = await ran;
    check('fleet: the load tool ran the plan on every offered device', r.code === 0, r.stdout + r.stderr);
    for (const key of fleet.slice(0, 4)) {
      check(`fleet: ${key} was offered the plan and succeeded`, r.stdout.includes(`device ${key} offered yes outcome succeeded`), r.stdout);
    }
    check('fleet: the blacklisted fleet-5 was never offered the plan', r.stdout.includes('device fleet-5 offered no outcome none'), r.stdout);

    const seen = await page.evaluate(() => window.__seen);
    const live = ['downloading', 'updating', 'update_ok'].every((s) => seen.some((v) => v.endsWith(`:${s}`)));
    check('monitoring: statuses and progress arrived live, without a reload', (await page.evaluate(() => window.__same)) === true && live, JSON.stringify(seen));
    const rows = await page.$$eval('#plan-devices tr[data-device]', (trs) => trs.map((tr) => `${tr.dataset.device}:${tr.dataset.status}`));
    check('monitoring: the four devices at "update ok", the blacklisted one absent', JSON.stringify(rows) === JSON.stringify(fleet.slice(0, 4).map((k) => `${k}:update_ok`)), JSON.stringify(rows));
    check('monitoring: "update ok" is shown in words', (await text(page, '#plan-devices tr[data-device="fleet-1"] .status-name')) === 'update ok', await text(page, '#plan-devices'));
    await page.waitForFunction(() => document.querySelector('#status-bars li[data-status="update_ok"]')?.dataset.count === '4', null, { timeout: 10000 });
    const head = await text(page, '#counts-head');
    check('monitoring: the counts say 4 devices, 4 succeeded', head.startsWith('4 devices offered') && head.includes('succeeded 4'), head);
    const width = await page.$eval('#status-bars li[data-status="update_ok"] .bar-fill', (b) => b.getBoundingClientRect().width);
    const track = await page.$eval('#status-bars li[data-status="update_ok"] .bar-track', (b) => b.getBoundingClientRect().width);
    check('monitoring: the "update ok" bar fills its track', track > 0 && Math.abs(width - track) < 2, `${width} of ${track}`);
    const log = await text(page, '#plan-log');
    check('monitoring: the upgrade log has every device\'s steps', fleet.slice(0, 4).every((k) => log.includes(k)) && log.includes('update ok') && log.includes('downloading') && !log.includes('fleet-5'), log.slice(0, 300));
    await shot(page, 'center-monitoring-1280');

    await page.click('#plan-devices tr[data-device="fleet-2"] button.details');
    await page.waitForSelector('#details-log li', { timeout: 20000 });
    const details = await text(page, '#component-details');
    check('monitoring: a component\'s details with its log', details.includes('fleet-2') && details.includes('update ok') && details.includes(`${TARGET} (the plan's target)`), details.slice(0, 400));
    await shot(page, 'center-monitoring-details-1280');

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click('#export-csv')]);
    const csvPath = join(tmp, 'log.csv');
    await download.saveAs(csvPath);
    const csv = readFileSync(csvPath, 'utf8');
    const lines = csv.trim().split('\r\n');
    const apiLog = await api('GET', `/plans/${planId}/log`);
    check('monitoring: the CSV export is the whole log, signed in', download.suggestedFilename() === `plan-${planId}-log.csv` && lines[0].startsWith('id,at,plan_id,device_key') && lines.length === apiLog.length + 1 && csv.includes('update_ok'), `${download.suggestedFilename()}: ${lines.length} lines vs ${apiLog.length}`);

    await page.setViewportSize({ width: 768, height: 900 });
    check('monitoring: no sideways scrolling at 768 px', await fits(page), 'wider than the screen');
    await shot(page, 'center-monitoring-768');
    await page.click('button[aria-pressed="false"]:has-text("中文")');
    await page.waitForFunction(() => document.querySelector('#plan-devices tr[data-device="fleet-1"] .status-name')?.textContent === '升级成功');
    check('monitoring: the page follows the language switch', (await text(page, '#monitoring-title')).startsWith('升级监控'), await text(page, '#monitoring-title'));
    await shot(page, 'center-monitoring-zh-768');
    await page.click('button[aria-pressed="false"]:has-text("English")');
  });

  const offered = await api('GET', `/products/${PRODUCT}/devices/fleet-5/upgrades`);
  check('the center never offered the blacklisted device the plan', !offered.upgrades.some((u) => u.plan_id === planId), JSON.stringify(offered.upgrades));
} catch (e) {
  check('center engineer e2e setup', false, e.stack ?? String(e));
} finally {
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`e2e: ${t.passed} passed, ${t.failed} failed`);
process.exit(t.failed === 0 ? 0 : 1);
