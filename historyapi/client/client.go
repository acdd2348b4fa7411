// Package client is the typed Go client of the history API, for the recommender: over HTTP
// through kube-apiserver (authenticated and authorized per namespace like any API call), or over
// the adapter's gRPC ProviderService.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
	"github.com/kapacitystack/kapacity/historyapi/grpcapi/metricpb"
	"github.com/kapacitystack/kapacity/historyapi/v1alpha1"
)

// Interface queries metric history. Errors from the HTTP client are Kubernetes API errors
// (apierrors.IsBadRequest, IsForbidden, IsNotFound, ...); from the gRPC client, gRPC statuses.
type Interface interface {
	// Latest returns the current value of each series, one point each.
	Latest(ctx context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error)
	// Range returns the series over r, both ends included.
	Range(ctx context.Context, q v1alpha1.Query, r v1alpha1.Range) ([]v1alpha1.Series, error)
}

// HTTP queries the history API through kube-apiserver.
type HTTP struct {
	rest rest.Interface
}

var _ Interface = (*HTTP)(nil)

// NewHTTP returns a client over restClient, whose base URL is kube-apiserver's (any client-go
// REST client works: requests use absolute paths).
func NewHTTP(restClient rest.Interface) *HTTP { return &HTTP{rest: restClient} }

// NewHTTPForConfig returns a client for a kube-apiserver client config.
func NewHTTPForConfig(config *rest.Config) (*HTTP, error) {
	cfg := rest.CopyConfig(config)
	cfg.GroupVersion = &v1alpha1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	c, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("history API client: %w", err)
	}
	return NewHTTP(c), nil
}

// Latest implements Interface.
func (c *HTTP) Latest(ctx context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error) {
	return c.do(ctx, q, nil)
}

// Range implements Interface.
func (c *HTTP) Range(ctx context.Context, q v1alpha1.Query, r v1alpha1.Range) ([]v1alpha1.Series, error) {
	return c.do(ctx, q, &r)
}

func (c *HTTP) do(ctx context.Context, q v1alpha1.Query, r *v1alpha1.Range) ([]v1alpha1.Series, error) {
	path, err := q.Path()
	if err != nil {
		return nil, err
	}
	req := c.rest.Get().AbsPath(path)
	for key, values := range q.Params(r) {
		for _, v := range values {
			req = req.Param(key, v)
		}
	}
	// Stream turns a Status answer into an API error (apierrors.IsBadRequest...) and hands a
	// successful body over unread, so that it is decoded series by series.
	body, err := req.Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	series, err := decodeSeriesList(body)
	if err != nil {
		return nil, fmt.Errorf("decoding the history API answer: %w", err)
	}
	return series, nil
}

// decodeSeriesList reads a SeriesList one series at a time: json.Decoder holds a whole value
// before decoding it, which for the list would be the entire answer.
func decodeSeriesList(r io.Reader) ([]v1alpha1.Series, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("expected an object, got %v: %w", tok, err)
	}
	series := []v1alpha1.Series{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key != "series" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if tok == nil {
			continue
		}
		if tok != json.Delim('[') {
			return nil, fmt.Errorf("series: expected an array, got %v", tok)
		}
		for dec.More() {
			var s v1alpha1.Series
			if err := dec.Decode(&s); err != nil {
				return nil, err
			}
			series = append(series, s)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	}
	return series, nil
}

// GRPC queries the adapter's gRPC ProviderService.
type GRPC struct {
	client metricpb.ProviderServiceClient
	closer interface{ Close() error } // the connection DialGRPC opened
}

var _ Interface = (*GRPC)(nil)

// NewGRPC returns a client over conn (from grpc.NewClient with the transport credentials the
// port needs, and a token: DialGRPC sets both up).
func NewGRPC(conn grpc.ClientConnInterface) *GRPC {
	return &GRPC{client: metricpb.NewProviderServiceClient(conn)}
}

// Latest implements Interface.
func (c *GRPC) Latest(ctx context.Context, q v1alpha1.Query) ([]v1alpha1.Series, error) {
	pq, err := grpcapi.ToProto(q)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.QueryLatest(ctx, &metricpb.QueryLatestRequest{Query: pq})
	if err != nil {
		return nil, err
	}
	return grpcapi.SamplesFromProto(resp.GetSamples()), nil
}

// Range implements Interface.
func (c *GRPC) Range(ctx context.Context, q v1alpha1.Query, r v1alpha1.Range) ([]v1alpha1.Series, error) {
	pq, err := grpcapi.ToProto(q)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Query(ctx, &metricpb.QueryRequest{
		Query: pq, Start: timestamppb.New(r.Start), End: timestamppb.New(r.End), Step: durationpb.New(r.Step),
	})
	if err != nil {
		return nil, err
	}
	return grpcapi.SeriesFromProto(resp.GetSeries()), nil
}
