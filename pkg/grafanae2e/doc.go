// Package grafanae2e checks Lokal inside a real Grafana 12.4, the way a user
// installs and uses it: dist/ in Grafana's plugins directory, provisioning/
// as shipped, queries through Grafana's API, alert rules evaluated by
// Grafana, live tail through Grafana Live, and the UI in headless Chromium.
//
// Grafana is AGPL and is never a dependency: build-grafana.sh builds it from
// a fetched source snapshot into a cache outside the checkout, and the check
// (`go tool mage grafanaE2E`, which runs this package's tests with the
// grafanae2e build tag) starts that binary as a separate process. Without
// LOKAL_GRAFANA_HOME the check skips with one line.
package grafanae2e
