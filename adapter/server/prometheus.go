package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// PrometheusOptions are the flags that say how to reach Prometheus, as prometheus-adapter users
// know them, plus basic auth, TLS client settings and a per-query timeout.
type PrometheusOptions struct {
	URL                string
	Method             string
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
	ServerName         string
	TokenFile          string
	BasicAuthUsername  string
	BasicAuthPassword  string // path of a file holding the password
	Headers            []string
	QueryTimeout       time.Duration
	// AuthInCluster and AuthConfig take the TLS settings and credentials for Prometheus from the
	// pod's in-cluster config or from a kubeconfig file (a Prometheus behind kube-rbac-proxy or the
	// API server's proxy), as prometheus-adapter's --prometheus-auth-incluster and
	// --prometheus-auth-config do.
	AuthInCluster bool
	AuthConfig    string
}

// AddFlags registers the options on fs.
func (o *PrometheusOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.URL, "prometheus-url", "http://localhost:9090", "base URL of the Prometheus HTTP API; a path prefix (e.g. /prom/global) is kept")
	fs.StringVar(&o.Method, "prometheus-verb", "GET", "HTTP method for queries: GET, or POST for very long queries")
	fs.StringVar(&o.CAFile, "prometheus-ca-file", "", "CA bundle to verify Prometheus' serving certificate")
	fs.StringVar(&o.CertFile, "prometheus-client-tls-cert-file", "", "client certificate for mutual TLS with Prometheus (with --prometheus-client-tls-key-file)")
	fs.StringVar(&o.KeyFile, "prometheus-client-tls-key-file", "", "client key for mutual TLS with Prometheus")
	fs.BoolVar(&o.InsecureSkipVerify, "prometheus-insecure-skip-tls-verify", false, "do not verify Prometheus' serving certificate (testing only)")
	fs.StringVar(&o.ServerName, "prometheus-tls-server-name", "", "server name expected in Prometheus' certificate, when it differs from the URL's host")
	fs.StringVar(&o.TokenFile, "prometheus-token-file", "", "file holding a bearer token for Prometheus; re-read on every request, so rotation works")
	fs.StringVar(&o.BasicAuthUsername, "prometheus-basic-auth-username", "", "basic-auth user name for Prometheus")
	fs.StringVar(&o.BasicAuthPassword, "prometheus-basic-auth-password-file", "", "file holding the basic-auth password for Prometheus")
	fs.StringArrayVar(&o.Headers, "prometheus-header", nil, "extra HTTP header for Prometheus requests as key=value; repeatable")
	fs.DurationVar(&o.QueryTimeout, "prometheus-query-timeout", 10*time.Second, "timeout of one Prometheus query (also sent to Prometheus as its query timeout)")
	fs.BoolVar(&o.AuthInCluster, "prometheus-auth-incluster", false, "authenticate to Prometheus with the pod's in-cluster credentials (its ServiceAccount token and the cluster's CA); ignored with --prometheus-ca-file, as in prometheus-adapter")
	fs.StringVar(&o.AuthConfig, "prometheus-auth-config", "", "kubeconfig file whose TLS settings and credentials are used for Prometheus; ignored with --prometheus-ca-file, as in prometheus-adapter")
}

// Validate reports contradictory or incomplete settings.
func (o *PrometheusOptions) Validate() []error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, fmt.Errorf("--prometheus-url is required"))
	}
	if m := strings.ToUpper(o.Method); m != http.MethodGet && m != http.MethodPost {
		errs = append(errs, fmt.Errorf("--prometheus-verb must be GET or POST, got %q", o.Method))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"))
	}
	if o.TokenFile != "" && o.BasicAuthUsername != "" {
		errs = append(errs, fmt.Errorf("--prometheus-token-file and --prometheus-basic-auth-username are alternatives: set one"))
	}
	if (o.BasicAuthUsername == "") != (o.BasicAuthPassword == "") {
		errs = append(errs, fmt.Errorf("--prometheus-basic-auth-username and --prometheus-basic-auth-password-file go together"))
	}
	if _, err := parseHeaders(o.Headers); err != nil {
		errs = append(errs, err)
	}
	if o.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-query-timeout must be positive, got %s", o.QueryTimeout))
	}
	if o.AuthInCluster && o.AuthConfig != "" {
		errs = append(errs, fmt.Errorf("--prometheus-auth-incluster and --prometheus-auth-config are alternatives: set one"))
	}
	return errs
}

// HTTPClient builds the HTTP client for Prometheus. Certificates and token files are re-read by
// prometheus/common when they change, so rotated credentials need no restart.
func (o *PrometheusOptions) HTTPClient() (*http.Client, error) {
	cfg := config.DefaultHTTPClientConfig
	cfg.TLSConfig = config.TLSConfig{
		CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile,
		InsecureSkipVerify: o.InsecureSkipVerify, ServerName: o.ServerName,
	}
	if o.TokenFile != "" {
		cfg.Authorization = &config.Authorization{Type: "Bearer", CredentialsFile: o.TokenFile}
	}
	if o.BasicAuthUsername != "" {
		cfg.BasicAuth = &config.BasicAuth{Username: o.BasicAuthUsername, PasswordFile: o.BasicAuthPassword}
	}
	headers, err := parseHeaders(o.Headers)
	if err != nil {
		return nil, err
	}
	if len(headers) > 0 {
		cfg.HTTPHeaders = &config.Headers{Headers: map[string]config.Header{}}
		for name, values := range headers {
			cfg.HTTPHeaders.Headers[name] = config.Header{Values: values}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus client settings: %w", err)
	}
	if o.AuthInCluster || o.AuthConfig != "" {
		if o.CAFile == "" {
			return o.kubeconfigClient(cfg)
		}
		klog.InfoS("--prometheus-ca-file is set: the kubeconfig credentials for Prometheus (--prometheus-auth-incluster, --prometheus-auth-config) are not used, as in prometheus-adapter")
	}
	client, err := config.NewClientFromConfig(cfg, "kapacity-adapter")
	if err != nil {
		return nil, fmt.Errorf("prometheus client: %w", err)
	}
	return client, nil
}

// kubeconfigClient is the client of --prometheus-auth-incluster and --prometheus-auth-config: the
// kubeconfig's transport (its CA, client certificate, token or exec credentials, refreshed as
// client-go does), with the headers, token file and basic auth of cfg on top; a token file or
// basic auth given by flag wins over the kubeconfig's credentials, as the token file does in
// prometheus-adapter.
func (o *PrometheusOptions) kubeconfigClient(cfg config.HTTPClientConfig) (*http.Client, error) {
	var restConfig *rest.Config
	var err error
	if o.AuthInCluster {
		if restConfig, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("--prometheus-auth-incluster: %w", err)
		}
	} else if restConfig, err = clientcmd.BuildConfigFromFlags("", o.AuthConfig); err != nil {
		return nil, fmt.Errorf("--prometheus-auth-config %s: %w", o.AuthConfig, err)
	}
	rt, err := rest.TransportFor(restConfig)
	if err != nil {
		return nil, fmt.Errorf("transport to Prometheus from the kubeconfig: %w", err)
	}
	if cfg.HTTPHeaders != nil {
		rt = config.NewHeadersRoundTripper(cfg.HTTPHeaders, rt)
	}
	if o.TokenFile != "" {
		rt = config.NewAuthorizationCredentialsRoundTripper("Bearer", config.NewFileSecret(o.TokenFile), rt)
	}
	if o.BasicAuthUsername != "" {
		rt = config.NewBasicAuthRoundTripper(config.NewInlineSecret(o.BasicAuthUsername), config.NewFileSecret(o.BasicAuthPassword), rt)
	}
	return &http.Client{Transport: rt}, nil
}

// parseHeaders reads key=value flags: split at the first "=", a bare key means an empty value,
// repeated keys accumulate (as prometheus-adapter does).
func parseHeaders(flags []string) (map[string][]string, error) {
	headers := http.Header{}
	for _, f := range flags {
		key, value, _ := strings.Cut(f, "=")
		if strings.TrimSpace(key) == "" {
			return nil, fmt.Errorf("--prometheus-header %q: want key=value", f)
		}
		headers.Add(key, value)
	}
	return headers, nil
}
