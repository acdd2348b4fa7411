package webhook

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
)

func labelled(gate bool, conds ...corev1.PodCondition) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{v1alpha1.InjectReadinessGateLabelKey: "true"}}}
	if gate {
		p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: v1alpha1.PodOnlineConditionType}}
	}
	p.Status.Conditions = conds
	return p
}

func TestMutate(t *testing.T) {
	now := metav1.Now()
	unlabelled := &corev1.Pod{}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		op          admissionv1.Operation
		sub         string
		wantChanged bool
		wantGate    bool
		wantCond    corev1.ConditionStatus
	}{
		{"create adds the gate", labelled(false), admissionv1.Create, "", true, true, ""},
		{"create keeps an existing gate", labelled(true), admissionv1.Create, "", false, true, ""},
		{"unlabelled pods are left alone", unlabelled, admissionv1.Create, "", false, false, ""},
		{"status update adds the condition True", labelled(true), admissionv1.Update, "status", true, true, corev1.ConditionTrue},
		{"status update keeps an existing condition", labelled(true, corev1.PodCondition{Type: v1alpha1.PodOnlineConditionType, Status: corev1.ConditionFalse}), admissionv1.Update, "status", false, true, corev1.ConditionFalse},
		{"status update without the gate", labelled(false), admissionv1.Update, "status", false, false, ""},
		{"plain update", labelled(true), admissionv1.Update, "", false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := Mutate(tt.pod, tt.op, tt.sub, now)
			if changed != tt.wantChanged {
				t.Errorf("changed = %t, want %t", changed, tt.wantChanged)
			}
			gates := 0
			for _, g := range tt.pod.Spec.ReadinessGates {
				if g.ConditionType == v1alpha1.PodOnlineConditionType {
					gates++
				}
			}
			if (gates == 1) != tt.wantGate || gates > 1 {
				t.Errorf("gates = %d, want gate %t", gates, tt.wantGate)
			}
			var cond corev1.ConditionStatus
			for _, c := range tt.pod.Status.Conditions {
				if c.Type == v1alpha1.PodOnlineConditionType {
					cond = c.Status
				}
			}
			if cond != tt.wantCond {
				t.Errorf("condition = %q, want %q", cond, tt.wantCond)
			}
		})
	}
}

func parse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRenew(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	names, ips := []string{"svc.ns.svc"}, []net.IP{net.ParseIP("127.0.0.1")}
	const validity = 90 * 24 * time.Hour

	first, changed, err := Renew(Bundle{}, names, ips, validity, now)
	if err != nil || !changed {
		t.Fatalf("first issue: changed=%t err=%v", changed, err)
	}
	ca, leaf := parse(t, first.CACert), parse(t, first.Cert)
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("leaf not signed by the CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(first.CABundle)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "svc.ns.svc", CurrentTime: now}); err != nil {
		t.Fatalf("leaf does not verify against the bundle: %v", err)
	}

	// Still fresh: unchanged.
	same, changed, err := Renew(first, names, ips, validity, now.Add(validity/2))
	if err != nil || changed || string(same.Cert) != string(first.Cert) {
		t.Fatalf("fresh bundle was renewed: changed=%t err=%v", changed, err)
	}
	// Less than a third left: a new leaf from the same CA.
	renewed, changed, err := Renew(first, names, ips, validity, now.Add(validity*3/4))
	if err != nil || !changed {
		t.Fatalf("renewal: changed=%t err=%v", changed, err)
	}
	if string(renewed.CACert) != string(first.CACert) || string(renewed.Cert) == string(first.Cert) {
		t.Error("renewal should keep the CA and replace the leaf")
	}
	// A new name: a new leaf.
	if _, changed, _ := Renew(first, append(names, "other"), ips, validity, now); !changed {
		t.Error("a new DNS name did not renew the leaf")
	}
	// The CA nearly expired: a new CA, trusted together with the old one.
	late := now.Add(3*validity - validity)
	rotated, changed, err := Renew(first, names, ips, validity, late)
	if err != nil || !changed || string(rotated.CACert) == string(first.CACert) {
		t.Fatalf("CA rotation: changed=%t err=%v", changed, err)
	}
	bundle := x509.NewCertPool()
	bundle.AppendCertsFromPEM(rotated.CABundle)
	if _, err := parse(t, rotated.Cert).Verify(x509.VerifyOptions{Roots: bundle, CurrentTime: late}); err != nil {
		t.Errorf("the new leaf does not verify against the rotated bundle: %v", err)
	}
	if n := len(pemBlocks(rotated.CABundle)); n != 2 {
		t.Errorf("rotated CA bundle has %d certificates, want 2 (new and old CA)", n)
	}
}

func pemBlocks(data []byte) []*pem.Block {
	var out []*pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, b)
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := DefaultOptions()
	bad.CertMode = "acme"
	bad.IPs = []string{"not-an-ip"}
	if err := bad.Validate(); err == nil {
		t.Error("bad options accepted")
	}
	off := Options{Port: 0, CertMode: "anything"}
	if err := off.Validate(); err != nil {
		t.Errorf("a disabled webhook needs no valid options: %v", err)
	}
}
