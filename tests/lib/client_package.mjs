// The npm package of the client (clients/js): packed with `npm pack` (which
// copies the modules from web/ first) and installed into a scratch project,
// as an application would.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './cluster.mjs';

export const PACKAGE_DIR = path.join(REPO_ROOT, 'clients', 'js');
export const PACKAGE_FILES = ['sigstream.js', 'sigstream.d.ts', 'negotiation.js', 'negotiation.d.ts'];

/**
 * Packs the package and installs the tarball into a new project under
 * REPO_ROOT/build (inside the checkout, so that `import ... from 'ws'`
 * resolves to the checkout's node_modules as it would in an application
 * that installed ws). Returns {tarball, appDir, packed: [file names], remove()}.
 */
export function packAndInstall() {
  fs.mkdirSync(path.join(REPO_ROOT, 'build'), { recursive: true });
  const scratch = fs.mkdtempSync(path.join(REPO_ROOT, 'build', 'client-package-'));
  const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const packed = JSON.parse(npm(['pack', PACKAGE_DIR, '--pack-destination', scratch, '--json'], scratch));
  const tarball = path.join(scratch, packed[0].filename);
  const appDir = path.join(scratch, 'app');
  fs.mkdirSync(appDir);
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
  npm(['install', tarball, '--offline', '--no-audit', '--no-fund'], appDir);
  return {
    tarball,
    appDir,
    packed: packed[0].files.map((f) => f.path).sort(),
    remove: () => fs.rmSync(scratch, { recursive: true, force: true }),
  };
}
