package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/kapacitystack/kapacity/historyapi/grpcapi"
	"github.com/kapacitystack/kapacity/historyapi/httpapi"
	"github.com/kapacitystack/kapacity/historyapi/query"
)

// HistoryOptions are the flags of the history API (history.metrics.kapacitystack.io, always
// served) and of Kapacity's gRPC ProviderService (optional).
type HistoryOptions struct {
	MaxRange         time.Duration
	MaxPoints        int64
	MaxStep          time.Duration
	MaxSamples       int64
	MaxConcurrent    int
	ShardConcurrency int
	GRPCPort         int
	GRPCBindAddress  string
	GRPCTLS          grpcapi.TLSFiles
}

// AddFlags registers the options on fs.
func (o *HistoryOptions) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.MaxRange, "history-max-range", 0, "longest range a history query may ask for (0: no limit beyond --history-max-points)")
	fs.Int64Var(&o.MaxPoints, "history-max-points", query.DefaultMaxPoints, "most points per series a history range query may ask for")
	fs.Int64Var(&o.MaxSamples, "history-max-samples", query.DefaultMaxSamples, "most samples, over all series, one history answer may hold (16 bytes each); larger answers are stopped while they stream in, with a 400 naming this limit")
	fs.IntVar(&o.MaxConcurrent, "history-max-concurrent-queries", query.DefaultMaxConcurrent, "history queries answered at once; others wait for a turn (with --history-max-samples this bounds the memory of all history answers)")
	fs.DurationVar(&o.MaxStep, "history-max-step", query.DefaultMaxStep, "longest step a history range query may ask for")
	fs.IntVar(&o.ShardConcurrency, "history-shard-concurrency", 4, "Prometheus range queries one history query runs at once (long ranges are split into shards of at most 11,000 points)")
}

// AddGRPCFlags registers the options of Kapacity's gRPC ProviderService on fs.
func (o *HistoryOptions) AddGRPCFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.GRPCPort, "grpc-port", 0, "port of Kapacity's gRPC metric ProviderService (0: not served); every call needs a Kubernetes token (TokenReview) and is authorized per namespace like the history API")
	fs.StringVar(&o.GRPCBindAddress, "grpc-bind-address", "127.0.0.1", "address the gRPC port binds to; beyond loopback it needs --grpc-tls-cert-file and --grpc-tls-key-file")
	fs.StringVar(&o.GRPCTLS.CertFile, "grpc-tls-cert-file", "", "serving certificate of the gRPC port (with --grpc-tls-key-file), re-read when it changes; without it the port serves plaintext, on loopback only")
	fs.StringVar(&o.GRPCTLS.KeyFile, "grpc-tls-key-file", "", "serving key of the gRPC port")
	fs.StringVar(&o.GRPCTLS.ClientCAFile, "grpc-tls-client-ca-file", "", "also require gRPC clients to present a certificate signed by this CA")
}

// Validate checks the flags.
func (o *HistoryOptions) Validate() []error {
	var errs []error
	if o.MaxRange < 0 {
		errs = append(errs, fmt.Errorf("--history-max-range must not be negative"))
	}
	if o.MaxPoints <= 0 {
		errs = append(errs, fmt.Errorf("--history-max-points must be positive"))
	}
	if o.MaxConcurrent <= 0 {
		errs = append(errs, fmt.Errorf("--history-max-concurrent-queries must be positive"))
	}
	if o.MaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("--history-max-samples must be positive"))
	}
	if o.MaxStep < query.MinStep {
		errs = append(errs, fmt.Errorf("--history-max-step must be at least %s", query.MinStep))
	}
	if o.ShardConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("--history-shard-concurrency must be positive"))
	}
	if o.GRPCPort < 0 || o.GRPCPort > 65535 {
		errs = append(errs, fmt.Errorf("--grpc-port must be 0..65535, got %d", o.GRPCPort))
	}
	if (o.GRPCTLS.CertFile == "") != (o.GRPCTLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--grpc-tls-cert-file and --grpc-tls-key-file go together"))
	}
	if o.GRPCTLS.ClientCAFile != "" && o.GRPCTLS.CertFile == "" {
		errs = append(errs, fmt.Errorf("--grpc-tls-client-ca-file needs --grpc-tls-cert-file and --grpc-tls-key-file"))
	}
	if o.GRPCPort != 0 && !o.GRPCTLS.Enabled() && !grpcapi.IsLoopback(o.GRPCBindAddress) {
		errs = append(errs, fmt.Errorf("--grpc-bind-address %q is beyond loopback: the gRPC port needs --grpc-tls-cert-file and --grpc-tls-key-file (tokens travel with every call)", o.GRPCBindAddress))
	}
	return errs
}

// install serves the history API on server and, with --grpc-port, starts the gRPC
// service (bound now, so a taken port fails the start), whose callers' tokens are checked with
// TokenReview through client.
func (o *HistoryOptions) install(ctx context.Context, server *genericapiserver.GenericAPIServer, engine *query.Engine, client kubernetes.Interface) error {
	if err := httpapi.Install(server, engine); err != nil {
		return err
	}
	if o.GRPCPort == 0 {
		return nil
	}
	tokens, err := grpcapi.NewTokenReviewAuthenticator(client.AuthenticationV1())
	if err != nil {
		return err
	}
	serve, err := grpcapi.Listen(engine, grpcapi.ServerOptions{
		Address: net.JoinHostPort(o.GRPCBindAddress, strconv.Itoa(o.GRPCPort)), TLS: o.GRPCTLS, Authenticator: tokens,
	})
	if err != nil {
		return err
	}
	go func() {
		if err := serve(ctx); err != nil {
			klog.ErrorS(err, "The gRPC ProviderService stopped")
		}
	}()
	return nil
}
