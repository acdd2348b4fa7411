// Package promclient is the adapter's Prometheus HTTP API client: instant and range queries, and a
// streaming series listing that never holds a whole /api/v1/series answer in memory.
//
// It is written against the HTTP API rather than client_golang's api/v1 because discovery must
// stay within bounded memory on 100k+ series (client_golang decodes every label set first), and
// because every call must report latency and errors on the adapter's own /metrics.
package promclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Querier is what the providers need from Prometheus; tests substitute fakes.
type Querier interface {
	Query(ctx context.Context, query string, at time.Time) (model.Value, error)
	Series(ctx context.Context, match string, start, end time.Time, visit SeriesVisitor) error
}

// Streamer is what history queries need: answers decoded series by series (see Sink).
type Streamer interface {
	QueryInstant(ctx context.Context, query string, at time.Time, sink Sink) error
	QueryRange(ctx context.Context, query string, r Range, sink Sink) error
}

// Range is the time span and resolution of a range query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// SeriesVisitor receives one series of a /api/v1/series answer: its metric name and its other
// label names and values. The maps are reused between calls: copy what you keep.
type SeriesVisitor func(name string, labels map[string]string)

// Client talks to one Prometheus-compatible server.
type Client struct {
	base    *url.URL
	http    *http.Client
	method  string
	metrics *Metrics
}

// New returns a client for the server at base (path prefixes such as /prom/global are kept).
// method is GET or POST (POST sends the parameters form-encoded; needed for very long queries).
// metrics may be nil.
func New(base string, httpClient *http.Client, method string, metrics *Metrics) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus URL %q: scheme must be http or https", base)
	}
	method = strings.ToUpper(method)
	if method != http.MethodGet && method != http.MethodPost {
		return nil, fmt.Errorf("prometheus HTTP method %q: use GET or POST", method)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: u, http: httpClient, method: method, metrics: metrics}, nil
}

// APIError is an error answer from Prometheus (bad query, timeout, unavailable, ...).
type APIError struct {
	Endpoint  string
	Status    int
	ErrorType string
	Message   string
}

func (e *APIError) Error() string {
	if e.ErrorType == "" {
		return fmt.Sprintf("prometheus %s: HTTP %d: %s", e.Endpoint, e.Status, e.Message)
	}
	return fmt.Sprintf("prometheus %s: %s: %s", e.Endpoint, e.ErrorType, e.Message)
}

// Query runs an instant query evaluated at at.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (model.Value, error) {
	params := url.Values{"query": {query}, "time": {formatTime(at)}}
	var result queryData
	if err := c.call(ctx, "query", params, func(r io.Reader) error { return decodeData(r, &result) }); err != nil {
		return nil, err
	}
	return result.value()
}

// Series lists the series matching match with a sample in [start, end], streaming each one to
// visit as it is decoded. Both bounds are always sent: back-ends such as Thanos treat a missing end
// as "everything".
func (c *Client) Series(ctx context.Context, match string, start, end time.Time, visit SeriesVisitor) error {
	params := url.Values{"match[]": {match}, "start": {formatTime(start)}, "end": {formatTime(end)}}
	return c.call(ctx, "series", params, func(r io.Reader) error { return streamSeries(r, visit) })
}

// call performs one API request and hands a successful body to decode.
func (c *Client) call(ctx context.Context, endpoint string, params url.Values, decode func(io.Reader) error) (err error) {
	began := time.Now()
	defer func() { c.metrics.observe(endpoint, began, err) }()

	if deadline, ok := ctx.Deadline(); ok {
		// The time left, not the time since the deadline (a long-standing prometheus-adapter bug),
		// in float seconds: the one form every Prometheus version parses.
		if remaining := time.Until(deadline); remaining > 0 {
			params.Set("timeout", strconv.FormatFloat(remaining.Seconds(), 'f', 3, 64))
		}
	}
	u := *c.base
	u.Path = path.Join(c.base.Path, "/api/v1/", endpoint)
	var req *http.Request
	if c.method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(params.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		u.RawQuery = params.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return fmt.Errorf("prometheus %s: building request: %w", endpoint, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readAPIError(endpoint, resp)
	}
	if err := decode(resp.Body); err != nil {
		return fmt.Errorf("prometheus %s: %w", endpoint, err)
	}
	return nil
}

// readAPIError turns a non-2xx answer into an APIError, with Prometheus' own message when the body
// is the API's JSON envelope.
func readAPIError(endpoint string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	apiErr := &APIError{Endpoint: endpoint, Status: resp.StatusCode}
	var envelope struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Error != "" {
		apiErr.ErrorType, apiErr.Message = envelope.ErrorType, envelope.Error
	} else {
		apiErr.Message = strings.TrimSpace(string(body))
		if apiErr.Message == "" {
			apiErr.Message = resp.Status
		}
	}
	return apiErr
}

// queryData is the data member of a query or query_range answer.
type queryData struct {
	ResultType model.ValueType `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

func (d *queryData) value() (model.Value, error) {
	switch d.ResultType {
	case model.ValVector:
		var v model.Vector
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return nil, fmt.Errorf("decoding vector: %w", err)
		}
		return v, nil
	case model.ValMatrix:
		var m model.Matrix
		if err := json.Unmarshal(d.Result, &m); err != nil {
			return nil, fmt.Errorf("decoding matrix: %w", err)
		}
		return m, nil
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(d.Result, &s); err != nil {
			return nil, fmt.Errorf("decoding scalar: %w", err)
		}
		return &s, nil
	default:
		return nil, fmt.Errorf("unexpected result type %q", d.ResultType)
	}
}

// decodeData decodes the {"status":"success","data":...} envelope into data.
func decodeData(r io.Reader, data any) error {
	var envelope struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.NewDecoder(r).Decode(&envelope); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("status %q: %s: %s", envelope.Status, envelope.ErrorType, envelope.Error)
	}
	if err := json.Unmarshal(envelope.Data, data); err != nil {
		return fmt.Errorf("decoding data: %w", err)
	}
	return nil
}

// streamSeries walks {"status":"success","data":[{labels}, ...]} token by token, so memory stays
// proportional to one series, not to the answer.
func streamSeries(r io.Reader, visit SeriesVisitor) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	status, sawData := "", false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decoding series answer: %w", err)
		}
		switch key {
		case "status":
			if err := dec.Decode(&status); err != nil {
				return fmt.Errorf("decoding status: %w", err)
			}
		case "data":
			sawData = true
			if err := streamSeriesData(dec, visit); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("decoding %v: %w", key, err)
			}
		}
	}
	if status != "success" {
		return fmt.Errorf("series answer status %q", status)
	}
	if !sawData {
		return errors.New("series answer has no data")
	}
	return nil
}

func streamSeriesData(dec *json.Decoder, visit SeriesVisitor) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decoding series data: %w", err)
	}
	if tok == nil { // "data": null is an empty answer
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("series data: expected an array, got %v", tok)
	}
	labels := map[string]string{}
	for dec.More() {
		clear(labels)
		if err := dec.Decode(&labels); err != nil {
			return fmt.Errorf("decoding a series: %w", err)
		}
		name := labels[model.MetricNameLabel]
		delete(labels, model.MetricNameLabel)
		visit(name, labels)
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	if tok != want {
		return fmt.Errorf("decoding answer: expected %q, got %v", want, tok)
	}
	return nil
}

// formatTime renders t as Prometheus expects: Unix seconds with millisecond precision.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}
