package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kapacitystack/kapacity/localcluster/stack"
	"github.com/kapacitystack/kapacity/test/poll"
)

var (
	adapterOnce sync.Once
	adapterErr  error
	adapter     *stack.Adapter
	// suiteCleanups run when the suites end, before the bed stops.
	suiteCleanups []func()
)

// useAdapter starts the adapter, registered as the APIService of all three metrics APIs, on first
// use; later tests (and benchmarks) share it. With KAPACITY_E2E_INSTALL=chart it runs as the
// chart's adapter (install_test.go).
func useAdapter(t testing.TB) *stack.Adapter {
	t.Helper()
	adapterOnce.Do(func() {
		var config string
		if config, adapterErr = stack.AdapterConfig(); adapterErr != nil {
			return
		}
		opts := stack.AdapterOptions{Config: config}
		if chartMode() {
			if opts.Chart, adapterErr = installChart(); adapterErr != nil {
				return
			}
		}
		adapter, adapterErr = stack.StartAdapterWith(context.Background(), bed, opts)
		if adapterErr == nil {
			suiteCleanups = append(suiteCleanups, adapter.Stop)
		}
	})
	if adapterErr != nil {
		t.Fatalf("starting the adapter: %v", adapterErr)
	}
	if err := adapter.Err(); err != nil {
		t.Fatal(err)
	}
	return adapter
}

// getRaw GETs an API path, with optional query parameters ("key=value"), through kube-apiserver.
func getRaw(ctx context.Context, path string, params ...string) ([]byte, error) {
	req := bed.Client.CoreV1().RESTClient().Get().AbsPath(path)
	for _, p := range params {
		key, value, _ := strings.Cut(p, "=")
		req = req.Param(key, value)
	}
	return req.DoRaw(ctx)
}

// waitRaw polls an API path until it answers 200 and accept approves the body.
func waitRaw(ctx context.Context, t *testing.T, timeout time.Duration, path string, accept func([]byte) bool, params ...string) []byte {
	t.Helper()
	var body []byte
	poll.Until(ctx, t, timeout, "GET "+path, func(ctx context.Context) (string, bool, error) {
		reqCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		b, err := getRaw(reqCtx, path, params...)
		if err != nil {
			return fmt.Sprintf("%v: %s", err, b), false, nil
		}
		body = b
		return string(b), accept(b), nil
	})
	return body
}
