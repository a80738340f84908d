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
	if err := datasource.Manage(plugin.ID, host.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("serve plugin", "error", err.Error())
		os.Exit(1)
	}
}
