package stack

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// SwitchableProxy forwards to Prometheus on a fixed loopback port and can be stopped and started
// again, so a test can make Prometheus unreachable for the adapter without disturbing the bed.
type SwitchableProxy struct {
	addr     string
	handler  http.Handler
	observer atomic.Pointer[func(*http.Request)]

	mu     sync.Mutex
	server *http.Server
}

// NewSwitchableProxy starts a proxy to target on a free loopback port.
func NewSwitchableProxy(target string) (*SwitchableProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	p := &SwitchableProxy{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if observe := p.observer.Load(); observe != nil {
			(*observe)(r)
		}
		proxy.ServeHTTP(w, r)
	})
	return p, p.Start()
}

// Observe has observe called with every request the proxy forwards, before forwarding it, until
// the returned stop is called: it tells a benchmark the exact query the adapter sent. observe runs
// on the serving goroutines, so it must be safe for concurrent use, and it must not read the body,
// which is still to be forwarded. One observer at a time: a later call replaces an earlier one.
func (p *SwitchableProxy) Observe(observe func(*http.Request)) (stop func()) {
	ptr := &observe
	p.observer.Store(ptr)
	return func() { p.observer.CompareAndSwap(ptr, nil) }
}

func (p *SwitchableProxy) URL() string { return "http://" + p.addr }

// Start serves again on the same address.
func (p *SwitchableProxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		return nil
	}
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	p.server = &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second}
	go func(s *http.Server) { _ = s.Serve(l) }(p.server)
	return nil
}

// Stop closes the listener and every connection: the adapter sees "connection refused".
func (p *SwitchableProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		_ = p.server.Close()
		p.server = nil
	}
}
