// Bundles the editors' test page (src/harness) with everything it needs, so a
// headless browser can load it from disk with no Grafana server: React,
// @grafana/ui and Monaco are bundled here instead of provided by Grafana.
// Output goes to artifacts/harness, next to the screenshot the check takes.
import CopyWebpackPlugin from 'copy-webpack-plugin';
import path from 'path';
import webpack, { type Configuration } from 'webpack';

const root = process.cwd();

const config: Configuration = {
  mode: 'development',
  devtool: false,
  context: path.join(root, 'src'),
  entry: { harness: './harness/harness.tsx' },
  output: { path: path.join(root, 'artifacts', 'harness'), filename: '[name].js', clean: true, publicPath: '' },
  module: {
    rules: [
      {
        exclude: /node_modules/,
        test: /\.[tj]sx?$/,
        use: {
          loader: 'swc-loader',
          options: {
            jsc: {
              target: 'es2020',
              parser: { syntax: 'typescript', tsx: true },
              transform: { react: { runtime: 'classic' } },
            },
          },
        },
      },
      { test: /\.m?js$/, resolve: { fullySpecified: false } },
      { test: /\.css$/, use: ['style-loader', 'css-loader'] },
      { test: /\.(woff2?|ttf|eot|svg|png)$/, type: 'asset/resource' },
    ],
  },
  resolve: { extensions: ['.js', '.jsx', '.ts', '.tsx', '.mjs'] },
  plugins: [
    new webpack.DefinePlugin({ 'process.env.NODE_ENV': JSON.stringify('development') }),
    new CopyWebpackPlugin({ patterns: [{ from: 'harness/index.html', to: '.' }] }),
  ],
  performance: { hints: false },
};

export default config;
