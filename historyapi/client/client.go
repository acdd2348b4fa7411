// Package client is the typed Go client of the history API, for the recommender: over HTTP
// through kube-apiserver (authenticated and authorized per namespace like any API call), or over
// the adapter's gRPC ProviderService.
package client

import (
	"context"
	"encoding/json"
	"fmt"

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
	// Result.Error, unlike DoRaw, decodes a Status answer into an API error (apierrors.IsBadRequest...).
	result := req.Do(ctx)
	if err := result.Error(); err != nil {
		return nil, err
	}
	body, err := result.Raw()
	if err != nil {
		return nil, err
	}
	var list v1alpha1.SeriesList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding the history API answer: %w", err)
	}
	return list.Series, nil
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
