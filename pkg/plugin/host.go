package plugin

import (
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/host"
)

// ID is the plugin's id in plugin.json.
const ID = "lokal-logql-datasource"

// HostOptions are the process-wide settings of the plugin.
type HostOptions = host.Options

// HostOptionsFromEnv reads the operator's controls from the environment
// Grafana gives the plugin process.
func HostOptionsFromEnv() HostOptions { return host.OptionsFromEnv() }

// Host is the plugin process's host: the stores its datasource instances
// share (see pkg/host), and the factory of those instances.
type Host struct {
	*host.Host
	log log.Logger
}

// NewHost returns a host with no open stores. Its datasources log through
// opts.Logger when it is one of the SDK's loggers, else the SDK's default.
func NewHost(opts HostOptions) *Host {
	lg, ok := opts.Logger.(log.Logger)
	if !ok {
		lg = log.DefaultLogger
	}
	if opts.Logger == nil {
		opts.Logger = lg
	}
	return &Host{Host: host.New(opts), log: lg}
}
