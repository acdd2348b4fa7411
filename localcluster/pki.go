package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the file paths of every certificate and key the control plane needs. Everything is
// generated fresh per cluster so that no two test beds ever trust each other.
type pki struct {
	caCert, caKey                    string
	apiserverCert, apiserverKey      string
	adminCert, adminKey              string
	frontProxyCACert                 string
	frontProxyClientCert             string
	frontProxyClientKey              string
	serviceAccountKey                string // RSA private key: signs service-account tokens
	serviceAccountPub                string
	caPEM, adminCertPEM, adminKeyPEM []byte
}

// authority is a CA able to sign leaf certificates.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newAuthority(commonName string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", commonName, err)
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// leafSpec describes one certificate signed by an authority.
type leafSpec struct {
	commonName   string
	organization []string
	dnsNames     []string
	ips          []net.IP
	usages       []x509.ExtKeyUsage
}

func (a *authority) sign(serial int64, spec leafSpec) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key for %s: %w", spec.commonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: spec.commonName, Organization: spec.organization},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  spec.usages,
		DNSNames:     spec.dnsNames,
		IPAddresses:  spec.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing %s: %w", spec.commonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key for %s: %w", spec.commonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// generatePKI writes a cluster CA, a front-proxy CA (API aggregation authenticates the
// aggregator to extension servers with it), the leaf certificates and the service-account
// key pair into dir.
func generatePKI(dir string) (*pki, error) {
	p := &pki{
		caCert:               filepath.Join(dir, "ca.crt"),
		caKey:                filepath.Join(dir, "ca.key"),
		apiserverCert:        filepath.Join(dir, "apiserver.crt"),
		apiserverKey:         filepath.Join(dir, "apiserver.key"),
		adminCert:            filepath.Join(dir, "admin.crt"),
		adminKey:             filepath.Join(dir, "admin.key"),
		frontProxyCACert:     filepath.Join(dir, "front-proxy-ca.crt"),
		frontProxyClientCert: filepath.Join(dir, "front-proxy-client.crt"),
		frontProxyClientKey:  filepath.Join(dir, "front-proxy-client.key"),
		serviceAccountKey:    filepath.Join(dir, "sa.key"),
		serviceAccountPub:    filepath.Join(dir, "sa.pub"),
	}
	ca, err := newAuthority("kapacity-test-ca")
	if err != nil {
		return nil, err
	}
	frontProxyCA, err := newAuthority("kapacity-test-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	// The controller-manager's CSR signer reads the CA key; SEC 1 is the encoding it has always accepted.
	caKeyDER, err := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("encoding CA key: %w", err)
	}
	p.caPEM = ca.pem

	apiserverCert, apiserverKey, err := ca.sign(2, leafSpec{
		commonName: "kube-apiserver",
		dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		ips:    []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 0, 1)},
		usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	p.adminCertPEM, p.adminKeyPEM, err = ca.sign(3, leafSpec{
		commonName:   "kapacity-test-admin",
		organization: []string{"system:masters"},
		usages:       []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	frontProxyCert, frontProxyKey, err := frontProxyCA.sign(2, leafSpec{
		commonName: "front-proxy-client",
		usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating service-account key: %w", err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encoding service-account public key: %w", err)
	}

	files := map[string][]byte{
		p.caCert:               ca.pem,
		p.caKey:                pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
		p.apiserverCert:        apiserverCert,
		p.apiserverKey:         apiserverKey,
		p.adminCert:            p.adminCertPEM,
		p.adminKey:             p.adminKeyPEM,
		p.frontProxyCACert:     frontProxyCA.pem,
		p.frontProxyClientCert: frontProxyCert,
		p.frontProxyClientKey:  frontProxyKey,
		p.serviceAccountKey:    pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		p.serviceAccountPub:    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return p, nil
}
