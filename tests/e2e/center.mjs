// End-to-end: the console as a device of the center. The real center (`sota-center serve`,
// embedded broker, fresh SQLite, demo data) serves the release build of the console on its
// own origin; the fake Web Serial port is backed by the AT simulator (`sota simulate --stdio`).
// - the demo plan (silent): register with the product secret, download, flash, success; the
//   center's monitoring shows "update ok" and the whole log;
// - a manual plan: its text is shown, Refuse reports the reason; Accept upgrades.
// Usage: node tests/e2e/center.mjs <dist> <out-dir> <sota binary> <sota-center binary>
import { readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { tally, startCenter, scenarios, device as deviceOf, resultOf, browserRecords } from './center-lib.mjs';

const [dist = 'dist', out = 'target/e2e', sota = 'target/debug/sota', centerBin = 'target/debug/sota-center'] = process.argv.slice(2);
const t = tally();
const check = t.check;

const { tmp, center, base, api, outcome } = await startCenter(centerBin, dist);
const { context, close } = await launch();
const scenario = scenarios(context, base, out, check);

/// Connects the fake port to an AT MCU at `version` and fills in the center's fields.
const device = (page, key, version, secret, output) => deviceOf(page, sota, key, version, secret, output);

try {
  const product = await api('GET', '/products/demo-product');
  const secret = product.product_secret;
  const demoPlan = (await api('GET', '/plans')).find((p) => p.product_key === 'demo-product').id;
  const demoFile = (await api('GET', '/packages')).find((p) => p.product_key === 'demo-product').files[0];

  await scenario('demo-plan', async (page) => {
    const output = join(tmp, 'demo.bin');
    const link = await device(page, 'field-1', '1_0_0', secret, output);
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    await page.waitForSelector('#offers li', { timeout: 20000 });
    const offer = await page.textContent('#offers');
    check('demo: the offered plan is shown', offer.includes('STM32') && offer.includes('1_0_1') && offer.includes('full package'), offer);
    const r = await resultOf(page, 90000);
    check('demo: success screen', r.cls.includes('ok') && r.text.includes('STM32 1_0_1'), JSON.stringify(r));
    await page.screenshot({ path: join(out, 'console-center-success.png'), fullPage: true });
    const log = await page.textContent('#log');
    check('demo: the log shows messages to and from the center', log.includes('→ register') && log.includes('← plans (1)') && log.includes('→ status 11'), log.slice(0, 400));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('demo: the MCU got the whole package', got.length === demoFile.size, `${got.length} vs ${demoFile.size}`);
    const c = await outcome(demoPlan, 'field-1');
    check('demo: monitoring shows update ok', c?.outcome === 'succeeded' && c?.status === 11, JSON.stringify(c));
    const statuses = (await api('GET', `/plans/${demoPlan}/log`)).filter((e) => e.device_key === 'field-1').map((e) => e.status);
    check('demo: the whole log reached the center', [1, 2, 4, 5, 8, 9, 11].every((s) => statuses.includes(s)), JSON.stringify(statuses));
    const remembered = await page.evaluate(() => JSON.parse(localStorage.getItem('sota-console.center')));
    const outbox = Object.keys(await browserRecords(page)).filter((k) => k.startsWith('outbox/'));
    check('demo: no report is left waiting in browser storage once the center confirmed all', outbox.length === 0, JSON.stringify(outbox));
    const board = await page.evaluate(() => JSON.parse(localStorage.getItem('sota-console.center.0483:5740')));
    check('demo: the settings are remembered for this board (USB 0483:5740)', board?.device === 'field-1' && board?.device_secret.length === 32, JSON.stringify(board && { ...board, device_secret: board.device_secret.length }));
    check('demo: the issued device secret is kept, the product secret dropped', remembered.device_secret.length === 32 && remembered.product_secret === '', JSON.stringify({ ...remembered, device_secret: remembered.device_secret.length }));
  });

  // A manual plan to 1_0_2 for devices already at 1_0_1.
  const form = new FormData();
  for (const [k, v] of Object.entries({ product_key: 'demo-product', name: 'Scent profiles', component_type: 'SOTA', package_type: 'full', target_version: '1_0_2' })) form.append(k, v);
  const fw = Buffer.alloc(30000, 7);
  form.append('file', new Blob([fw]), 'scent-1_0_2.bin');
  const pkg = await api('POST', '/packages', form);
  const plan = await api('POST', '/plans', {
    name: 'Manual to 1_0_2', product_key: 'demo-product', time_zone: 'Asia/Shanghai', upgrade_mode: 'manual',
    whitelist: ['field-2', 'field-3'],
    texts: { en: 'New scent profiles <b>now</b>', zh: '新的香型' },
    components: [{ identity: 'STM32', component_type: 'SOTA', package_id: pkg.id }],
  });
  await api('POST', `/plans/${plan.id}/activate`, {});

  await scenario('manual-refuse', async (page) => {
    const link = await device(page, 'field-2', '1_0_1', secret, join(tmp, 'refused.bin'));
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    await page.waitForSelector('#plan-accept', { timeout: 20000 });
    const text = await page.textContent('#offers');
    check('manual: the upgrade text is shown as text', text.includes('New scent profiles <b>now</b>'), text);
    await page.screenshot({ path: join(out, 'console-center-manual.png'), fullPage: true });
    // A technician's tablet in Chinese: the plan's Chinese text, nothing wider than the screen.
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.getByRole('button', { name: '中文' }).click();
    const zh = await page.textContent('#offers');
    check('manual: the Chinese page shows the Chinese text', zh.includes('新的香型') && zh.includes('用户确认升级'), zh);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check('manual: no horizontal scrolling at 768 px', wide <= 768, `${wide} px`);
    await page.screenshot({ path: join(out, 'console-center-manual-zh-768.png'), fullPage: true });
    await page.getByRole('button', { name: 'English' }).click();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole('button', { name: 'Refuse' }).click();
    const problem = await page.textContent('#center-problem');
    check('manual: a refusal needs a reason', problem.includes('Say why'), problem);
    await page.fill('#refuse-reason', 'the machine is in use');
    await page.getByRole('button', { name: 'Refuse' }).click();
    const r = await resultOf(page);
    check('manual: refused ends the run', r.cls.includes('cancelled') && r.text.includes('the machine is in use'), JSON.stringify(r));
    const c = await outcome(plan.id, 'field-2');
    check('manual: the center logs the refusal with the reason', c?.outcome === 'refused' && c?.message.includes('the machine is in use'), JSON.stringify(c));
    await link.stop();
  });

  await scenario('manual-accept', async (page) => {
    const output = join(tmp, 'accepted.bin');
    const link = await device(page, 'field-3', '1_0_1', secret, output);
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    await page.waitForSelector('#plan-accept', { timeout: 20000 });
    // Readings on site: the battery misses the plan's 20 %, the signal meets its -110 dBm.
    await page.fill('#reading-battery', '15');
    await page.fill('#reading-signal', '-80');
    const verdicts = await page.textContent('#verdicts');
    check('manual: each typed reading passes or fails against the plan', verdicts.includes('✗') && verdicts.includes('battery 15 %') && verdicts.includes('✓') && verdicts.includes('signal -80 dBm meets'), verdicts);
    await page.getByRole('button', { name: 'Accept anyway' }).click();
    const problem = await page.textContent('#center-problem');
    check('manual: overriding a failed check needs a reason', problem.includes('say why you go ahead anyway'), problem);
    await page.fill('#override-reason', 'on mains power during the update');
    await page.screenshot({ path: join(out, 'console-center-override.png'), fullPage: true });
    await page.getByRole('button', { name: 'Accept anyway' }).click();
    const r = await resultOf(page, 90000);
    check('manual: accepted plan succeeds', r.cls.includes('ok') && r.text.includes('STM32 1_0_2'), JSON.stringify(r));
    await link.stop();
    const got = existsSync(output) ? readFileSync(output) : Buffer.alloc(0);
    check('manual: byte-exact image', got.equals(fw), `${got.length} bytes`);
    const c = await outcome(plan.id, 'field-3');
    check('manual: monitoring shows update ok', c?.outcome === 'succeeded', JSON.stringify(c));
    const accepted = (await api('GET', `/plans/${plan.id}/log`)).find((e) => e.device_key === 'field-3' && e.status === 2);
    check('manual: the override and its reason are in the center\'s log', accepted?.message.includes('overridden by the technician (battery 15 %') && accepted?.message.includes('on mains power during the update'), JSON.stringify(accepted));
    const log = await page.textContent('#log');
    check('manual: the console log has the override', log.includes('plan accepted: strategy check overridden'), log.slice(0, 300));
  });

  await scenario('wrong-secret', async (page) => {
    const link = await device(page, 'field-4', '1_0_0', 'not-the-secret', join(tmp, 'no.bin'));
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    await page.waitForSelector('#center-state.error', { timeout: 20000 });
    const state = await page.textContent('#center-state');
    check('wrong secret: a plain message says what to check', state.includes('refused the login') && state.includes('product secret is wrong'), state);
    check('wrong secret: no upgrade failure, the fields stay editable', (await page.$('#result')) === null && await page.isEnabled('#center-product-secret'), 'result shown or fields disabled');
    await page.screenshot({ path: join(out, 'console-center-refused.png'), fullPage: true });
    // Corrected on the same connection: the MCU still waits for its plan.
    await page.fill('#center-product-secret', secret);
    await page.getByRole('button', { name: 'Get plans from the center' }).click();
    const r = await resultOf(page, 90000);
    check('wrong secret: corrected, the upgrade succeeds', r.cls.includes('ok') && r.text.includes('STM32 1_0_1'), JSON.stringify(r));
    await link.stop();
  });
} catch (e) {
  check('center e2e setup', false, e.stack ?? String(e));
} finally {
  await close();
  center.kill();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`e2e: ${t.passed} passed, ${t.failed} failed`);
process.exit(t.failed === 0 ? 0 : 1);
