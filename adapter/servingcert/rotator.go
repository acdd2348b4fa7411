package servingcert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// Modes of the serving certificate.
const (
	// ModeSelfSigned: the adapter keeps a CA and a serving certificate in a Secret, serves the
	// certificate and publishes the CA in its APIServices.
	ModeSelfSigned = "self-signed"
	// ModeExternal: the serving certificate comes from --tls-cert-file/--tls-private-key-file
	// (cert-manager, or you) or is generated at each start in --cert-dir, and whoever issues it
	// registers its CA in the APIServices (cert-manager's CA injector).
	ModeExternal = "external"
)

// DefaultAPIServices are the APIServices the adapter serves.
var DefaultAPIServices = []string{
	"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io",
	"v1beta1.metrics.k8s.io", "v1alpha1.history.metrics.kapacitystack.io",
}

// Options configure the serving certificate.
type Options struct {
	Mode            string
	SecretNamespace string
	SecretName      string
	DNSNames        []string
	IPs             []string
	Validity        time.Duration
	CheckInterval   time.Duration
	// APIServices are the names of the APIServices whose caBundle the adapter keeps current.
	APIServices []string
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Mode, "serving-cert-mode", ModeExternal, `"self-signed": the adapter keeps a CA and its serving certificate in --serving-cert-secret-*, `+
		`renews them and publishes the CA as caBundle of --apiservices; "external": the certificate of --tls-cert-file/--tls-private-key-file `+
		`(or one generated at each start in --cert-dir), registered by whoever issues it`)
	fs.StringVar(&o.SecretNamespace, "serving-cert-secret-namespace", "kapacity-system", "namespace of the self-signed certificate Secret")
	fs.StringVar(&o.SecretName, "serving-cert-secret-name", "kapacity-adapter-cert", "name of the self-signed certificate Secret, shared by all replicas")
	fs.StringSliceVar(&o.DNSNames, "serving-cert-dns-names", []string{"kapacity-adapter.kapacity-system.svc"},
		"DNS names of the self-signed serving certificate (kube-apiserver verifies <service>.<namespace>.svc)")
	fs.StringSliceVar(&o.IPs, "serving-cert-ips", nil, "IP addresses of the self-signed serving certificate")
	fs.DurationVar(&o.Validity, "serving-cert-validity", 90*24*time.Hour, "lifetime of the self-signed serving certificate, renewed with a third left (the CA lasts three times as long)")
	fs.DurationVar(&o.CheckInterval, "serving-cert-check-interval", time.Hour, "how often the self-signed certificate is checked for renewal")
	fs.StringSliceVar(&o.APIServices, "apiservices", DefaultAPIServices, "APIServices whose caBundle the self-signed mode keeps current (missing ones, those of another Service and those RBAC does not let the adapter read are skipped)")
}

// Validate checks the options.
func (o *Options) Validate() []error {
	var errs []error
	switch o.Mode {
	case ModeExternal:
		return nil
	case ModeSelfSigned:
	default:
		return []error{fmt.Errorf("--serving-cert-mode must be %q or %q, got %q", ModeSelfSigned, ModeExternal, o.Mode)}
	}
	if o.SecretNamespace == "" || o.SecretName == "" {
		errs = append(errs, errors.New("--serving-cert-secret-namespace and --serving-cert-secret-name are required in self-signed mode"))
	}
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		errs = append(errs, errors.New("the self-signed certificate needs --serving-cert-dns-names or --serving-cert-ips"))
	}
	if _, err := o.parseIPs(); err != nil {
		errs = append(errs, err)
	}
	if o.Validity < time.Hour {
		errs = append(errs, fmt.Errorf("--serving-cert-validity %s is shorter than an hour", o.Validity))
	}
	if o.CheckInterval <= 0 || o.CheckInterval > o.Validity/3 {
		errs = append(errs, fmt.Errorf("--serving-cert-check-interval must be positive and at most a third of --serving-cert-validity"))
	}
	return errs
}

func (o *Options) parseIPs() ([]net.IP, error) {
	var out []net.IP
	for _, s := range o.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid --serving-cert-ips entry %q", s)
		}
		out = append(out, ip)
	}
	return out, nil
}

// Rotator keeps the self-signed certificate current in the Secret, in the certificate directory
// and in the APIServices.
type Rotator struct {
	opts        Options
	ips         []net.IP
	dir         string
	secrets     kubernetes.Interface
	apiServices aggregator.Interface
	now         func() time.Time
}

// NewRotator returns a rotator writing tls.crt and tls.key into dir.
func NewRotator(o Options, dir string, secrets kubernetes.Interface, apiServices aggregator.Interface) (*Rotator, error) {
	ips, err := o.parseIPs()
	if err != nil {
		return nil, err
	}
	return &Rotator{opts: o, ips: ips, dir: dir, secrets: secrets, apiServices: apiServices, now: time.Now}, nil
}

// CertFile and KeyFile are the files the API server serves from.
func (r *Rotator) CertFile() string { return filepath.Join(r.dir, CertKey) }
func (r *Rotator) KeyFile() string  { return filepath.Join(r.dir, KeyKey) }

// publishInterval is how often Run syncs when CheckInterval is longer: reading the Secret and the
// APIServices is cheap, and an APIService registered (or re-applied without its caBundle) after the
// adapter started must not wait hours for the bundle.
const publishInterval = time.Minute

// Run syncs every CheckInterval, at most every publishInterval, until ctx ends.
func (r *Rotator) Run(ctx context.Context) {
	ticker := time.NewTicker(min(r.opts.CheckInterval, publishInterval))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := r.Sync(ctx); err != nil {
			klog.ErrorS(err, "Checking the adapter's serving certificate")
		}
	}
}

// Sync renews the certificate if needed, stores it (a replica that loses the race adopts the
// winner's), writes it to the certificate directory and publishes the CA bundle.
func (r *Rotator) Sync(ctx context.Context) error {
	var bundle Bundle
	var err error
	for attempt := 0; ; attempt++ {
		bundle, err = r.store(ctx)
		if err == nil || attempt == 4 || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("creating the certificate directory: %w", err)
	}
	// The key first: the API server reloads when the certificate changes.
	if err := writeIfChanged(r.KeyFile(), bundle.Key); err != nil {
		return err
	}
	if err := writeIfChanged(r.CertFile(), bundle.Cert); err != nil {
		return err
	}
	return r.publish(ctx, bundle.CABundle)
}

// store reads the Secret, renews its bundle if needed and writes it back.
func (r *Rotator) store(ctx context.Context) (Bundle, error) {
	secrets := r.secrets.CoreV1().Secrets(r.opts.SecretNamespace)
	secret, err := secrets.Get(ctx, r.opts.SecretName, metav1.GetOptions{})
	missing := apierrors.IsNotFound(err)
	if err != nil && !missing {
		return Bundle{}, fmt.Errorf("reading the certificate Secret %s/%s: %w", r.opts.SecretNamespace, r.opts.SecretName, err)
	}
	var current Bundle
	if !missing {
		current = FromData(secret.Data)
	}
	renewed, changed, err := Renew(current, r.opts.DNSNames, r.ips, r.opts.Validity, r.now())
	if err != nil {
		return Bundle{}, err
	}
	switch {
	case missing:
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.opts.SecretName, Namespace: r.opts.SecretNamespace},
			Type:       corev1.SecretTypeOpaque, Data: renewed.Data(),
		}, metav1.CreateOptions{})
	case changed:
		secret.Data = renewed.Data()
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("storing the certificate in Secret %s/%s: %w", r.opts.SecretNamespace, r.opts.SecretName, err)
	}
	if changed {
		klog.InfoS("Issued the adapter's serving certificate", "secret", r.opts.SecretNamespace+"/"+r.opts.SecretName, "dnsNames", r.opts.DNSNames)
	}
	return renewed, nil
}

// publish sets caBundle (and clears insecureSkipTLSVerify) on each of the adapter's APIServices
// that exists and differs.
func (r *Rotator) publish(ctx context.Context, caBundle []byte) error {
	var errs []error
	for _, name := range r.opts.APIServices {
		svc, err := r.apiServices.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			klog.V(2).InfoS("APIService not registered; no caBundle to publish", "apiService", name)
			continue
		}
		if apierrors.IsForbidden(err) {
			// The installs grant get and patch only on the APIServices they register: one left to
			// metrics-server or KEDA is out of reach on purpose, and not the adapter's to trust.
			klog.V(2).InfoS("APIService not readable (RBAC grants only those this install registers); its caBundle is left alone", "apiService", name)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading APIService %s: %w", name, err))
			continue
		}
		if ns, name, ok := r.service(); ok && (svc.Spec.Service == nil || svc.Spec.Service.Namespace != ns || svc.Spec.Service.Name != name) {
			// E.g. v1beta1.metrics.k8s.io kept on metrics-server: not ours to trust.
			klog.V(2).InfoS("APIService served by another service; its caBundle is left alone", "apiService", name, "service", svc.Spec.Service)
			continue
		}
		if bytes.Equal(svc.Spec.CABundle, caBundle) && !svc.Spec.InsecureSkipTLSVerify {
			continue
		}
		patch, err := json.Marshal(map[string]any{"spec": map[string]any{"caBundle": caBundle, "insecureSkipTLSVerify": false}})
		if err != nil {
			return err
		}
		if _, err := r.apiServices.ApiregistrationV1().APIServices().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("publishing the CA bundle in APIService %s: %w", name, err))
			continue
		}
		klog.InfoS("Published the adapter's CA bundle", "apiService", name)
	}
	return errors.Join(errs...)
}

// service returns the Service the certificate is for, from its first <name>.<namespace>.svc DNS
// name: only APIServices backed by that Service get the adapter's CA.
func (r *Rotator) service() (namespace, name string, ok bool) {
	for _, dns := range r.opts.DNSNames {
		parts := strings.Split(strings.TrimSuffix(dns, ".cluster.local"), ".")
		if len(parts) == 3 && parts[2] == "svc" {
			return parts[1], parts[0], true
		}
	}
	return "", "", false
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
