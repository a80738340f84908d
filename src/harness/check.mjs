// Opens the editors' test page (artifacts/harness, built by
// `webpack -c webpack.harness.config.ts`) in headless Chromium, fails if the
// page reports an error or Monaco never mounts, and keeps a screenshot in
// artifacts/editors.png. Without a Chromium it says so and skips (exit 0),
// unless LOKAL_REQUIRE_BROWSER=1 asks for the check to be mandatory.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const page = path.join(root, 'artifacts', 'harness', 'index.html');
const shot = path.join(root, 'artifacts', 'editors.png');

function findBrowser() {
  const candidates = [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome'].filter(Boolean);
  for (const c of candidates) {
    const r = spawnSync('sh', ['-c', `command -v "${c}"`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) {
      return r.stdout.trim();
    }
  }
  return undefined;
}

if (!existsSync(page)) {
  console.error(`editors page missing: ${page} (run: npx webpack -c webpack.harness.config.ts)`);
  process.exit(1);
}
const browser = findBrowser();
if (!browser) {
  const msg = 'browser check skipped: no chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)';
  if (process.env.LOKAL_REQUIRE_BROWSER === '1') {
    console.error(msg);
    process.exit(1);
  }
  console.log(msg);
  process.exit(0);
}

const url = `file://${page}`;
// The page's scripts run in virtual time: 25 s is enough for Monaco to mount
// and costs a few real seconds.
const common = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=25000'];
const dom = execFileSync(browser, [...common, '--dump-dom', url], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'ignore'],
  timeout: 120000,
  maxBuffer: 64 << 20,
});
const m = /<pre id="harness-status" data-status="([^"]*)">([\s\S]*?)<\/pre>/.exec(dom);
if (!m) {
  console.error('editors page: no status element in the rendered page');
  process.exit(1);
}
const [, status, details] = m;
if (status !== 'rendered') {
  console.error(`editors page: status ${status}${details ? `\n${details}` : ''}`);
  process.exit(1);
}
for (const want of [
  'Label browser',
  'Resulting selector',
  'LogQL examples',
  'Syntax error at line 1',
  'Which files Lokal may read',
  'monaco-editor',
]) {
  if (!dom.includes(want)) {
    console.error(`editors page: expected ${JSON.stringify(want)} in the rendered page`);
    process.exit(1);
  }
}
execFileSync(browser, [...common, '--window-size=1280,2600', `--screenshot=${shot}`, url], {
  stdio: 'ignore',
  timeout: 120000,
});
if (!existsSync(shot)) {
  console.error('editors page: rendered, but no screenshot was written');
  process.exit(1);
}
console.log(`editors page rendered in ${path.basename(browser)}; screenshot: ${path.relative(root, shot)}`);
