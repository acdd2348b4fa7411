// Package servingcert keeps the adapter's serving certificate and the trust of its APIServices:
// a CA and a serving certificate it signed, kept in a Secret shared by every replica, written to
// the certificate directory the API server serves from (and reloads), and the CA published as
// spec.caBundle of the adapter's own APIServices, so that kube-apiserver verifies the adapter
// instead of skipping verification (insecureSkipTLSVerify). Both are renewed before they expire;
// after a CA renewal the old CA stays in the bundle while certificates it signed may still be
// served.
package servingcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Keys of the certificate Secret.
const (
	CACertKey   = "ca.crt"
	CAKeyKey    = "ca.key"
	CABundleKey = "ca-bundle.crt"
	CertKey     = "tls.crt"
	KeyKey      = "tls.key"
)

// Bundle is a CA and the serving certificate it signed, PEM-encoded, as stored in the Secret.
type Bundle struct {
	CACert, CAKey, Cert, Key []byte
	// CABundle is what clients trust: the CA, plus the previous CA while certificates it signed
	// may still be served.
	CABundle []byte
}

// FromData reads a Bundle from a Secret's data.
func FromData(data map[string][]byte) Bundle {
	return Bundle{CACert: data[CACertKey], CAKey: data[CAKeyKey], Cert: data[CertKey], Key: data[KeyKey], CABundle: data[CABundleKey]}
}

// Data is the Secret data of the bundle.
func (b Bundle) Data() map[string][]byte {
	return map[string][]byte{CACertKey: b.CACert, CAKeyKey: b.CAKey, CertKey: b.Cert, KeyKey: b.Key, CABundleKey: b.CABundle}
}

// Renew returns b when its serving certificate is valid for the names and IPs for more than a
// third of validity, and otherwise a renewed bundle (changed true): a new serving certificate,
// signed by the same CA while the CA has more than validity plus a third left, else by a new CA
// (lasting three times validity) trusted together with the old one.
func Renew(b Bundle, dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (_ Bundle, changed bool, _ error) {
	margin := validity / 3
	caCert, caKey, caErr := parsePair(b.CACert, b.CAKey)
	caOK := caErr == nil && caCert.IsCA && caCert.NotAfter.Sub(now) > validity+margin && !now.Before(caCert.NotBefore)
	leafOK := false
	if caOK {
		if leaf, _, err := parsePair(b.Cert, b.Key); err == nil && leaf.CheckSignatureFrom(caCert) == nil &&
			leaf.NotAfter.Sub(now) > margin && !now.Before(leaf.NotBefore) && covers(leaf, dnsNames, ips) {
			leafOK = true
		}
	}
	if caOK && leafOK && len(b.CABundle) > 0 {
		return b, false, nil
	}
	out := b
	if !caOK {
		ca, key, err := newCertificate(nil, nil, "kapacity-adapter-ca", nil, nil, 3*validity, now)
		if err != nil {
			return Bundle{}, false, err
		}
		out.CACert, out.CAKey, out.CABundle = ca, key, slices.Clone(ca)
		if caErr == nil && now.Before(caCert.NotAfter) {
			out.CABundle = append(out.CABundle, b.CACert...)
		}
		if caCert, caKey, caErr = parsePair(out.CACert, out.CAKey); caErr != nil {
			return Bundle{}, false, caErr
		}
	} else if len(out.CABundle) == 0 {
		out.CABundle = slices.Clone(out.CACert)
	}
	if !caOK || !leafOK {
		cert, key, err := newCertificate(caCert, caKey, "kapacity-adapter", dnsNames, ips, validity, now)
		if err != nil {
			return Bundle{}, false, err
		}
		out.Cert, out.Key = cert, key
	}
	return out, true, nil
}

func covers(cert *x509.Certificate, dnsNames []string, ips []net.IP) bool {
	for _, n := range dnsNames {
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// newCertificate creates a CA (parent nil) or a serving certificate signed by parent.
func newCertificate(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, fmt.Errorf("generating a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing certificate %s: %w", cn, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("missing certificate or key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("the key does not match the certificate")
	}
	return cert, key, nil
}
