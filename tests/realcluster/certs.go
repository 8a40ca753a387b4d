package main

// The cluster's throwaway PKI, made in memory at every start: one CA signs the apiserver's
// serving certificate, the fake kubelet's, and the client certificates (the admin user, the
// controller manager, the scheduler, and the apiserver's own client for the kubelet). A
// separate key signs service-account tokens. Everything is ECDSA P-256: generating it takes
// milliseconds, where RSA keys would add a visible delay to every start.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// keyPair is a certificate and its key, PEM-encoded, plus where they were written.
type keyPair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// PKI is everything the components need to trust each other.
type PKI struct {
	CA         keyPair
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
	Serving    keyPair // kube-apiserver, for 127.0.0.1 and localhost
	Kubelet    keyPair // the fake kubelet's HTTPS server
	Admin      keyPair // user "admin", group system:masters
	KCM        keyPair // system:kube-controller-manager (in system:masters: see controllers.go)
	Scheduler  keyPair // system:kube-scheduler (the built-in RBAC role is enough)
	KubeletCli keyPair // kube-apiserver -> kubelet (pods/log proxying)
	SAKeyFile  string  // service-account token signing key (private; the public half is derived)
}

const certLifetime = 7 * 24 * time.Hour // outlives any test run; never reused

// NewPKI generates the CA and every certificate, and writes them as PEM files into dir (the
// components read files; the kubeconfig embeds the data).
func NewPKI(dir string) (*PKI, error) {
	p := &PKI{}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour) // tolerate small clock differences
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "realcluster-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = caKey
	if p.CA, err = encode(der, caKey); err != nil {
		return nil, err
	}

	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	// The apiserver also answers to the in-cluster names; the first service IP of
	// --service-cluster-ip-range (10.96.0.1) is in the certificate as a real cluster's is,
	// although nothing ever connects to it.
	apiNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}
	apiIPs := append(loopback, net.ParseIP("10.96.0.1"))
	serverUse := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientUse := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	for _, c := range []struct {
		kp     *keyPair
		cn     string
		orgs   []string
		dns    []string
		ips    []net.IP
		usages []x509.ExtKeyUsage
	}{
		{&p.Serving, "kube-apiserver", nil, apiNames, apiIPs, serverUse},
		{&p.Kubelet, "realcluster-kubelet", nil, []string{"localhost"}, loopback, serverUse},
		{&p.Admin, "admin", []string{"system:masters"}, nil, nil, clientUse},
		{&p.KCM, "system:kube-controller-manager", []string{"system:masters"}, nil, nil, clientUse},
		{&p.Scheduler, "system:kube-scheduler", nil, nil, nil, clientUse},
		{&p.KubeletCli, "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, clientUse},
	} {
		if *c.kp, err = p.sign(c.cn, c.orgs, c.dns, c.ips, c.usages); err != nil {
			return nil, err
		}
	}

	files := map[string]*keyPair{"ca": &p.CA, "apiserver": &p.Serving, "kubelet": &p.Kubelet,
		"admin": &p.Admin, "kcm": &p.KCM, "scheduler": &p.Scheduler, "kubelet-client": &p.KubeletCli}
	for name, kp := range files {
		kp.CertFile = filepath.Join(dir, name+".crt")
		if err := os.WriteFile(kp.CertFile, kp.CertPEM, 0o600); err != nil {
			return nil, err
		}
		if kp == &p.CA {
			continue // nothing signs at run time: the CA key stays in memory
		}
		kp.KeyFile = filepath.Join(dir, name+".key")
		if err := os.WriteFile(kp.KeyFile, kp.KeyPEM, 0o600); err != nil {
			return nil, err
		}
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	p.SAKeyFile = filepath.Join(dir, "sa.key")
	// The apiserver derives the verification key from the private key file, and the
	// controller manager signs tokens with the same file.
	if err := os.WriteFile(p.SAKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) sign(cn string, orgs, dns []string, ips []net.IP, usages []x509.ExtKeyUsage) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:             p.caCert.NotBefore,
		NotAfter:              p.caCert.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usages,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return keyPair{}, fmt.Errorf("certificate %s: %w", cn, err)
	}
	return encode(der, key)
}

func encode(der []byte, key *ecdsa.PrivateKey) (keyPair, error) {
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}
