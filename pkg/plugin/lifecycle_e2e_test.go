//go:build !windows

package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/lokal-logs/lokal/pkg/internal/parentwatch"
	"github.com/lokal-logs/lokal/pkg/store"
)

// standInEnv, set to the plugin executable's path, makes this test binary
// a stand-in for Grafana: it starts the plugin as Grafana does, says where
// the plugin serves, and waits to be killed.
const standInEnv = "LOKAL_E2E_GRAFANA_STAND_IN"

// orphanExitTimeout bounds how long a plugin whose Grafana was killed may
// take to exit. It is far above what exiting takes (a parent-death signal
// and a flush): only a plugin that never exits reaches it.
const orphanExitTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	if bin := os.Getenv(standInEnv); bin != "" {
		grafanaStandIn(bin)
	}
	os.Exit(m.Run())
}

// standInReport is what the stand-in tells the test: where its plugin
// serves, for the test to reattach.
type standInReport struct {
	Network string `json:"network"`
	Addr    string `json:"addr"`
	Pid     int    `json:"pid"`
}

// grafanaStandIn starts the plugin with go-plugin's client, prints a
// standInReport and blocks until the test kills it with SIGKILL.
func grafanaStandIn(bin string) {
	client := goplugin.NewClient(pluginClientConfig(exec.Command(bin)))
	addr, err := client.Start()
	rc := client.ReattachConfig()
	if err != nil || rc == nil {
		fmt.Fprintf(os.Stderr, "stand-in: start plugin: %v\n", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(standInReport{Network: addr.Network(), Addr: addr.String(), Pid: rc.Pid}); err != nil {
		os.Exit(2)
	}
	select {}
}

// TestPluginLifecycle runs the built plugin through what a real Grafana
// did to it: killed with SIGKILL while the plugin held its store, and a
// store another process holds.
func TestPluginLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds the plugin binary; skipped with -short")
	}
	bin := buildPlugin(t, t.TempDir())

	// Grafana killed with SIGKILL: its plugin process exits too and lets
	// go of the store, and the next Grafana's plugin opens it with every
	// line kept once.
	t.Run("exits when Grafana is killed", func(t *testing.T) {
		logs, dataDir, pc := lifecycleSetup(t)
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()

		standIn := exec.Command(os.Args[0], "-test.run=^$")
		standIn.Env = append(os.Environ(), standInEnv+"="+bin, "GF_PLUGIN_ALLOWED_PATHS="+logs, "GF_PLUGIN_DATA_PATH="+dataDir)
		standIn.Stderr = os.Stderr
		out, err := standIn.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := standIn.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = standIn.Process.Kill()
			_ = standIn.Wait()
		})
		var rep standInReport
		if err := json.NewDecoder(out).Decode(&rep); err != nil {
			t.Fatalf("the stand-in did not report its plugin: %v", err)
		}
		// Whatever happens below, no plugin process outlives the test.
		t.Cleanup(func() { _ = syscall.Kill(rep.Pid, syscall.SIGKILL) })
		addr, err := reattachAddr(rep)
		if err != nil {
			t.Fatal(err)
		}
		cfg := pluginClientConfig(nil)
		cfg.Reattach = &goplugin.ReattachConfig{Protocol: goplugin.ProtocolGRPC, ProtocolVersion: grpcplugin.ProtocolVersion, Addr: addr, Pid: rep.Pid}
		first := connectPlugin(t, cfg)
		waitStoredE2E(ctx, t, first.diag, pc, sampleLines)

		if err := standIn.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = standIn.Wait()
		killed := time.Now()
		deadline := killed.Add(orphanExitTimeout)
		for !parentwatch.Exited(rep.Pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d still runs %v after Grafana was killed: it keeps the store locked", rep.Pid, orphanExitTimeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("plugin process exited %v after Grafana was killed", time.Since(killed).Round(time.Millisecond))

		// The lock is free, and the lines the plugin still held in memory
		// were flushed on its way out (a plugin killed outright would have
		// left them to be read again).
		st, err := store.Open(filepath.Join(dataDir, "e2e"), store.Options{})
		if err != nil {
			t.Fatalf("store after the plugin exited: %v", err)
		}
		if in := st.Info(); in.Entries != sampleLines {
			t.Errorf("the exited plugin left %d entries on disk, want all %d flushed", in.Entries, sampleLines)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		second := startPlugin(t, bin, logs, dataDir)
		health := waitStoredE2E(ctx, t, second.diag, pc, sampleLines)
		if n := storedEntries(health); n != sampleLines {
			t.Errorf("after the restart the store holds %d entries, want %d (none lost, none twice)", n, sampleLines)
		}
	})

	// A store another process holds: health and queries say which pid
	// holds it, and the datasource heals by itself once it is let go.
	t.Run("waits for a locked store", func(t *testing.T) {
		logs, dataDir, pc := lifecycleSetup(t)
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		holder, err := store.Open(filepath.Join(dataDir, "e2e"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := startPlugin(t, bin, logs, dataDir)
		health, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
		if err != nil {
			t.Fatal(err)
		}
		wantPid := fmt.Sprintf("held by pid %d", os.Getpid())
		if health.Status != pluginv2.CheckHealthResponse_ERROR || !strings.Contains(health.Message, "waiting for the lock") || !strings.Contains(health.Message, wantPid) {
			t.Errorf("health while locked: %s %q, want an error saying %q", health.Status, health.Message, wantPid)
		}
		req := &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{{
			RefID: "A", JSON: json.RawMessage(`{"expr":"{job=\"cosyvoice3\"}"}`),
			TimeRange: backend.TimeRange{From: time.Now().Add(-time.Hour), To: time.Now()},
		}}}
		resp, err := p.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.Responses["A"]; r == nil || !strings.Contains(r.Error, wantPid) {
			t.Errorf("query while locked: %+v, want an error saying %q", r, wantPid)
		}
		if err := holder.Close(); err != nil {
			t.Fatal(err)
		}
		health = waitStoredE2E(ctx, t, p.diag, pc, sampleLines)
		if n := storedEntries(health); n != sampleLines {
			t.Errorf("once the lock was free the store holds %d entries, want %d", n, sampleLines)
		}
	})
}

// lifecycleSetup makes a log directory with the sample log, a data
// directory, and the plugin context of a datasource reading them into the
// store "e2e".
func lifecycleSetup(t *testing.T) (logs, dataDir string, pc backend.PluginContext) {
	t.Helper()
	tmp := t.TempDir()
	logs, dataDir = filepath.Join(tmp, "logs"), filepath.Join(tmp, "data")
	for _, d := range []string{logs, dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	writeSampleLogs(t, filepath.Join(logs, "cosyvoice.log"), now.Add(-30*time.Minute))
	jsonData, err := json.Marshal(map[string]any{
		"storage": map[string]any{"path": "e2e", "retention": "0s"},
		"scrape_configs": []any{map[string]any{
			"job_name": "cosyvoice3",
			"static_configs": []any{map[string]any{
				"labels": map[string]string{"job": "cosyvoice3", "__path__": filepath.Join(logs, "*.log")},
			}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return logs, dataDir, backend.PluginContext{
		OrgID:    1,
		PluginID: "lokal-logql-datasource",
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "lokal-lifecycle", Name: "Lokal", Type: "lokal-logql-datasource", JSONData: jsonData, Updated: now,
		},
	}
}

// reattachAddr turns the stand-in's report back into a net.Addr.
func reattachAddr(rep standInReport) (net.Addr, error) {
	switch rep.Network {
	case "unix":
		return &net.UnixAddr{Name: rep.Addr, Net: "unix"}, nil
	case "tcp":
		return net.ResolveTCPAddr("tcp", rep.Addr)
	}
	return nil, fmt.Errorf("stand-in reported address %s %q: unknown network", rep.Network, rep.Addr)
}
