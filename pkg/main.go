// Command gpx_lokal is Lokal's Grafana backend plugin process: Grafana starts
// it and talks to it over go-plugin gRPC.
package main

import (
	"os"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/internal/parentwatch"
	"github.com/lokal-logs/lokal/pkg/plugin"
)

// orphanCloseTimeout bounds the flush when Grafana died without shutting
// the plugin down: then the process exits anyway.
const orphanCloseTimeout = 15 * time.Second

func main() {
	// One host per process: it shares stores between the instances of one
	// datasource so a settings change never waits for the old instance's lock.
	host := plugin.NewHost(plugin.HostOptionsFromEnv())
	// A Grafana killed outright (SIGKILL, the OOM killer) never shuts the
	// plugin down: exit with it, or this process would keep the stores
	// locked against the plugin process of the next Grafana.
	stopWatch, err := parentwatch.Watch(parentwatch.DefaultInterval, func() {
		log.DefaultLogger.Warn("Grafana, which started this plugin process, has exited: closing the stores and exiting")
		if !host.CloseWithin(orphanCloseTimeout) {
			log.DefaultLogger.Error("stores not closed in time, exiting anyway (nothing is lost: unflushed lines are read again)", "timeout", orphanCloseTimeout.String())
			os.Exit(1)
		}
		os.Exit(0)
	})
	if err != nil {
		log.DefaultLogger.Warn("no parent-death signal; checking for Grafana's exit every interval instead", "interval", parentwatch.DefaultInterval.String(), "error", err.Error())
	}
	err = datasource.Manage(plugin.ID, host.NewDatasource, datasource.ManageOpts{})
	stopWatch()
	// Manage returns when Grafana shuts the plugin down: stop tailing and
	// flush, so the next start has nothing to replay. (A kill -9 loses
	// nothing either: positions are only durable together with their lines.)
	host.Close()
	if err != nil {
		log.DefaultLogger.Error("serve plugin", "error", err.Error())
		os.Exit(1)
	}
}
