package main

// The fake kubelet's HTTPS endpoint: what the apiserver calls when a client asks for
// pods/{name}/log (kubectl logs). Every simulated node advertises this one server as its
// kubelet port; it serves the lines the scenario gives the pod's workload (pods.go decides
// which are visible when). Like a kubelet, it only talks to clients with a certificate from
// the cluster CA, i.e. the apiserver (--kubelet-client-certificate).

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

type fakeKubelet struct {
	pods *podController
}

// startKubelet serves on a free loopback port until ctx ends and returns the port.
func startKubelet(ctx context.Context, pki *PKI, pods *podController) (int, error) {
	cert, err := tls.X509KeyPair(pki.Kubelet.CertPEM, pki.Kubelet.KeyPEM)
	if err != nil {
		return 0, err
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(pki.CA.CertPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	k := &fakeKubelet{pods: pods}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.containerLogs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    clients,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "fake kubelet")
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close() // also ends the follow streams
	}()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// containerLogs answers GET /containerLogs/{namespace}/{pod}/{container} with the kubelet's
// query parameters: follow, previous, timestamps, tailLines, sinceSeconds, sinceTime,
// limitBytes (stream is accepted: there is one stream).
func (k *fakeKubelet) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	previous := q.Get("previous") == "true"
	timestamps := q.Get("timestamps") == "true"
	tail := -1
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "invalid tailLines", http.StatusBadRequest)
			return
		}
		tail = n
	}
	var since time.Time
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			http.Error(w, "invalid sinceSeconds", http.StatusBadRequest)
			return
		}
		since = time.Now().Add(-time.Duration(n) * time.Second)
	} else if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "invalid sinceTime", http.StatusBadRequest)
			return
		}
		since = t
	}
	limit := int64(-1)
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "invalid limitBytes", http.StatusBadRequest)
			return
		}
		limit = n
	}

	lines, done, lerr := k.pods.logs(ns, pod, container, previous)
	if lerr != nil {
		http.Error(w, lerr.msg, lerr.code)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	flusher, _ := w.(http.Flusher)
	out := bufio.NewWriter(w)
	var written int64
	cursor := 0
	if tail >= 0 && len(lines) > tail {
		cursor = len(lines) - tail
	}
	emit := func(lines []logLine) bool {
		for ; cursor < len(lines); cursor++ {
			l := lines[cursor]
			if !since.IsZero() && l.at.Before(since) {
				continue
			}
			var b strings.Builder
			if timestamps {
				b.WriteString(l.at.UTC().Format(time.RFC3339Nano))
				b.WriteByte(' ')
			}
			b.WriteString(l.text)
			b.WriteByte('\n')
			s := b.String()
			if limit >= 0 && written+int64(len(s)) > limit {
				out.WriteString(s[:limit-written])
				out.Flush()
				return false
			}
			written += int64(len(s))
			out.WriteString(s)
		}
		if err := out.Flush(); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !emit(lines) || !follow {
		return
	}
	// Follow: poll the pod's state until its container stops, the pod goes, or the client
	// (the apiserver, on behalf of kubectl) hangs up.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !done {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		var lerr *logError
		lines, done, lerr = k.pods.logs(ns, pod, container, previous)
		if lerr != nil {
			return
		}
		if !emit(lines) {
			return
		}
	}
}
