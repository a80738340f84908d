//go:build grafanae2e

package grafanae2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/websocket"
)

// browser is a headless Chromium driven over the DevTools protocol: enough
// to open a page, run a script in it, collect its console errors and take
// a screenshot. It needs nothing but Debian's chromium package.
type browser struct {
	cmd  *exec.Cmd
	ws   *websocket.Conn
	mu   sync.Mutex
	next int
	wait map[int]chan cdpReply

	errMu  sync.Mutex
	errors []string
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	cdpReply
}

// findChromium returns the browser to use, or "" when there is none.
func findChromium() string {
	for _, c := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

// startBrowser starts Chromium with a fresh profile in dir and attaches to
// its first page.
func startBrowser(ctx context.Context, path, dir string) (*browser, error) {
	cmd := exec.CommandContext(ctx, path,
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--remote-debugging-port=0", "--remote-allow-origins=*",
		"--user-data-dir="+dir, "--window-size=1600,1000", "about:blank")
	// Its own process group, so close can end the renderers and helpers
	// too: they write to the profile until they exit.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("chromium did not print its DevTools address within 30 s")
	}
	// ws://127.0.0.1:PORT/devtools/browser/ID -> the page list at /json/list.
	host := strings.TrimPrefix(browserWS, "ws://")
	host = host[:strings.Index(host, "/")]
	var pageWS string
	for i := 0; i < 50 && pageWS == ""; i++ {
		resp, err := http.Get("http://" + host + "/json/list")
		if err == nil {
			var targets []struct {
				Type string `json:"type"`
				WS   string `json:"webSocketDebuggerUrl"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
			for _, t := range targets {
				if t.Type == "page" {
					pageWS = t.WS
					break
				}
			}
		}
		if pageWS == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if pageWS == "" {
		_ = cmd.Process.Kill()
		return nil, errors.New("chromium has no page target")
	}
	cfg, err := websocket.NewConfig(pageWS, "http://127.0.0.1/")
	if err != nil {
		return nil, err
	}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("attach to chromium page: %w", err)
	}
	ws.MaxPayloadBytes = 256 << 20
	b := &browser{cmd: cmd, ws: ws, wait: map[int]chan cdpReply{}}
	go b.read()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if _, err := b.call(m, nil); err != nil {
			b.close()
			return nil, err
		}
	}
	return b, nil
}

// read dispatches replies to their callers and keeps the page's errors.
func (b *browser) read() {
	for {
		var raw []byte
		if err := websocket.Message.Receive(b.ws, &raw); err != nil {
			b.mu.Lock()
			for id, ch := range b.wait {
				close(ch)
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
			continue
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			var p struct {
				Details struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			_ = json.Unmarshal(m.Params, &p)
			b.addError("exception: " + p.Details.Text + " " + p.Details.Exception.Description)
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
				Args []struct {
					Value       any    `json:"value"`
					Description string `json:"description"`
				} `json:"args"`
			}
			_ = json.Unmarshal(m.Params, &p)
			if p.Type == "error" {
				var parts []string
				for _, a := range p.Args {
					if a.Value != nil {
						parts = append(parts, fmt.Sprint(a.Value))
					} else {
						parts = append(parts, a.Description)
					}
				}
				b.addError("console.error: " + strings.Join(parts, " "))
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level string `json:"level"`
					Text  string `json:"text"`
					URL   string `json:"url"`
				} `json:"entry"`
			}
			_ = json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" {
				b.addError("log: " + p.Entry.Text + " " + p.Entry.URL)
			}
		}
	}
}

func (b *browser) addError(s string) {
	b.errMu.Lock()
	b.errors = append(b.errors, s)
	b.errMu.Unlock()
}

// takeErrors returns the errors seen since the last call.
func (b *browser) takeErrors() []string {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

func (b *browser) call(method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpReply, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := websocket.JSON.Send(b.ws, msg); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: browser connection closed", method)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s: no answer in 60 s", method)
	}
}

// navigate opens url in the page.
func (b *browser) navigate(url string) error {
	_, err := b.call("Page.navigate", map[string]any{"url": url})
	return err
}

// eval runs a JavaScript expression (awaiting a promise) and decodes its
// value into out.
func (b *browser) eval(expr string, out any) error {
	raw, err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true})
	if err != nil {
		return err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate %q: %s", expr, r.Exception.Text)
	}
	if out == nil || len(r.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// waitFor polls a JavaScript condition until it is true or the timeout
// passes.
func (b *browser) waitFor(cond string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := b.eval("Boolean("+cond+")", &ok)
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting for %s: %w", cond, err)
			}
			return fmt.Errorf("waiting for %s: still false after %s", cond, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// screenshot writes the page as a PNG.
func (b *browser) screenshot(path string) error {
	raw, err := b.call("Page.captureScreenshot", map[string]any{"format": "png"})
	if err != nil {
		return err
	}
	var r struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

func (b *browser) close() {
	if b.ws != nil {
		_ = b.ws.Close()
	}
	if b.cmd != nil && b.cmd.Process != nil {
		// Killing only the main process left its helpers writing to the
		// profile while the test removed it ("directory not empty").
		pgid := b.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = b.cmd.Wait()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
		}
	}
}

var _ io.Closer = (*websocket.Conn)(nil)
