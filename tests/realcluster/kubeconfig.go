package main

// Kubeconfig files: one per component (client certificate) and the one handed to the user,
// which has two contexts so that both ways of authenticating are exercised by tests:
// `realcluster` (bearer token, the current context) and `realcluster-cert` (client certificate).

import (
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	contextToken = "realcluster"
	contextCert  = "realcluster-cert"
)

// componentKubeconfig is a kubeconfig for one in-process component, authenticated by kp.
func componentKubeconfig(server string, pki *PKI, kp keyPair) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["realcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pki.CA.CertPEM}
	cfg.AuthInfos["component"] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["component"] = &clientcmdapi.Context{Cluster: "realcluster", AuthInfo: "component"}
	cfg.CurrentContext = "component"
	return cfg
}

// userKubeconfig is the kubeconfig written to --kubeconfig-out.
func userKubeconfig(server string, pki *PKI, token string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["realcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pki.CA.CertPEM}
	cfg.AuthInfos["realcluster-admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.AuthInfos["realcluster-admin-cert"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: pki.Admin.CertPEM, ClientKeyData: pki.Admin.KeyPEM}
	cfg.Contexts[contextToken] = &clientcmdapi.Context{
		Cluster: "realcluster", AuthInfo: "realcluster-admin", Namespace: "default"}
	cfg.Contexts[contextCert] = &clientcmdapi.Context{
		Cluster: "realcluster", AuthInfo: "realcluster-admin-cert", Namespace: "default"}
	cfg.CurrentContext = contextToken
	return cfg
}

// writeKubeconfig writes cfg to path atomically: a reader never sees a partial file, so a
// test may poll for the file's existence instead of parsing our stdout.
func writeKubeconfig(path string, cfg *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".realcluster-kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// restConfig is a client configuration for our own controllers (admin certificate).
func restConfig(cfg *clientcmdapi.Config, userAgent string) (*rest.Config, error) {
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.UserAgent = userAgent
	// Our controllers write a burst of pod statuses at once when a rollout starts; the
	// client-side default (5 QPS) would make them look slower than a real kubelet fleet.
	rc.QPS, rc.Burst = 200, 400
	return rc, nil
}
