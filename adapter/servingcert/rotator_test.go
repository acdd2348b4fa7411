package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
)

const dnsName = "kapacity-adapter.kapacity-system.svc"

func testOptions() Options {
	return Options{Mode: ModeSelfSigned, SecretNamespace: "kapacity-system", SecretName: "kapacity-adapter-cert",
		DNSNames: []string{dnsName}, Validity: 90 * 24 * time.Hour, CheckInterval: time.Hour,
		APIServices: []string{"v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io"}}
}

func registered(name string) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregistrationv1.APIServiceSpec{InsecureSkipTLSVerify: true, GroupPriorityMinimum: 100, VersionPriority: 100,
			Service: &apiregistrationv1.ServiceReference{Namespace: "kapacity-system", Name: "kapacity-adapter"}}}
}

// verify checks that the served files make a certificate for dnsName that the APIService's
// caBundle verifies, as kube-apiserver does.
func verify(t *testing.T, r *Rotator, caBundle []byte, at time.Time) *x509.Certificate {
	t.Helper()
	certPEM, err := os.ReadFile(r.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(r.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("served key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("empty caBundle")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: dnsName, Roots: roots, CurrentTime: at}); err != nil {
		t.Fatalf("the served certificate does not verify against the published caBundle: %v", err)
	}
	return leaf
}

// TestSelfSignedPublishesCABundle: the first sync issues a CA and a serving certificate into the
// Secret and the certificate directory, and every registered APIService of the adapter trusts
// that CA instead of skipping verification; one that is not registered is skipped.
func TestSelfSignedPublishesCABundle(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	agg := aggregatorfake.NewSimpleClientset(registered("v1beta1.custom.metrics.k8s.io"))
	r, err := NewRotator(testOptions(), t.TempDir(), kube, agg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	secret, err := kube.CoreV1().Secrets("kapacity-system").Get(ctx, "kapacity-adapter-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.custom.metrics.k8s.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.InsecureSkipTLSVerify {
		t.Error("insecureSkipTLSVerify still set")
	}
	if string(svc.Spec.CABundle) != string(secret.Data[CABundleKey]) {
		t.Error("the APIService's caBundle is not the Secret's")
	}
	verify(t, r, svc.Spec.CABundle, now)

	// A second sync (another replica, or the next check) changes nothing.
	before := len(kube.Actions()) + len(agg.Actions())
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range append(kube.Actions(), agg.Actions()...)[before:] {
		if a.GetVerb() != "get" {
			t.Errorf("an unchanged certificate made a %s of %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// TestOtherServicesAPIServicesAreLeftAlone: an APIService the adapter is configured for but that
// another Service backs (metrics.k8s.io kept on metrics-server) keeps its own trust.
func TestOtherServicesAPIServicesAreLeftAlone(t *testing.T) {
	metricsServer := registered("v1beta1.metrics.k8s.io")
	metricsServer.Spec.Service = &apiregistrationv1.ServiceReference{Namespace: "kube-system", Name: "metrics-server"}
	agg := aggregatorfake.NewSimpleClientset(metricsServer)
	r, err := NewRotator(testOptions(), t.TempDir(), fake.NewClientset(), agg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc, err := agg.ApiregistrationV1().APIServices().Get(context.Background(), "v1beta1.metrics.k8s.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.CABundle) != 0 || !svc.Spec.InsecureSkipTLSVerify {
		t.Errorf("metrics-server's APIService was changed: %+v", svc.Spec)
	}
}

// TestAPIServicesOutsideRBACAreSkipped: the installs grant get and patch only on the APIServices
// they register (the chart without resource metrics grants none on v1beta1.metrics.k8s.io), so a
// Forbidden read is an APIService that is not the adapter's: skipped, and the others still get
// the CA, instead of the adapter failing to start.
func TestAPIServicesOutsideRBACAreSkipped(t *testing.T) {
	ctx := context.Background()
	agg := aggregatorfake.NewSimpleClientset(registered("v1beta1.custom.metrics.k8s.io"), registered("v1beta1.metrics.k8s.io"))
	agg.PrependReactor("get", "apiservices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if name := a.(k8stesting.GetAction).GetName(); name == "v1beta1.metrics.k8s.io" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, name, nil)
		}
		return false, nil, nil
	})
	r, err := NewRotator(testOptions(), t.TempDir(), fake.NewClientset(), agg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("a Forbidden APIService failed the sync: %v", err)
	}
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.custom.metrics.k8s.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.CABundle) == 0 || svc.Spec.InsecureSkipTLSVerify {
		t.Errorf("the permitted APIService did not get the CA: %+v", svc.Spec)
	}
	for _, a := range agg.Actions() {
		if a.GetVerb() == "patch" && a.(k8stesting.PatchAction).GetName() == "v1beta1.metrics.k8s.io" {
			t.Error("the Forbidden APIService was patched")
		}
	}
}

// TestRenewal: with a third of its validity left the serving certificate is renewed by the same
// CA; near the CA's end a new CA is issued and the old one stays in the bundle.
func TestRenewal(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	agg := aggregatorfake.NewSimpleClientset(registered("v1beta1.custom.metrics.k8s.io"))
	o := testOptions()
	r, err := NewRotator(o, t.TempDir(), kube, agg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first := FromData(secretData(t, kube))
	firstLeaf := verify(t, r, first.CABundle, now)

	now = now.Add(o.Validity * 2 / 3).Add(time.Hour)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	second := FromData(secretData(t, kube))
	if string(second.CACert) != string(first.CACert) {
		t.Error("the CA changed although it had time left")
	}
	if leaf := verify(t, r, apiServiceBundle(t, agg), now); leaf.SerialNumber.Cmp(firstLeaf.SerialNumber) == 0 {
		t.Error("the serving certificate was not renewed")
	}

	now = now.Add(o.Validity * 2) // the CA (3 × validity) has less than validity + a third left
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	third := FromData(secretData(t, kube))
	if string(third.CACert) == string(first.CACert) {
		t.Fatal("the CA was not renewed")
	}
	bundle := apiServiceBundle(t, agg)
	verify(t, r, bundle, now)
	old := x509.NewCertPool()
	old.AppendCertsFromPEM(bundle)
	if _, err := firstLeaf.Verify(x509.VerifyOptions{Roots: old, DNSName: dnsName, CurrentTime: firstLeaf.NotBefore.Add(time.Hour)}); err != nil {
		t.Errorf("the bundle no longer trusts the previous CA: %v", err)
	}
}

// TestConcurrentReplicasAgree: when another replica stores its certificate first, a sync adopts it.
func TestConcurrentReplicasAgree(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	agg := aggregatorfake.NewSimpleClientset()
	other, _, err := Renew(Bundle{}, []string{dnsName}, nil, 90*24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	lost := false
	kube.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lost {
			return false, nil, nil
		}
		lost = true
		// The other replica wins the race.
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kapacity-adapter-cert", Namespace: "kapacity-system"}, Data: other.Data()}
		if err := kube.Tracker().Add(s); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "kapacity-adapter-cert")
	})
	r, err := NewRotator(testOptions(), t.TempDir(), kube, agg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	verify(t, r, other.CABundle, time.Now())
}

func TestValidate(t *testing.T) {
	o := testOptions()
	if errs := o.Validate(); len(errs) != 0 {
		t.Fatalf("valid options: %v", errs)
	}
	for name, edit := range map[string]func(*Options){
		"bad mode":          func(o *Options) { o.Mode = "manual" },
		"no names":          func(o *Options) { o.DNSNames = nil },
		"bad IP":            func(o *Options) { o.IPs = []string{"x"} },
		"short validity":    func(o *Options) { o.Validity = time.Minute },
		"no check interval": func(o *Options) { o.CheckInterval = 0 },
	} {
		o := testOptions()
		edit(&o)
		if len(o.Validate()) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

func secretData(t *testing.T, kube *fake.Clientset) map[string][]byte {
	t.Helper()
	s, err := kube.CoreV1().Secrets("kapacity-system").Get(context.Background(), "kapacity-adapter-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func apiServiceBundle(t *testing.T, agg *aggregatorfake.Clientset) []byte {
	t.Helper()
	svc, err := agg.ApiregistrationV1().APIServices().Get(context.Background(), "v1beta1.custom.metrics.k8s.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.CABundle
}
