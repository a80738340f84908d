// force timezone to UTC so date rendering in tests does not depend on the machine
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

const swc = base.transform['^.+\\.(t|j)sx?$'];

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  // Grafana 12's packages pull in ES-module-only dependencies (.mjs), as do
  // the lezer grammar and yaml: compile them too.
  transform: { ...base.transform, '^.+\\.mjs$': swc },
  // The machine is shared and busy: a slow render is not a failure.
  testTimeout: 30000,
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, '@grafana/lezer-logql', '@lezer', 'yaml'])],
};
