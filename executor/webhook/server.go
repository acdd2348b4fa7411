package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Certificate modes.
const (
	// CertModeSelfSigned: the manager keeps a CA and a serving certificate in a Secret, renews
	// them, writes them to the certificate directory and puts the CA in the webhook
	// configuration's caBundle.
	CertModeSelfSigned = "self-signed"
	// CertModeExternal: the certificate directory is filled by someone else (cert-manager with a
	// mounted Secret, and its CA injector for the caBundle).
	CertModeExternal = "external"
)

// Options configure the webhook server and its certificate.
type Options struct {
	// Port is the HTTPS port; 0 disables the webhook.
	Port int
	// Host is the listen address; empty means all.
	Host    string
	CertDir string
	// CertMode is CertModeSelfSigned or CertModeExternal.
	CertMode string
	// SecretNamespace and SecretName locate the self-signed certificate Secret, shared by all
	// replicas so that they serve certificates of one CA.
	SecretNamespace, SecretName string
	// ConfigurationName is the MutatingWebhookConfiguration whose caBundle is kept current.
	ConfigurationName string
	// ValidatingConfigurationName is the ValidatingWebhookConfiguration (of Kapacity's resources)
	// whose caBundle is kept current.
	ValidatingConfigurationName string
	// DNSNames and IPs are the serving certificate's subject alternative names.
	DNSNames []string
	IPs      []string
	// Validity is the serving certificate's lifetime; it is renewed with a third left.
	Validity time.Duration
	// CheckInterval is how often the certificate is checked.
	CheckInterval time.Duration
}

// DefaultOptions are the defaults of a deployment in kapacity-system.
func DefaultOptions() Options {
	return Options{
		Port:              9443,
		CertDir:           filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs"),
		CertMode:          CertModeSelfSigned,
		SecretNamespace:   "kapacity-system",
		SecretName:        "kapacity-webhook-cert",
		ConfigurationName: "kapacity-pod-webhook",
		DNSNames:          []string{"kapacity-webhook", "kapacity-webhook.kapacity-system", "kapacity-webhook.kapacity-system.svc", "kapacity-webhook.kapacity-system.svc.cluster.local"},
		Validity:          365 * 24 * time.Hour,
		CheckInterval:     time.Hour,

		ValidatingConfigurationName: "kapacity-validating-webhook",
	}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Port, "webhook-port", o.Port, "HTTPS port of the pod webhook (0 disables the webhook)")
	fs.StringVar(&o.Host, "webhook-host", o.Host, "listen address of the pod webhook (default: all)")
	fs.StringVar(&o.CertDir, "webhook-cert-dir", o.CertDir, "directory of the webhook's tls.crt and tls.key")
	fs.StringVar(&o.CertMode, "webhook-cert-mode", o.CertMode, `"self-signed": the manager issues, rotates and publishes the certificate; "external": cert-manager (or you) provides it in --webhook-cert-dir`)
	fs.StringVar(&o.SecretNamespace, "webhook-cert-secret-namespace", o.SecretNamespace, "namespace of the self-signed certificate Secret")
	fs.StringVar(&o.SecretName, "webhook-cert-secret-name", o.SecretName, "name of the self-signed certificate Secret")
	fs.StringVar(&o.ConfigurationName, "webhook-configuration-name", o.ConfigurationName, "MutatingWebhookConfiguration whose caBundle the self-signed mode keeps current")
	fs.StringVar(&o.ValidatingConfigurationName, "webhook-validating-configuration-name", o.ValidatingConfigurationName, "ValidatingWebhookConfiguration whose caBundle the self-signed mode keeps current")
	fs.StringSliceVar(&o.DNSNames, "webhook-cert-dns-names", o.DNSNames, "DNS names of the self-signed serving certificate")
	fs.StringSliceVar(&o.IPs, "webhook-cert-ips", o.IPs, "IP addresses of the self-signed serving certificate")
	fs.DurationVar(&o.Validity, "webhook-cert-validity", o.Validity, "lifetime of the self-signed serving certificate (renewed with a third left)")
	fs.DurationVar(&o.CheckInterval, "webhook-cert-check-interval", o.CheckInterval, "how often the self-signed certificate is checked for renewal")
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Port == 0 {
		return nil
	}
	var errs []error
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d is out of range", o.Port))
	}
	switch o.CertMode {
	case CertModeExternal:
	case CertModeSelfSigned:
		if o.SecretNamespace == "" || o.SecretName == "" {
			errs = append(errs, errors.New("--webhook-cert-secret-namespace and --webhook-cert-secret-name are required in self-signed mode"))
		}
		if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
			errs = append(errs, errors.New("the self-signed certificate needs --webhook-cert-dns-names or --webhook-cert-ips"))
		}
		if _, err := o.ips(); err != nil {
			errs = append(errs, err)
		}
		if o.Validity < time.Minute {
			errs = append(errs, fmt.Errorf("--webhook-cert-validity %s is too short", o.Validity))
		}
		if o.CheckInterval <= 0 {
			errs = append(errs, errors.New("--webhook-cert-check-interval must be positive"))
		}
	default:
		errs = append(errs, fmt.Errorf("--webhook-cert-mode must be %q or %q, got %q", CertModeSelfSigned, CertModeExternal, o.CertMode))
	}
	return errors.Join(errs...)
}

func (o *Options) ips() ([]net.IP, error) {
	out := make([]net.IP, 0, len(o.IPs))
	for _, s := range o.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid --webhook-cert-ips entry %q", s)
		}
		out = append(out, ip)
	}
	return out, nil
}

// Server returns the webhook server (nil when disabled) and, in self-signed mode, a runnable that
// renews the certificate. The certificate is made ready before it returns, because the server
// loads it when it starts.
func (o *Options) Server(cfg *rest.Config) (ctrlwebhook.Server, manager.Runnable, error) {
	if o.Port == 0 {
		return nil, nil, nil
	}
	server := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir})
	if o.CertMode != CertModeSelfSigned {
		return server, nil, nil
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ips, err := o.ips()
	if err != nil {
		return nil, nil, err
	}
	r := &Rotator{Kube: kube, Options: *o, ipAddrs: ips}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Sync(ctx, time.Now()); err != nil {
		return nil, nil, fmt.Errorf("preparing the webhook certificate: %w", err)
	}
	return server, r, nil
}

// Rotator keeps the self-signed certificate current: in the Secret, in the certificate directory
// (the webhook server reloads changed files) and in the webhook configuration's caBundle.
type Rotator struct {
	Kube    kubernetes.Interface
	Options Options
	ipAddrs []net.IP
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves the webhook
// and needs the files.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (r *Rotator) Start(ctx context.Context) error {
	log := klog.FromContext(ctx).WithName("webhook-cert")
	t := time.NewTicker(r.Options.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Sync(ctx, time.Now()); err != nil {
				log.Error(err, "checking the webhook certificate")
			}
		}
	}
}

// Sync renews the certificate if needed and publishes it.
func (r *Rotator) Sync(ctx context.Context, now time.Time) error {
	o := &r.Options
	secrets := r.Kube.CoreV1().Secrets(o.SecretNamespace)
	secret, err := secrets.Get(ctx, o.SecretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.SecretName, Namespace: o.SecretNamespace}, Type: corev1.SecretTypeOpaque}
	case err != nil:
		return fmt.Errorf("getting secret %s/%s: %w", o.SecretNamespace, o.SecretName, err)
	}
	bundle, changed, err := Renew(FromData(secret.Data), o.DNSNames, r.ipAddrs, o.Validity, now)
	if err != nil {
		return err
	}
	if changed {
		secret.Data = bundle.Data()
		if secret.ResourceVersion == "" {
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		} else {
			_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			// Another replica renewed it first: use theirs.
			return r.Sync(ctx, now)
		}
		if err != nil {
			return fmt.Errorf("storing the webhook certificate: %w", err)
		}
	}
	if err := writeIfChanged(filepath.Join(o.CertDir, KeyKey), bundle.Key); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(o.CertDir, CertKey), bundle.Cert); err != nil {
		return err
	}
	if err := r.publishCABundle(ctx, bundle.CABundle); err != nil {
		return err
	}
	return r.publishValidatingCABundle(ctx, bundle.CABundle)
}

func (r *Rotator) publishCABundle(ctx context.Context, caBundle []byte) error {
	name := r.Options.ConfigurationName
	if name == "" {
		return nil
	}
	hooks := r.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := hooks.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Installed later (or not at all, with the webhook unused): the next check publishes it.
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting MutatingWebhookConfiguration %s: %w", name, err)
	}
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, caBundle) {
			cfg.Webhooks[i].ClientConfig.CABundle = caBundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if _, err := hooks.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the caBundle of MutatingWebhookConfiguration %s: %w", name, err)
	}
	return nil
}

// writeIfChanged writes data atomically (temporary file and rename), so the server's file watcher
// never reads a half-written file.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the certificate directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
