// End-to-end: the engineer's pages of the center (`/center`) in the same app as the technician's
// console, against the real center (`sota-center serve`, embedded broker, fresh SQLite, demo
// data) serving the release build on its own origin.
// - a technician upgrades field-1 with the demo plan first, so a device has a history;
// - sign-in: no token, a wrong token (the API's message), the right one kept in the browser;
//   a reload on a deep address; a refused kept token ("sign in again"); sign-out;
// - the demo data the main command seeds: the product, its package, its active plan and that
//   plan's monitoring page (field-1 upgraded by it);
// - products and devices: the demo product, its devices, a search by key on the server, a
//   device's components and upgrade history;
// - version packages: the list, delete refused while the demo plan uses its package (the API's
//   message), a refused form (bad extension), an upload of two generated files with a bar per
//   file and the digests Node's crypto computes, delete of the new package;
// - lists paged and searched on the server: products by key or name, packages by product and name;
// - upgrade plans: the list, a manual plan created through the form (an invalid key named, the
//   blacklist read from a CSV file, the time now in the picked zone, the missing zh text refused
//   with the form's message first), edited as a draft, activated after its confirmation, paused,
//   resumed, a refused step's API message, finished; a draft deleted;
// - screenshots under <out> at 1280 px and 768 px.
// Usage: node tests/e2e/center-pages.mjs <dist> <out-dir> <sota binary> <sota-center binary>
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { launch } from './browser.mjs';
import { tally, startCenter, scenarios, device, resultOf, engineerPages, text, fits, signIn, openPlanForm, planText, planComponent } from './center-lib.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota', centerBin = 'target/debug/sota-center'] = process.argv.slice(2);
const t = tally();
const check = t.check;

const { tmp, token, center, base, api } = await startCenter(centerBin, dist, 'sota-e2e-pages-');
const { context, close } = await launch();
const scenario = scenarios(context, base, out, check, 'center-pages');
const { pages, shot } = engineerPages(context, out, check, 'center-pages');

try {
  const demoPackage = (await api('GET', '/packages')).find((p) => p.product_key === 'demo-product');
  const secret = (await api('GET', '/products/demo-product')).product_secret;

  // A device with a history: the technician's console upgrades field-1 with the demo plan.
  await scenario('technician-upgrade', async (page) => {
    const link = await device(page, sota, 'field-1', '1_0_0', secret, join(tmp, 'field-1.bin'));
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    const r = await resultOf(page, 90000);
    check('technician: the demo plan upgrades field-1', r.cls.includes('ok'), JSON.stringify(r));
    await link.stop();
  });

  for (const width of [1280, 768]) {
    await pages(`sign-in-${width}`, width, async (page) => {
      // Without a token (the browser's storage is shared by the steps).
      await page.goto(`${base}/center`);
      await page.evaluate(() => localStorage.removeItem('sota-console.operator-token'));
      await page.reload();
      await page.waitForSelector('#token', { timeout: 30000 });
      check(`${width}: without a token the sign-in page shows`, (await text(page, '#sign-in-title')) === 'Sign in' && (await page.$('#products')) === null, await text(page, 'main'));
      await shot(page, `center-sign-in-${width}`);
      await page.fill('#token', 'not-a-token');
      await page.click('#sign-in');
      await page.waitForSelector('#sign-in-error', { timeout: 20000 });
      const refused = await text(page, '#sign-in-error');
      check(`${width}: a wrong token shows the API's message`, refused.includes('operator token is unknown'), refused);
      check(`${width}: a wrong token is not kept`, (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === null, 'kept');
      await shot(page, `center-sign-in-refused-${width}`);
      await signIn(page, token);
      const products = await text(page, '#products');
      check(`${width}: the demo product is listed`, products.includes('demo-product') && products.includes('Smart aroma diffuser (demo data)'), products);
      check(`${width}: the token is kept in the browser`, (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === token, 'not kept');
      await shot(page, `center-products-${width}`);
    });
  }

  // The demo data `cargo xtask serve` seeds on first start, on the pages that show it: the
  // product, its version package, its active plan and that plan's monitoring (field-1, upgraded
  // above by the technician through the demo plan).
  const demoPlan = (await api('GET', '/plans')).find((p) => p.demo);
  for (const width of [1280, 768]) {
    await pages(`demo-${width}`, width, async (page) => {
      await page.goto(`${base}/center`);
      await page.waitForSelector('#products', { timeout: 30000 });
      const product = await text(page, '#products tbody tr:has(a[href="/center/products/demo-product"])');
      check(`demo ${width}: the product is listed, marked as demo data`, product.includes('demo-product demo') && product.includes('Smart aroma diffuser (demo data)'), product);
      await page.click('nav.center-nav a[href="/center/packages"]');
      await page.waitForSelector(`#package-${demoPackage.id}`, { timeout: 20000 });
      const pkg = await text(page, `#package-${demoPackage.id}`);
      check(`demo ${width}: its version package is listed with its file and digests`, pkg.includes('Demo MCU firmware 1_0_1 (demo data) demo') && pkg.includes('demo-mcu-1_0_1.bin')
        && (await text(page, `#package-${demoPackage.id} tr.file .sha256`)) === demoPackage.files[0].sha256, pkg);
      check(`demo ${width}: no sideways scrolling on the packages`, await fits(page), 'wider than the screen');
      await shot(page, `center-demo-packages-${width}`);
      await page.click('nav.center-nav a[href="/center/plans"]');
      await page.waitForSelector(`#plan-${demoPlan.id} a.plan-name`, { timeout: 20000 });
      await page.click(`#plan-${demoPlan.id} a.plan-name`);
      await page.waitForSelector('#plan-summary', { timeout: 20000 });
      const title = await text(page, '#plan-title');
      // Each fact by its name.
      const facts = await page.$$eval('#plan-summary dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.replace(/\s+/g, ' ').trim()])));
      const components = await text(page, '#plan-components tbody');
      check(`demo ${width}: its plan shows active, silent, every device but the blacklisted demo-device-2, the package and the texts`, title === 'Demo plan: STM32 to 1_0_1 (demo data) active'
        && facts['Upgrade mode'] === 'silent' && facts['Time zone'].startsWith('Asia/Shanghai') && facts.Whitelist === 'Empty: every device of the product gets the plan' && facts.Blacklist.startsWith('Device keys: 1') && facts.Blacklist.includes('demo-device-2')
        && components.includes(`#${demoPackage.id} Demo MCU firmware 1_0_1 (demo data)`) && (await text(page, '#plan-texts')).includes('演示固件升级（演示数据）'), `${title} | ${JSON.stringify(facts)} | ${components}`);
      check(`demo ${width}: no sideways scrolling on the plan`, await fits(page), 'wider than the screen');
      await shot(page, `center-demo-plan-${width}`);
      await page.click('#plan-monitoring');
      await page.waitForSelector('#live.open', { timeout: 20000 });
      await page.waitForSelector('#plan-devices tr[data-device="field-1"]', { timeout: 20000 });
      const rows = await page.$$eval('#plan-devices tr[data-device]', (trs) => trs.map((tr) => `${tr.dataset.device}:${tr.dataset.status}`));
      check(`demo ${width}: its monitoring shows field-1 at "update ok", one device offered`, JSON.stringify(rows) === '["field-1:update_ok"]' && (await text(page, '#counts-head')).startsWith('1 device offered the plan'), `${JSON.stringify(rows)} ${await text(page, '#counts-head')}`);
      check(`demo ${width}: its monitoring's log has field-1's upgrade`, (await text(page, '#plan-log')).includes('field-1'), await text(page, '#plan-log'));
      check(`demo ${width}: no sideways scrolling on the monitoring`, await fits(page), 'wider than the screen');
      await shot(page, `center-demo-monitoring-${width}`);
    });
  }

  await pages('devices', 1280, async (page) => {
    // Signed in by the kept token; a deep address survives a reload (the center's SPA fallback).
    await page.goto(`${base}/center`);
    await page.waitForSelector('#products', { timeout: 30000 });
    await page.getByRole('link', { name: 'demo-product' }).click();
    await page.waitForSelector('#devices');
    check('devices: the address names the product', page.url().endsWith('/center/products/demo-product'), page.url());
    await page.reload();
    await page.waitForSelector('#devices', { timeout: 30000 });
    const all = await text(page, '#devices');
    check('devices: after a reload the demo devices are listed', ['demo-device-1', 'demo-device-2', 'demo-device-3', 'field-1'].every((k) => all.includes(k)), all);
    check('devices: components and versions are shown', all.includes('STM32 1_0_0') && all.includes('STM32 1_0_1'), all);
    await page.fill('#device-search', 'field');
    await page.click('#device-search-go');
    await page.waitForFunction(() => !document.querySelector('#devices')?.textContent.includes('demo-device-1'), null, { timeout: 20000 });
    const found = await text(page, '#devices');
    check('devices: a search by key prefix finds field-1 only', found.includes('field-1') && !found.includes('demo-device'), found);
    await shot(page, 'center-devices-1280');
    await page.fill('#device-search', 'nobody');
    await page.click('#device-search-go');
    await page.waitForSelector('#no-devices', { timeout: 20000 });
    check('devices: no match is said', (await text(page, '#no-devices')) === 'No device matches.', await text(page, 'main'));
    await page.fill('#device-search', 'field-');
    await page.click('#device-search-go');
    await page.waitForSelector('#devices');
    await page.getByRole('link', { name: 'field-1' }).click();
    await page.waitForSelector('#upgrades', { timeout: 20000 });
    const components = await text(page, '#components');
    check('device: its components and versions', components.includes('STM32') && components.includes('1_0_1'), components);
    const upgrades = await text(page, '#upgrades');
    check('device: its upgrade history shows the demo plan succeeded', upgrades.includes('update_ok') && upgrades.includes('succeeded'), upgrades);
    const log = await text(page, '#upgrade-log');
    check('device: the upgrade log is shown', log.includes('download_start') && log.includes('update_ok'), log.slice(0, 300));
    await shot(page, 'center-device-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-device-768');
    await page.click('button[aria-pressed="false"]:has-text("中文")');
    await page.waitForFunction(() => document.querySelector('#history-title')?.textContent === '升级记录');
    check('device: the language switch covers the center pages', (await text(page, 'nav.center-nav')).includes('版本包') && (await text(page, '#upgrades')).includes('成功'), await text(page, 'nav.center-nav'));
    await shot(page, 'center-device-zh-768');
  });

  await pages('packages', 1280, async (page) => {
    await page.goto(`${base}/center/packages`);
    await page.waitForSelector('#packages', { timeout: 30000 });
    const demo = `#package-${demoPackage.id}`;
    const listed = await text(page, demo);
    check('packages: the demo package with its file and digests', listed.includes(demoPackage.meta?.name ?? demoPackage.name) && listed.includes(demoPackage.files[0].sha256) && listed.includes(demoPackage.files[0].md5), listed.slice(0, 300));
    await page.click(`${demo} button.delete`);
    await page.click(`${demo} button.confirm-delete`);
    await page.waitForSelector(`${demo} .refusal`, { timeout: 20000 });
    const refusal = await text(page, `${demo} .refusal`);
    check('packages: delete is refused with the API\'s message while the demo plan uses it', refusal.includes('is used by') && refusal.includes('plan'), refusal);
    check('packages: the refused package stays listed', (await page.$(demo)) !== null, 'gone');
    await shot(page, 'center-packages-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-packages-768');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.click('#add-package');
    await page.waitForSelector('#pkg-name');
    check('form: the address is /center/packages/new', page.url().endsWith('/center/packages/new'), page.url());
    await page.waitForFunction(() => document.querySelector('#pkg-product')?.value === 'demo-product');
    await page.fill('#pkg-name', 'Scent profiles');
    await page.fill('#pkg-target', '1_0_2');
    check('form: the source version is hidden for a full package', (await page.$('#pkg-source')) === null, 'shown');
    await page.check('#pkg-delta');
    await page.waitForSelector('#pkg-source');
    await page.click('#pkg-submit');
    await page.waitForSelector('#pkg-error');
    const needSource = await text(page, '#pkg-error');
    check('form: a delta without its source version is refused before upload', needSource.includes('source_version'), needSource);
    await page.check('#pkg-full');
    await page.waitForFunction(() => !document.querySelector('#pkg-source'));
    const bad = join(tmp, 'firmware.exe');
    writeFileSync(bad, randomBytes(1000));
    await page.setInputFiles('#pkg-files', bad);
    await page.click('#pkg-submit');
    await page.waitForFunction(() => document.querySelector('#pkg-error')?.textContent.includes('firmware.exe'));
    const badType = await text(page, '#pkg-error');
    check('form: a bad extension is refused with the API\'s message', badType.includes('unaccepted type') && badType.includes('.bin'), badType);
    await shot(page, 'center-package-refused-1280');
    await page.click('#pkg-picked button.remove');

    // Two generated files, uploaded at 4 MB/s so the bars can be seen moving.
    const files = [['scent-1_0_2.bin', randomBytes(3 << 20)], ['scent-1_0_2.tar.gz', randomBytes(2 << 20)]];
    for (const [name, bytes] of files) writeFileSync(join(tmp, name), bytes);
    await page.setInputFiles('#pkg-files', files.map(([name]) => join(tmp, name)));
    await page.fill('#pkg-remarks', 'Generated by center-pages.mjs');
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 << 20 });
    await page.click('#pkg-submit');
    await page.waitForFunction(() => document.querySelectorAll('#pkg-picked progress.file-progress').length === 2, null, { timeout: 20000 });
    await page.waitForFunction(() => Number(document.querySelector('#pkg-picked progress.file-progress')?.value) > 0, null, { timeout: 20000 });
    const bars = await page.$$eval('#pkg-picked progress.file-progress', (ps) => ps.map((p) => Number(p.value)));
    check('form: a progress bar per file while uploading', bars.length === 2 && bars[0] > 0 && bars[0] >= bars[1], JSON.stringify(bars));
    await shot(page, 'center-package-uploading-1280');
    await page.waitForSelector('#pkg-result', { timeout: 60000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    for (const [name, bytes] of files) {
      const row = `#pkg-result tr.file[data-name="${name}"]`;
      const got = {
        size: Number(await page.getAttribute(`${row} .size`, 'data-bytes')),
        md5: await text(page, `${row} .md5`),
        crc32: await text(page, `${row} .crc32`),
        sha256: await text(page, `${row} .sha256`),
      };
      const want = {
        size: bytes.length,
        md5: createHash('md5').update(bytes).digest('hex'),
        crc32: crc32(bytes).toString(16).padStart(8, '0'),
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
      check(`form: ${name}'s size and digests match Node's crypto`, JSON.stringify(got) === JSON.stringify(want), `${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    await shot(page, 'center-package-stored-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-package-stored-768');
    const stored = (await api('GET', '/packages')).find((p) => p.name === 'Scent profiles');
    check('form: the center stored every field', stored?.product_key === 'demo-product' && stored?.component_type === 'SOTA' && stored?.package_type === 'full' && stored?.target_version === '1_0_2' && stored?.remarks === 'Generated by center-pages.mjs' && stored?.files.length === 2, JSON.stringify(stored));

    await page.click('.crumbs a');
    await page.waitForSelector(`#package-${stored.id}`);
    await page.click(`#package-${stored.id} button.delete`);
    await page.click(`#package-${stored.id} button.confirm-delete`);
    await page.waitForFunction((id) => document.querySelector('#packages') && !document.querySelector(`#package-${id}`), stored.id, { timeout: 20000 });
    check('packages: a package no plan uses is deleted', !(await api('GET', '/packages')).some((p) => p.id === stored.id), 'still stored');
  });

  await pages('lists', 1280, async (page) => {
    // Products and packages page and search on the server.
    await page.goto(`${base}/center`);
    await page.waitForSelector('#products', { timeout: 30000 });
    await page.fill('#product-search', 'AROMA');
    await page.click('#product-search-go');
    await page.waitForSelector('#products-range');
    check('products: a search by name finds the demo product', (await text(page, '#products')).includes('demo-product'), await text(page, 'main'));
    await page.fill('#product-search', 'no-such-product');
    await page.click('#product-search-go');
    await page.waitForSelector('#no-products', { timeout: 20000 });
    check('products: no match is said', (await text(page, '#no-products')) === 'No product matches.', await text(page, 'main'));
    await page.goto(`${base}/center/packages`);
    await page.waitForSelector('#packages', { timeout: 30000 });
    await page.selectOption('#packages-product', 'demo-product');
    await page.fill('#packages-search', 'no-such-package');
    await page.click('#packages-search-go');
    await page.waitForSelector('#no-packages', { timeout: 20000 });
    check('packages: a name search with no match is said', (await text(page, '#no-packages')) === 'No version package matches.', await text(page, 'main'));
    await page.fill('#packages-search', (demoPackage.name ?? '').slice(0, 8).toLowerCase());
    await page.click('#packages-search-go');
    await page.waitForSelector(`#package-${demoPackage.id}`, { timeout: 20000 });
    check('packages: a name search finds the demo package', (await page.$$('#packages > li')).length >= 1 && (await text(page, '#packages-range')).startsWith('1–'), await text(page, '#packages-range'));
  });

  await pages('plans', 1280, async (page) => {
    const before = (await api('GET', '/plans')).length;
    await page.goto(`${base}/center/plans`);
    await page.waitForSelector('#plans', { timeout: 30000 });
    const demoRow = await text(page, '#plans');
    check('plans: the demo plan is listed as active', demoRow.includes('Demo plan') && demoRow.includes('active') && demoRow.includes('demo-product'), demoRow);
    check('plans: the navigation names and marks the plans', (await page.getAttribute('nav.center-nav a[href="/center/plans"]', 'aria-current')) === 'page' && (await text(page, 'nav.center-nav a[href="/center/plans"]')) === 'Upgrade plans', await text(page, 'nav.center-nav'));

    await openPlanForm(page, 'demo-product');
    check('plan form: the address is /center/plans/new', page.url().endsWith('/center/plans/new'), page.url());
    check('plan form: it says that the blacklist wins', (await text(page, '#blacklist-wins')).includes('blacklist wins'), await text(page, '#blacklist-wins'));
    await page.fill('#plan-name', 'E2E manual plan (draft)');
    // A key list with an entry that is not a key names it at once.
    await page.fill('#plan-whitelist', 'field-1\nbad/key, field-2');
    await page.waitForSelector('#plan-whitelist-error');
    check('plan form: an invalid key in the whitelist is named', (await text(page, '#plan-whitelist-error')).includes('"bad/key"'), await text(page, '#plan-whitelist-error'));
    await page.fill('#plan-whitelist', 'field-1\nfield-2, field-3 field-2');
    await page.waitForFunction(() => document.querySelector('#plan-whitelist-count')?.textContent === 'Device keys: 3');
    // The blacklist read from a CSV file.
    await page.setInputFiles('#plan-blacklist-file', { name: 'blacklist.csv', mimeType: 'text/csv', buffer: Buffer.from('"field-3"\r\n') });
    await page.waitForFunction(() => document.querySelector('#plan-blacklist')?.value.includes('field-3'), null, { timeout: 10000 });
    check('plan form: the blacklist is read from a file', (await text(page, '#plan-blacklist-count')) === 'Device keys: 1', await text(page, '#plan-blacklist-count'));
    check('plan form: a key on both lists is said to be blacklisted', (await text(page, '#plan-in-both')).includes('1 device(s) are on both lists'), await text(page, '#plan-in-both'));
    // The time zone among the browser's names, with the time there now.
    check('plan form: the time zone list is the browser\'s', (await page.$$eval('#tz-names option', (os) => os.map((o) => o.value))).includes('Europe/Berlin'), 'no Europe/Berlin');
    await page.fill('#plan-tz', 'Asia/Shanghai');
    const shanghai = await page.evaluate(() => new Date().toLocaleString('en', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }));
    await page.waitForFunction(() => document.querySelector('#plan-tz-now')?.textContent.startsWith('Now there:'));
    const now = await text(page, '#plan-tz-now');
    check('plan form: the local time in the chosen zone is shown', now.includes(shanghai.slice(0, 2) + ':') || now.includes(shanghai), `${now} vs ${shanghai}`);
    await page.fill('#plan-tz', 'Mars/Olympus');
    await page.waitForFunction(() => document.querySelector('#plan-tz-now')?.textContent.includes('not an IANA time zone'));
    await page.fill('#plan-tz', 'Asia/Shanghai');
    await page.check('#plan-push');
    await page.fill('#plan-push-start', '22:00');
    await page.fill('#plan-push-end', '06:00');
    await page.check('#plan-manual');
    await page.waitForSelector('#plan-texts-missing');
    check('plan form: manual mode says which texts are missing', (await text(page, '#plan-texts-missing')).endsWith('zh, en'), await text(page, '#plan-texts-missing'));
    await planText(page, 'en', 'Upgrade the diffuser to 1_0_2?');
    await page.waitForFunction(() => document.querySelector('#plan-texts-missing')?.textContent.endsWith(': zh'));
    await page.fill('#plan-battery', '30');
    await planComponent(page, 0, 'STM32', demoPackage.id);
    await page.click('#plan-save');
    await page.waitForSelector('#plan-error');
    const missing = await text(page, '#plan-error');
    check('plan form: a manual plan without its zh text is refused with the form\'s message', missing.includes('manual upgrade mode needs') && missing.includes('texts.zh'), missing);
    check('plan form: the refused plan was not sent', (await api('GET', '/plans')).length === before, 'sent');
    await planText(page, 'zh', '要把香薰机升级到 1_0_2 吗？');
    await page.waitForFunction(() => !document.querySelector('#plan-texts-missing'));
    check('plan form: a refusal goes once the form is changed', (await page.$('#plan-error')) === null, 'still shown');
    await shot(page, 'center-plan-form-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-plan-form-768');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.click('#plan-save');
    await page.waitForSelector('#plan-activate', { timeout: 20000 });
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    let stored = await api('GET', `/plans/${id}`);
    check('plan form: the center stored every field', stored.name === 'E2E manual plan (draft)' && stored.state === 'draft'
      && JSON.stringify(stored.whitelist) === '["field-1","field-2","field-3"]' && JSON.stringify(stored.blacklist) === '["field-3"]'
      && stored.time_zone === 'Asia/Shanghai' && stored.push_period?.start === '22:00' && stored.push_period?.end === '06:00'
      && stored.upgrade_mode === 'manual' && stored.strategy.min_battery_percent === 30
      && stored.texts.zh === '要把香薰机升级到 1_0_2 吗？' && stored.texts.en === 'Upgrade the diffuser to 1_0_2?'
      && stored.components.length === 1 && stored.components[0].identity === 'STM32' && stored.components[0].package_id === demoPackage.id, JSON.stringify(stored));

    // The draft is edited in place.
    await page.waitForSelector('#plan-name');
    check('plan page: the draft\'s form holds what was stored', (await page.inputValue('#plan-whitelist')).split('\n').length === 3 && (await page.inputValue('#plan-tz')) === 'Asia/Shanghai', await page.inputValue('#plan-whitelist'));
    await page.fill('#plan-name', 'E2E manual plan');
    await page.click('#plan-save');
    await page.waitForSelector('#plan-saved', { timeout: 20000 });
    stored = await api('GET', `/plans/${id}`);
    check('plan page: a saved edit reaches the center', stored.name === 'E2E manual plan' && stored.blacklist.length === 1, JSON.stringify(stored));
    check('plan page: a draft can be deleted, and links to its monitoring', (await page.$('#plan-delete')) !== null && (await page.getAttribute('#plan-monitoring', 'href')) === `/center/plans/${id}/monitoring`, 'no delete or link');

    // The list shows it.
    await page.click('.crumbs a');
    await page.waitForSelector(`#plan-${id}`, { timeout: 20000 });
    const row = await text(page, `#plan-${id}`);
    check('plans: the new plan is listed with its product, state, components, zone and window', ['E2E manual plan', 'demo-product', 'draft', `STM32 ← #${demoPackage.id}`, 'Asia/Shanghai', '22:00–06:00'].every((w) => row.includes(w)), row);
    check('plans: each plan links to its monitoring', (await page.getAttribute(`#plan-${id} a.monitoring`, 'href')) === `/center/plans/${id}/monitoring`, 'no link');
    await page.fill('#plans-search', 'e2e manual');
    await page.click('#plans-search-go');
    await page.waitForFunction(() => document.querySelectorAll('#plans tbody tr').length === 1, null, { timeout: 20000 });
    check('plans: a name search on the server finds only the new plan', (await text(page, '#plans')).includes('E2E manual plan') && !(await text(page, '#plans')).includes('Demo plan'), await text(page, '#plans'));
    await page.fill('#plans-search', '');
    await page.click('#plans-search-go');
    await page.waitForFunction(() => document.querySelectorAll('#plans tbody tr').length >= 2, null, { timeout: 20000 });
    await shot(page, 'center-plans-1280');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-plans-768');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Activation, after a confirmation that says activated plans cannot be deleted.
    await page.click(`#plan-${id} a.plan-name`);
    await page.waitForSelector('#plan-activate', { timeout: 20000 });
    await page.click('#plan-activate');
    await page.waitForSelector('#plan-activate-confirm');
    check('plan page: activation asks first, saying an activated plan cannot be deleted', (await text(page, '#plan-activate-confirm')).includes('Activated plans cannot be deleted'), await text(page, '#plan-activate-confirm'));
    check('plan page: asking activates nothing', (await api('GET', `/plans/${id}`)).state === 'draft', 'activated');
    await shot(page, 'center-plan-activate-1280');
    await page.click('#plan-activate-yes');
    await page.waitForSelector('#plan-pause', { timeout: 20000 });
    check('plan page: activated, with no delete button and no form', (await api('GET', `/plans/${id}`)).state === 'active' && (await page.$('#plan-delete')) === null && (await page.$('#plan-name')) === null && (await text(page, '#plan-title')).includes('active'), await text(page, 'main'));
    const summary = await text(page, '#plan-summary');
    check('plan page: an active plan shows its content', summary.includes('Asia/Shanghai') && summary.includes('22:00–06:00') && summary.includes('Device keys: 3') && summary.includes('Device keys: 1'), summary);
    await shot(page, 'center-plan-active-1280');
    await page.click('#plan-pause');
    await page.waitForSelector('#plan-resume', { timeout: 20000 });
    check('plan page: paused', (await api('GET', `/plans/${id}`)).state === 'paused' && (await text(page, '#plan-title')).includes('paused'), await text(page, '#plan-title'));
    await page.click('#plan-resume');
    await page.waitForSelector('#plan-pause', { timeout: 20000 });
    check('plan page: resumed', (await api('GET', `/plans/${id}`)).state === 'active', 'not active');
    // Paused behind the page's back: the page's pause is refused with the API's message.
    await api('POST', `/plans/${id}/pause`, {});
    await page.click('#plan-pause');
    await page.waitForSelector('#plan-refusal', { timeout: 20000 });
    const refusal = await text(page, '#plan-refusal');
    check('plan page: a refused step shows the API\'s message', refusal.includes('cannot pause a plan that is paused'), refusal);
    await page.reload();
    await page.waitForSelector('#plan-resume', { timeout: 30000 });
    await page.click('#plan-resume');
    await page.waitForSelector('#plan-pause', { timeout: 20000 });
    check('plan page: after a reload it is resumed again', (await api('GET', `/plans/${id}`)).state === 'active', 'not active');
    await page.setViewportSize({ width: 768, height: 900 });
    await shot(page, 'center-plan-active-768');
    await page.click('button[aria-pressed="false"]:has-text("中文")');
    await page.waitForFunction(() => document.querySelector('#plan-content-title')?.textContent === '计划内容');
    check('plan page: the language switch covers the plan pages', (await text(page, '#plan-actions')).includes('暂停') && (await text(page, 'nav.center-nav')).includes('升级计划'), await text(page, '#plan-actions'));
    await shot(page, 'center-plan-active-zh-768');
    await page.click('button[aria-pressed="false"]:has-text("English")');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.click('#plan-finish');
    await page.click('#plan-finish-yes');
    await page.waitForFunction(() => document.querySelector('#plan-title')?.textContent.includes('finished'), null, { timeout: 20000 });
    check('plan page: finished after its confirmation, with no step left', (await api('GET', `/plans/${id}`)).state === 'finished' && (await page.$('#plan-pause, #plan-resume, #plan-delete, #plan-activate')) === null, await text(page, '#plan-actions'));

    // A draft is deleted from its page.
    const draft = await api('POST', '/plans', { name: 'E2E throwaway draft', product_key: 'demo-product', time_zone: 'UTC', upgrade_mode: 'silent',
      components: [{ identity: 'STM32', component_type: 'SOTA', package_id: demoPackage.id }] });
    await page.goto(`${base}/center/plans/${draft.id}`);
    await page.waitForSelector('#plan-delete', { timeout: 30000 });
    await page.click('#plan-delete');
    await page.click('#plan-delete-yes');
    await page.waitForSelector('#plans', { timeout: 20000 });
    check('plan page: a deleted draft is gone', !(await api('GET', '/plans')).some((p) => p.id === draft.id) && !(await text(page, '#plans')).includes('throwaway'), 'still there');

    // More than a page: "Next" asks the server for the following one.
    const extra = [];
    for (let i = 0; i < 20; i++) {
      extra.push((await api('POST', '/plans', { name: `Paging draft ${i}`, product_key: 'demo-product', time_zone: 'UTC', upgrade_mode: 'silent',
        components: [{ identity: 'STM32', component_type: 'SOTA', package_id: demoPackage.id }] })).id);
    }
    await page.goto(`${base}/center/plans`);
    await page.waitForSelector('#plans', { timeout: 30000 });
    check('plans: a full page says 1–20 with "Next" on', (await text(page, '#plans-range')) === '1–20' && !(await page.isDisabled('#plans-next')) && (await page.isDisabled('#plans-prev')), await text(page, '#plans-range'));
    await page.click('#plans-next');
    await page.waitForFunction(() => document.querySelector('#plans-range')?.textContent === '21–22', null, { timeout: 20000 });
    const second = await text(page, '#plans');
    check('plans: the second page holds the oldest plans', second.includes('Demo plan') && second.includes('E2E manual plan') && (await page.isDisabled('#plans-next')), second);
    await page.click('#plans-prev');
    await page.waitForFunction(() => document.querySelector('#plans-range')?.textContent === '1–20', null, { timeout: 20000 });
    for (const id of extra) await api('DELETE', `/plans/${id}`);
  });

  await pages('sign-out', 1280, async (page) => {
    // A kept token the center no longer knows: "sign in again" with the API's message.
    await page.goto(`${base}/center`);
    await page.evaluate(() => localStorage.setItem('sota-console.operator-token', 'revoked-token'));
    await page.goto(`${base}/center/products/demo-product`);
    await page.waitForSelector('#refused', { timeout: 30000 });
    const refused = await text(page, '#refused');
    check('a refused kept token: "Sign in again" with the API\'s message', (await text(page, '#sign-in-title')) === 'Sign in again' && refused.includes('operator token is unknown'), refused);
    await shot(page, 'center-sign-in-again-1280');
    await signIn(page, token);
    check('signed in again, the page asked for shows', (await text(page, '#devices')).includes('demo-device-1'), await text(page, 'main'));
    await page.click('#sign-out');
    await page.waitForSelector('#token');
    check('sign-out forgets the token', (await page.evaluate(() => localStorage.getItem('sota-console.operator-token'))) === null, 'still kept');
    // The technician's console is one link away and unchanged.
    await page.click('a.away');
    await page.getByRole('button', { name: 'Connect device' }).waitFor({ timeout: 30000 });
    check('the technician console is at /', new URL(page.url()).pathname === '/', page.url());
  });
} catch (e) {
  check('center pages e2e setup', false, e.stack ?? String(e));
} finally {
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`e2e: ${t.passed} passed, ${t.failed} failed`);
process.exit(t.failed === 0 ? 0 : 1);
