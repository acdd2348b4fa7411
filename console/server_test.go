package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// startTestServer starts a console whose cluster calls go to a server that answers nothing
// useful: these tests exercise the guard, which answers before any cluster call.
func startTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":503}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Config = &rest.Config{Host: api.URL}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// noRedirect is a client that shows redirects instead of following them, and keeps no cookie.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestGuard(t *testing.T) {
	s := startTestServer(t, Options{})
	base := "http://" + s.Addr()
	cookie := s.cookie + "=" + s.token
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		header   map[string]string
		wantCode int
		wantBody string
	}{
		{name: "no token", path: "/", wantCode: http.StatusUnauthorized, wantBody: "open the URL"},
		{name: "wrong token", path: "/?token=nope", wantCode: http.StatusUnauthorized, wantBody: "wrong console token"},
		{name: "wrong cookie", path: "/api/v1/ihpas", header: map[string]string{"Cookie": s.cookie + "=x"}, wantCode: http.StatusUnauthorized},
		{name: "the printed URL sets the cookie and drops the token", path: "/?token=" + s.token, wantCode: http.StatusSeeOther},
		{name: "DNS rebinding: a foreign Host", path: "/", header: map[string]string{"Host": "evil.example:80", "Cookie": cookie}, wantCode: http.StatusMisdirectedRequest, wantBody: "not this console's address"},
		{name: "read-only", method: http.MethodPost, path: "/", header: map[string]string{"Cookie": cookie}, wantCode: http.StatusMethodNotAllowed},
		{name: "query bounded", path: "/?x=" + strings.Repeat("a", maxQueryBytes), header: map[string]string{"Cookie": cookie}, wantCode: http.StatusRequestURITooLong, wantBody: "the limit is 512"},
		{name: "namespace validated", path: "/api/v1/namespaces/Not_A_Namespace/ihpas/x", header: map[string]string{"Cookie": cookie}, wantCode: http.StatusBadRequest, wantBody: "namespace"},
		{name: "window validated", path: "/api/v1/namespaces/ns/ihpas/x/cost?window=1y", header: map[string]string{"Cookie": cookie}, wantCode: http.StatusBadRequest, wantBody: "choose 1h, 1d or 7d"},
		{name: "stylesheet served", path: "/static/console.css", header: map[string]string{"Cookie": cookie}, wantCode: http.StatusOK, wantBody: "svg .merged"},
		{name: "health without token", path: "/healthz", wantCode: http.StatusOK},
		{name: "localhost on the same port", path: "/healthz", header: map[string]string{"Host": "localhost:" + s.Addr()[strings.LastIndex(s.Addr(), ":")+1:]}, wantCode: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, base+tc.path, nil)
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", method, tc.path, resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if tc.wantCode == http.StatusSeeOther {
				if loc := resp.Header.Get("Location"); strings.Contains(loc, "token") {
					t.Errorf("redirect keeps the token in the URL: %s", loc)
				}
				c := resp.Header.Get("Set-Cookie")
				if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") {
					t.Errorf("token cookie %q is not HttpOnly and SameSite=Strict", c)
				}
			}
		})
	}
}

func TestGuardRecoversPanics(t *testing.T) {
	s := &Server{allowed: map[string]bool{"example.com": true}}
	h := s.guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("a panicking handler answered %d, want 500", rec.Code)
	}
}

func TestStartRefusesAnUnguardedPublicAddress(t *testing.T) {
	_, err := Start(context.Background(), Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}, Address: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--allowed-host") {
		t.Fatalf("listening on every interface without --allowed-host: %v, want an error naming --allowed-host", err)
	}
}

func TestForwardedTokenMode(t *testing.T) {
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`)
	}))
	defer api.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Options{Config: &rest.Config{Host: api.URL, BearerToken: "the-console's-own"}, ForwardedTokenHeader: "X-Forwarded-Access-Token"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(s.URL(), "token=") {
		t.Errorf("URL %s carries a token although the proxy authenticates", s.URL())
	}
	resp, body := get(t, "http://"+s.Addr()+"/api/v1/ihpas", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "X-Forwarded-Access-Token") {
		t.Fatalf("without the header: %d %s, want 401 naming the header", resp.StatusCode, body)
	}
	resp, body = get(t, "http://"+s.Addr()+"/api/v1/ihpas", map[string]string{"X-Forwarded-Access-Token": "alice-token"})
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("alice may list nothing, got 200 %s", body)
	}
	for _, a := range seen {
		if a != "Bearer alice-token" {
			t.Fatalf("the console called the API server with %q, want only alice's token", a)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no API call")
	}
}

func TestStartForDemo(t *testing.T) {
	api := httptest.NewServer(http.NotFoundHandler())
	defer api.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "`+api.URL+`"}}]
users: [{name: admin, user: {token: t}}]
contexts: [{name: demo, context: {cluster: demo, user: admin, namespace: demo}}]
current-context: demo
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := StartForDemo(ctx, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.Contains(s.URL(), "?token=") {
		t.Errorf("URL %s: want a loopback address with a token", s.URL())
	}
	if got := s.users.local.Namespaces; len(got) != 1 || got[0] != "demo" {
		t.Errorf("namespaces to try %v, want the context's demo", got)
	}
	cancel()
	if err := s.Wait(); err != nil {
		t.Errorf("stopping with its context: %v", err)
	}
}

func TestPagesRefreshThemselves(t *testing.T) {
	p, err := newPages()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		refresh time.Duration
		want    bool
	}{{30 * time.Second, true}, {0, false}} {
		s := &Server{opts: Options{Refresh: tc.refresh}, pages: p}
		rec := httptest.NewRecorder()
		s.render(rec, "list", "t", &ListData{}, nil)
		if got := strings.Contains(rec.Body.String(), `<meta http-equiv="refresh" content="30">`); got != tc.want {
			t.Errorf("refresh %s: meta refresh present %v, want %v", tc.refresh, got, tc.want)
		}
	}
}
