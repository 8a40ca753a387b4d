package main

// kube-apiserver, run in-process from k8s.io/kubernetes/cmd/kube-apiserver/app the way its own
// command does it (options -> Complete -> Validate -> Config -> server chain -> Run), minus
// the cobra command, which would install a process-wide signal handler of its own.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	apioptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// apiserverConfig is what the apiserver needs from the rest of the cluster.
type apiserverConfig struct {
	Dir        string // scratch directory (token file, cert dir)
	EtcdURL    string
	PKI        *PKI
	AdminToken string
	ExtraArgs  []string // more kube-apiserver flags, parsed after ours (so they win)
	// DropWatchesAfter > 0: the connection of each watch of a client outside the control plane
	// is cut after this long (see dropWatches).
	DropWatchesAfter time.Duration
}

// startAPIServer binds a free loopback port, starts the apiserver on it (it runs until ctx
// ends) and returns the port and a channel that yields the apiserver's exit error.
func startAPIServer(ctx context.Context, c apiserverConfig) (int, <-chan error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port

	// A static token for the admin user: the bearer-token context of the kubeconfig. The line
	// is token,user,uid,"group1,group2".
	tokenFile := filepath.Join(c.Dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", c.AdminToken)), 0o600); err != nil {
		ln.Close()
		return 0, nil, err
	}

	args := []string{
		"--etcd-servers=" + c.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The lease reconciler would publish 127.0.0.1 as the endpoint of the "kubernetes"
		// Service, which Endpoints validation rejects (loopback), over and over.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file=" + c.PKI.Serving.CertFile,
		"--tls-private-key-file=" + c.PKI.Serving.KeyFile,
		"--client-ca-file=" + c.PKI.CA.CertFile,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=Node,RBAC",
		// kubeadm's choice on top of the default plugins: nodes may only touch their own
		// objects. Our node simulator acts as an admin, so this changes nothing for it.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.PKI.SAKeyFile,
		"--service-account-signing-key-file=" + c.PKI.SAKeyFile,
		// Service IPs are allocated from here and shown, never routed or contacted.
		"--service-cluster-ip-range=10.96.0.0/16",
		// pods/log, exec and friends are proxied to the node's kubelet port, i.e. our fake kubelet.
		"--kubelet-client-certificate=" + c.PKI.KubeletCli.CertFile,
		"--kubelet-client-key=" + c.PKI.KubeletCli.KeyFile,
		"--kubelet-certificate-authority=" + c.PKI.CA.CertFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
	}
	for _, a := range c.ExtraArgs {
		if !strings.HasPrefix(a, "-") {
			a = "--" + a
		}
		args = append(args, a)
	}

	s := apioptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	// Our listener instead of one the apiserver would open: the port is known before the
	// apiserver starts and nobody can take it in between.
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = port
	// What app.Run would set: the name under which the apiserver's informers report metrics.
	if s.InformerName, err = cache.NewInformerName("kube-apiserver"); err != nil {
		ln.Close()
		return 0, nil, err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		ln.Close()
		return 0, nil, err
	}
	// The apiserver's loopback clients would otherwise print warnings about the deprecated
	// APIs that its own controllers watch (the command does the same).
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	if c.DropWatchesAfter > 0 {
		// The aggregator's handler chain is the outermost one: what wraps it sees every
		// request first and is outside the chain's own panic recovery.
		gc := &config.Aggregator.GenericConfig.Config
		chain := gc.BuildHandlerChainFunc
		gc.BuildHandlerChainFunc = func(h http.Handler, cfg *genericapiserver.Config) http.Handler {
			return dropWatches(chain(h, cfg), c.DropWatchesAfter)
		}
	}
	cc, err := config.Complete()
	if err != nil {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	server, err := app.CreateServerChain(cc)
	if err != nil {
		ln.Close()
		return 0, nil, fmt.Errorf("kube-apiserver: %w", err)
	}

	done := goDone(func() error {
		prepared, err := server.PrepareRun()
		if err != nil {
			return fmt.Errorf("kube-apiserver: %w", err)
		}
		return prepared.Run(ctx)
	})
	return port, done, nil
}

// dropWatches cuts the connection of every watch request of a client outside the control
// plane once it has been open for `after`, the way a load balancer's idle timeout or a
// network failure does: the watch handler is stopped (its request context ends) and the
// response is aborted, not ended (http.ErrAbortHandler: HTTP/1.1 closes the connection
// without the last chunk, HTTP/2 resets the stream), so the client sees a broken stream,
// not the server's clean end of a watch. The control plane's own clients (the controllers,
// the scheduler, the simulated nodes, the apiserver's loopback client: their User-Agent is
// this binary's name, or starts with it and a slash) keep their watches. Each cut is reported on stderr.
func dropWatches(h http.Handler, after time.Duration) http.Handler {
	own := strings.SplitN(rest.DefaultKubernetesUserAgent(), "/", 2)[0] // "realcluster"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		watch := q.Get("watch") == "true" || q.Get("watch") == "1" || strings.Contains(r.URL.Path, "/watch/")
		ua := r.UserAgent()
		if !watch || ua == own || strings.HasPrefix(ua, own+"/") {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), after)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
		if ctx.Err() == context.DeadlineExceeded && r.Context().Err() == nil {
			fmt.Fprintf(os.Stderr, "realcluster: dropped a watch after %v: %s %s (%s)\n", after, r.Method, r.URL.RequestURI(), ua)
			panic(http.ErrAbortHandler)
		}
	})
}
