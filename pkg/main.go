// Command gpx_lokal is Lokal's Grafana backend plugin process: Grafana starts
// it and talks to it over go-plugin gRPC.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/plugin"
)

func main() {
	// One host per process: it shares stores between the instances of one
	// datasource so a settings change never waits for the old instance's lock.
	host := plugin.NewHost(plugin.HostOptionsFromEnv())
	err := datasource.Manage(plugin.ID, host.NewDatasource, datasource.ManageOpts{})
	// Manage returns when Grafana shuts the plugin down: stop tailing and
	// flush, so the next start has nothing to replay. (A kill -9 loses
	// nothing either: positions are only durable together with their lines.)
	host.Close()
	if err != nil {
		log.DefaultLogger.Error("serve plugin", "error", err.Error())
		os.Exit(1)
	}
}
