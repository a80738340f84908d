// Extends the scaffold's generated webpack config (.config/ is never edited).
//
// The repository's top-level plugin.json is the one source of truth shared by
// the Go build (Magefile) and this one: src/plugin.json is only a symlink to it
// so the generated config can read the plugin id, and the copy step below
// copies the top-level file itself into dist/.
import CopyWebpackPlugin from 'copy-webpack-plugin';
import path from 'path';
import type { Configuration } from 'webpack';

import grafanaConfig, { type Env } from './.config/webpack/webpack.config.ts';

const root = process.cwd();

const config = async (env: Env): Promise<Configuration> => {
  const base = await grafanaConfig(env);
  const plugins = (base.plugins ?? []).filter((p) => !(p instanceof CopyWebpackPlugin));
  plugins.push(
    new CopyWebpackPlugin({
      patterns: [
        { from: path.join(root, 'plugin.json'), to: '.' },
        { from: path.join(root, 'README.md'), to: '.', noErrorOnMissing: true },
        { from: path.join(root, 'CHANGELOG.md'), to: '.', noErrorOnMissing: true },
        { from: 'img/logo.svg', to: 'img/logo.svg' },
        { from: '**/query_help.md', to: '.', noErrorOnMissing: true },
      ],
    })
  );
  return {
    ...base,
    // One plugin, one entry: no need to glob the tree for nested plugin.json files.
    entry: { module: './module.ts' },
    output: {
      ...base.output,
      // The Go build writes the backend binaries and the lokal CLI into dist/ too.
      clean: { keep: /(.*?_(amd64|arm(64)?)(\.exe)?|go_plugin_build_manifest|^lokal(\.exe)?)$/ },
    },
    plugins,
  };
};

export default config;
