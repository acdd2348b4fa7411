package promclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
)

// fakePrometheus answers every request with status and body, and records the request.
type fakePrometheus struct {
	status int
	body   string
	got    *http.Request
	form   url.Values
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.got, f.form = r, r.Form
	w.WriteHeader(f.status)
	fmt.Fprint(w, f.body)
}

func newTestClient(t *testing.T, fake *fakePrometheus, method, prefix string, metrics *Metrics) *Client {
	t.Helper()
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	c, err := New(server.URL+prefix, server.Client(), method, metrics)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQuery(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      string
		wantErr   string
		wantIsAPI bool
	}{
		{
			name:   "vector",
			status: 200,
			body:   `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1700000000.5,"0.25"]}]}}`,
			want:   `{pod="a"} => 0.25 @[1700000000.5]`,
		},
		{
			name:   "scalar",
			status: 200,
			body:   `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`,
			want:   `scalar: 3 @[1700000000]`,
		},
		{
			name: "string results are refused", status: 200,
			body:    `{"status":"success","data":{"resultType":"string","result":[1700000000,"x"]}}`,
			wantErr: `unexpected result type "string"`,
		},
		{
			name: "bad query", status: 400,
			body:    `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`,
			wantErr: "prometheus query: bad_data: parse error at char 3", wantIsAPI: true,
		},
		{
			name: "unavailable without JSON", status: 503, body: "overloaded",
			wantErr: "prometheus query: HTTP 503: overloaded", wantIsAPI: true,
		},
		{
			name: "garbage", status: 200, body: "<html>",
			wantErr: "decoding answer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, &fakePrometheus{status: tt.status, body: tt.body}, "GET", "", nil)
			got, err := c.Query(context.Background(), "up", time.Unix(1700000000, 0))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				var apiErr *APIError
				if errors.As(err, &apiErr) != tt.wantIsAPI {
					t.Fatalf("errors.As(APIError) = %t, want %t", !tt.wantIsAPI, tt.wantIsAPI)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	const ok = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			fake := &fakePrometheus{status: 200, body: ok}
			c := newTestClient(t, fake, strings.ToLower(method), "/prom/global", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.Query(ctx, `sum(x{a="b"})`, time.UnixMilli(1565786045323)); err != nil {
				t.Fatal(err)
			}
			if fake.got.Method != method || fake.got.URL.Path != "/prom/global/api/v1/query" {
				t.Fatalf("request %s %s", fake.got.Method, fake.got.URL.Path)
			}
			if method == "POST" && (fake.got.URL.RawQuery != "" || fake.got.Header.Get("Content-Type") != "application/x-www-form-urlencoded") {
				t.Fatalf("POST must send a form body, got query %q content type %q", fake.got.URL.RawQuery, fake.got.Header.Get("Content-Type"))
			}
			if got := fake.form["query"]; len(got) != 1 || got[0] != `sum(x{a="b"})` {
				t.Fatalf("query param = %q", got)
			}
			if got := fake.form["time"]; len(got) != 1 || got[0] != "1565786045.323" {
				t.Fatalf("time param = %q", got)
			}
			// Float seconds: Prometheus rejects Go's "10.000s" form.
			timeout, err := strconv.ParseFloat(fake.form.Get("timeout"), 64)
			if err != nil || timeout <= 25 || timeout > 30 {
				t.Fatalf("timeout param = %q (%v), want the remaining ~30s", fake.form.Get("timeout"), err)
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tt := range []struct{ url, method, want string }{
		{"ftp://x", "GET", "scheme must be http or https"},
		{"http://x", "PUT", `method "PUT": use GET or POST`},
		{"http://[::1", "GET", "prometheus URL"},
	} {
		if _, err := New(tt.url, nil, tt.method, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %q) error = %v, want %q", tt.url, tt.method, err, tt.want)
		}
	}
}

func TestQueryRange(t *testing.T) {
	fake := &fakePrometheus{status: 200, body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"pod":"a"},"values":[[60,"1"],[120,"2"]]}]}}`}
	c := newTestClient(t, fake, "GET", "", nil)
	var sink MatrixSink
	if err := c.QueryRange(context.Background(), "x", Range{Start: time.Unix(60, 0), End: time.Unix(120, 0), Step: time.Minute}, &sink); err != nil {
		t.Fatal(err)
	}
	m := sink.Matrix
	if len(m) != 1 || len(m[0].Values) != 2 || m[0].Values[1].Value != 2 || m[0].Metric["pod"] != "a" {
		t.Fatalf("matrix = %v", m)
	}
	if fake.form["step"][0] != "60" || fake.form["start"][0] != "60.000" || fake.form["end"][0] != "120.000" {
		t.Fatalf("params = %v", fake.form)
	}
	if err := c.QueryRange(context.Background(), "x", Range{Start: time.Unix(60, 0), End: time.Unix(120, 0)}, &sink); err == nil {
		t.Fatal("a zero step must be refused")
	}
}

// TestStreamingStopsWhenTheSinkSaysSo: the answer is handed over one series at a time, and a
// sink's error (a caller's bound) stops decoding at once instead of reading the rest.
func TestStreamingStopsWhenTheSinkSaysSo(t *testing.T) {
	var body strings.Builder
	body.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"metric":{"pod":"p%d"},"values":[[60,"1"],[120,"2"]]}`, i)
	}
	body.WriteString(`]}}`)
	c := newTestClient(t, &fakePrometheus{status: 200, body: body.String()}, "GET", "", nil)
	errFull := errors.New("full")
	seen := 0
	err := c.QueryRange(context.Background(), "x", Range{Start: time.Unix(60, 0), End: time.Unix(120, 0), Step: time.Minute},
		SinkFunc(func(model.Metric, []model.SamplePair) error {
			if seen++; seen == 3 {
				return errFull
			}
			return nil
		}))
	if !errors.Is(err, errFull) || seen != 3 {
		t.Fatalf("error %v after %d series, want the sink's error after 3", err, seen)
	}
}

func TestQueryInstantAndResultTypes(t *testing.T) {
	tests := []struct {
		name, body string
		instant    bool
		want       string // series seen, or the error
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1.5,"2"]},{"metric":{},"value":[1.5,"NaN"]}]}}`, true, `{a="b"}@1500=2 {}@1500=NaN`},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[7,"3"]}}`, true, `{}@7000=3`},
		{"empty", `{"status":"success","data":{"resultType":"vector","result":[]}}`, true, ``},
		{"null result", `{"status":"success","data":{"resultType":"matrix","result":null}}`, false, ``},
		{"warnings kept apart", `{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[]},"infos":["i"]}`, true, ``},
		{"matrix asked for, vector answered", `{"status":"success","data":{"resultType":"vector","result":[]}}`, false, "unexpected result type"},
		{"vector asked for, matrix answered", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, true, "unexpected result type"},
		{"result before its type", `{"status":"success","data":{"result":[],"resultType":"vector"}}`, true, "result comes before resultType"},
		{"error status", `{"status":"error","errorType":"bad_data","error":"parse error"}`, true, "parse error"},
		{"no data", `{"status":"success"}`, true, "no data"},
		{"truncated", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]`, false, "decoding a series"},
		{"not JSON", `<html>`, true, "decoding answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, &fakePrometheus{status: 200, body: tc.body}, "GET", "", nil)
			var seen []string
			sink := SinkFunc(func(m model.Metric, samples []model.SamplePair) error {
				for _, s := range samples {
					seen = append(seen, fmt.Sprintf("%s@%d=%s", m, int64(s.Timestamp), s.Value))
				}
				return nil
			})
			var err error
			if tc.instant {
				err = c.QueryInstant(context.Background(), "x", time.Unix(1, 0), sink)
			} else {
				err = c.QueryRange(context.Background(), "x", Range{Start: time.Unix(0, 0), End: time.Unix(60, 0), Step: time.Minute}, sink)
			}
			got := strings.Join(seen, " ")
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) || (tc.want == "" && got != "") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSeriesStreams(t *testing.T) {
	fake := &fakePrometheus{status: 200, body: `{"status":"success","data":[
		{"__name__":"http_requests_total","namespace":"a","pod":"p1"},
		{"__name__":"container_cpu_usage_seconds_total","namespace":"a","pod":"p2","container":"c"}],
		"warnings":["slow"]}`}
	c := newTestClient(t, fake, "GET", "", nil)
	var seen []string
	err := c.Series(context.Background(), `{__name__=~".+"}`, time.Unix(100, 0), time.Unix(200, 0), func(name string, labels map[string]string) {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen = append(seen, name+strings.Join(keys, ","))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http_requests_totalnamespace,pod", "container_cpu_usage_seconds_totalcontainer,namespace,pod"}
	if strings.Join(seen, ";") != strings.Join(want, ";") {
		t.Fatalf("seen %q, want %q", seen, want)
	}
	if fake.form["match[]"][0] != `{__name__=~".+"}` || fake.form["start"][0] != "100.000" || fake.form["end"][0] != "200.000" {
		t.Fatalf("params = %v", fake.form)
	}

	for _, body := range []string{`{"status":"error","data":[]}`, `{"status":"success"}`, `{"status":"success","data":[{"__name__":1}]}`} {
		fake.body = body
		if err := c.Series(context.Background(), "x", time.Unix(0, 0), time.Unix(1, 0), func(string, map[string]string) {}); err == nil {
			t.Errorf("body %s: expected an error", body)
		}
	}
}

func TestMetricsCountOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	fake := &fakePrometheus{status: 200, body: `{"status":"success","data":{"resultType":"vector","result":[]}}`}
	c := newTestClient(t, fake, "GET", "", metrics)
	_, _ = c.Query(context.Background(), "x", time.Now())
	fake.status, fake.body = 422, `{"status":"error","errorType":"execution","error":"boom"}`
	_, _ = c.Query(context.Background(), "x", time.Now())
	if got := testutil.ToFloat64(metrics.failures.WithLabelValues("query", "api")); got != 1 {
		t.Fatalf("api failures = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(metrics.duration); got != 2 {
		t.Fatalf("duration series = %d, want 2 (success and error)", got)
	}
	// A transport failure: the server is gone.
	broken, _ := New("http://127.0.0.1:1", nil, "GET", metrics)
	if _, err := broken.Query(context.Background(), "x", time.Now()); err == nil {
		t.Fatal("expected a transport error")
	}
	if got := testutil.ToFloat64(metrics.failures.WithLabelValues("query", "transport")); got != 1 {
		t.Fatalf("transport failures = %v, want 1", got)
	}
}
