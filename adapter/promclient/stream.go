package promclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// Sink receives a query answer while it is decoded, one series at a time, so that the answer is
// never held twice (as JSON and decoded) and a caller can stop an answer that grows past its
// bound. The metric and samples are the sink's to keep. An error stops decoding and is returned.
type Sink interface {
	Series(metric model.Metric, samples []model.SamplePair) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(metric model.Metric, samples []model.SamplePair) error

// Series implements Sink.
func (f SinkFunc) Series(metric model.Metric, samples []model.SamplePair) error {
	return f(metric, samples)
}

// MatrixSink collects an answer as a matrix.
type MatrixSink struct{ Matrix model.Matrix }

// Series implements Sink.
func (m *MatrixSink) Series(metric model.Metric, samples []model.SamplePair) error {
	m.Matrix = append(m.Matrix, &model.SampleStream{Metric: metric, Values: samples})
	return nil
}

// QueryRange runs a range query and hands each series of the answer to sink as it is decoded:
// memory holds one series of one answer at a time (Prometheus' 11,000-point limit bounds it),
// not the whole body. Sharding long ranges below that limit is the caller's business (see
// historyapi).
func (c *Client) QueryRange(ctx context.Context, query string, r Range, sink Sink) error {
	if r.Step <= 0 {
		return fmt.Errorf("range query step must be positive, got %s", r.Step)
	}
	params := url.Values{
		"query": {query},
		"start": {formatTime(r.Start)},
		"end":   {formatTime(r.End)},
		"step":  {strconv.FormatFloat(r.Step.Seconds(), 'f', -1, 64)},
	}
	return c.call(ctx, "query_range", params, func(body io.Reader) error { return streamResult(body, model.ValMatrix, sink) })
}

// QueryInstant runs an instant query evaluated at at and hands each sample of its vector (or its
// scalar, as one unlabelled series) to sink as it is decoded.
func (c *Client) QueryInstant(ctx context.Context, query string, at time.Time, sink Sink) error {
	params := url.Values{"query": {query}, "time": {formatTime(at)}}
	return c.call(ctx, "query", params, func(body io.Reader) error { return streamResult(body, model.ValNone, sink) })
}

// ErrWrongType marks an answer whose result type is not the one asked for (a template rendering a
// range vector, say): Prometheus answered, so it is a configuration error, not an outage.
var ErrWrongType = errors.New("unexpected result type")

// streamResult walks {"status":"success","data":{"resultType":...,"result":[...]}} token by
// token, decoding one element of result at a time. want is the result type a range query needs
// (ValNone accepts a vector or a scalar).
func streamResult(r io.Reader, want model.ValueType, sink Sink) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	status, sawData := "", false
	var errType, errMsg string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decoding answer: %w", err)
		}
		switch key {
		case "status":
			err = dec.Decode(&status)
		case "errorType":
			err = dec.Decode(&errType)
		case "error":
			err = dec.Decode(&errMsg)
		case "data":
			sawData = true
			err = streamData(dec, want, sink)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	if status != "success" {
		return fmt.Errorf("status %q: %s: %s", status, errType, errMsg)
	}
	if !sawData {
		return errors.New("answer has no data")
	}
	return nil
}

func streamData(dec *json.Decoder, want model.ValueType, sink Sink) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	var resultType model.ValueType
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decoding data: %w", err)
		}
		switch key {
		case "resultType":
			if err := dec.Decode(&resultType); err != nil {
				return fmt.Errorf("decoding resultType: %w", err)
			}
			if err := checkType(resultType, want); err != nil {
				return err
			}
		case "result":
			if resultType == model.ValNone {
				return errors.New("data: result comes before resultType")
			}
			if err := streamElements(dec, resultType, sink); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("decoding %v: %w", key, err)
			}
		}
	}
	return expectDelim(dec, '}')
}

func checkType(got, want model.ValueType) error {
	switch {
	case want == model.ValNone && (got == model.ValVector || got == model.ValScalar):
		return nil
	case got == want:
		return nil
	}
	return fmt.Errorf("result of type %s: %w", got, ErrWrongType)
}

func streamElements(dec *json.Decoder, resultType model.ValueType, sink Sink) error {
	if resultType == model.ValScalar {
		var s model.Scalar
		if err := dec.Decode(&s); err != nil {
			return fmt.Errorf("decoding scalar: %w", err)
		}
		return sink.Series(model.Metric{}, []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}})
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decoding result: %w", err)
	}
	if tok == nil { // "result": null is an empty answer
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("result: expected an array, got %v", tok)
	}
	for dec.More() {
		var element struct {
			Metric model.Metric       `json:"metric"`
			Values []model.SamplePair `json:"values"` // matrix
			Value  *model.SamplePair  `json:"value"`  // vector
		}
		if err := dec.Decode(&element); err != nil {
			return fmt.Errorf("decoding a series: %w", err)
		}
		if element.Metric == nil {
			element.Metric = model.Metric{}
		}
		samples := element.Values
		if resultType == model.ValVector && element.Value != nil {
			samples = []model.SamplePair{*element.Value}
		}
		if err := sink.Series(element.Metric, samples); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}
