// Package console is `kapacity console`: a web UI, served by the binary, showing what the
// autoscaler thinks — the IHPAs a user can see, one IHPA's portraits, merged result, pods, gray
// change, stability checks and events, and what predictive scaling cost against a native HPA
// replayed on the same measured demand.
//
// It acts with the user's own credentials only (their kubeconfig, or in a cluster the bearer token
// an authenticating proxy forwards): every page is the user's own API calls, so RBAC filters what
// they see, and a namespace they cannot list does not appear. It has no state-changing endpoint.
// Pages are rendered on the server with html/template (every cluster-provided string escaped),
// charts are inline SVG, and the assets are embedded: it works offline, loads nothing from another
// origin and runs no script.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// Bounds of what a request may ask.
const (
	maxQueryBytes  = 512
	maxHeaderBytes = 16 << 10
	requestTimeout = 60 * time.Second
	// tokenCookiePrefix + the port names the token cookie: cookies are not separated by port,
	// so two consoles on one host (two kubeconfigs) must not overwrite each other's.
	tokenCookiePrefix = "kapacity-console-token-"
	tokenParam        = "token"
	maxRefreshSeconds = 3600
)

// Options configure a console.
type Options struct {
	// Config is the user's client configuration (their kubeconfig). In forwarded-token mode only
	// its server address and CA are used.
	Config *rest.Config
	// Address is where to listen; "127.0.0.1:0" (a free loopback port) by default.
	Address string
	// AllowedHosts are Host header values accepted besides the listening address (and localhost
	// on its port): the names an authenticating proxy or a port-forward reaches it by.
	AllowedHosts []string
	// Namespaces are tried when the user may neither list IHPAs cluster-wide nor list namespaces.
	Namespaces []string
	// ForwardedTokenHeader, when set, makes every request act with the bearer token in that header
	// (an authenticating proxy in front of the console fills it) instead of Config's credentials;
	// the per-start URL token is then not required, the proxy authenticates.
	ForwardedTokenHeader string
	// NoHistory turns off the history API reads (actual pods, traffic, cost).
	NoHistory bool
	// Refresh is how often pages reload themselves (0: never).
	Refresh time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is a running console.
type Server struct {
	opts    Options
	token   string
	cookie  string // the token cookie's name
	srv     *http.Server
	ln      net.Listener
	done    chan error
	pages   *pages
	users   *userClusters
	costs   *costCache
	allowed map[string]bool
}

// Start listens and serves until ctx ends or Close is called. The console's address and its
// per-start token are in URL.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("console: no client configuration")
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh < 0 || opts.Refresh > maxRefreshSeconds*time.Second {
		return nil, fmt.Errorf("console: --refresh %s: must be between 0 and %ds", opts.Refresh, maxRefreshSeconds)
	}
	host, _, err := net.SplitHostPort(opts.Address)
	if err != nil {
		return nil, fmt.Errorf("console: --address %q: %w", opts.Address, err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && opts.ForwardedTokenHeader == "" && len(opts.AllowedHosts) == 0 {
		return nil, fmt.Errorf("console: --address %q is not a loopback address: behind a proxy, name the host it is reached by with --allowed-host", opts.Address)
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, pages: p, done: make(chan error, 1), costs: newCostCache()}
	if s.users, err = newUserClusters(opts); err != nil {
		return nil, err
	}
	if opts.ForwardedTokenHeader == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		s.token = hex.EncodeToString(b)
	}
	s.ln, err = net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("console: listening on %s: %w", opts.Address, err)
	}
	port := strconv.Itoa(s.ln.Addr().(*net.TCPAddr).Port)
	s.cookie = tokenCookiePrefix + port
	s.allowed = map[string]bool{s.ln.Addr().String(): true, "localhost:" + port: true, "127.0.0.1:" + port: true, "[::1]:" + port: true}
	for _, h := range opts.AllowedHosts {
		s.allowed[strings.ToLower(h)] = true
	}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      requestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { s.done <- s.srv.Serve(s.ln) }()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return s, nil
}

// URL is the address to open, with the per-start token when one is required.
func (s *Server) URL() string {
	u := "http://" + s.ln.Addr().String() + "/"
	if s.token != "" {
		u += "?" + tokenParam + "=" + s.token
	}
	return u
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// Wait returns when the server has stopped.
func (s *Server) Wait() error {
	err := <-s.done
	s.done <- err
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.listPage)
	mux.HandleFunc("GET /ihpas/{namespace}/{name}", s.detailPage)
	mux.HandleFunc("GET /ihpas/{namespace}/{name}/cost", s.costPage)
	mux.HandleFunc("GET /api/v1/ihpas", s.listAPI)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/ihpas/{name}", s.detailAPI)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/ihpas/{name}/cost", s.costAPI)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	return s.guard(mux)
}

// guard is every request's door: panics recovered, strict headers, the Host checked (DNS
// rebinding), read-only methods, a bounded query, and the per-start token (CSRF and other local
// users) unless an authenticating proxy forwards the user's token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				klog.ErrorS(fmt.Errorf("%v", v), "console: panic serving a request", "path", r.URL.Path)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !s.allowed[strings.ToLower(r.Host)] {
			http.Error(w, fmt.Sprintf("host %q is not this console's address: open the URL it printed (or start it with --allowed-host %s)", r.Host, r.Host), http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		if len(r.URL.RawQuery) > maxQueryBytes {
			http.Error(w, fmt.Sprintf("query string of %d bytes: the limit is %d", len(r.URL.RawQuery), maxQueryBytes), http.StatusRequestURITooLong)
			return
		}
		if s.token != "" && r.URL.Path != "/healthz" {
			if given := r.URL.Query().Get(tokenParam); given != "" {
				if !s.tokenOK(given) {
					http.Error(w, "wrong console token: open the URL `kapacity console` printed", http.StatusUnauthorized)
					return
				}
				// Keep the token in a cookie only this origin sends, and drop it from the URL.
				http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
				q := r.URL.Query()
				q.Del(tokenParam)
				u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
				http.Redirect(w, r, u.String(), http.StatusSeeOther)
				return
			}
			c, err := r.Cookie(s.cookie)
			if err != nil || !s.tokenOK(c.Value) {
				http.Error(w, "no console token: open the URL `kapacity console` printed (it carries a token made at start)", http.StatusUnauthorized)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) tokenOK(given string) bool {
	return subtle.ConstantTimeCompare([]byte(given), []byte(s.token)) == 1
}
