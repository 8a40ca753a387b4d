package main

// kube-controller-manager and kube-scheduler, in-process, from their own app packages (the
// path their commands take, without cobra and its signal handlers). Neither serves HTTPS
// (--secure-port=0: nothing of ours needs their /healthz or /metrics), and neither runs leader
// election: there is only one of each.

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// kcmControllers are the controllers a deploy tool's objects need (workloads, their pods'
// garbage, Services' endpoints, namespaces and their service accounts), plus node lifecycle:
// it lifts the not-ready taint that admission puts on every new Node, and would mark our
// nodes NotReady if the node simulator stopped renewing their leases. Left out: everything
// about real nodes and volumes attaching (IPAM, attach/detach, CSR signing, bootstrap
// tokens), HPAs (no metrics server) and the cloud.
var kcmControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"disruption-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"pod-garbage-collector-controller",
	"resourcequota-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"clusterrole-aggregation-controller",
	"persistentvolume-binder-controller",
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	"node-lifecycle-controller",
	"taint-eviction-controller",
}

// startControllerManager runs kube-controller-manager until ctx ends; the returned channel
// yields its exit error. kubeconfig authenticates as system:kube-controller-manager in
// system:masters: with --use-service-account-credentials=false every controller uses this one
// identity, and the built-in role of that user only covers the controller manager's own
// bookkeeping (each controller is expected to have its own service account otherwise).
func startControllerManager(ctx context.Context, dir, kubeconfig string, pki *PKI, qps float64) (<-chan error, error) {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	all, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	named := s.Flags(all, disabled, aliases)
	s.ParsedFlags = &named
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--root-ca-file=" + pki.CA.CertFile,
		"--service-account-private-key-file=" + pki.SAKeyFile,
		"--controllers=" + strings.Join(kcmControllers, ","),
		// Check our nodes every second (default 5 s) so that a new node's not-ready taint
		// goes away right after start.
		"--node-monitor-period=1s",
		"--cert-dir=" + filepath.Join(dir, "kcm-certs"),
		"--profiling=false",
	}
	args = append(args, clientLimitArgs(qps)...)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-controller-manager flags: %w", err)
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	c, err := s.Config(ctx, all, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager config: %w", err)
	}
	return goDone(func() error { return kcmapp.Run(ctx, c.Complete()) }), nil
}

// clientLimitArgs: a component's client-side request limit, when --controller-qps sets one.
// The default (20/s, burst 30 for the controller manager) paces a burst of rollouts by itself:
// a benchmark that measures the deploy tool raises it, as operators of big clusters do.
func clientLimitArgs(qps float64) []string {
	if qps <= 0 {
		return nil
	}
	return []string{
		"--kube-api-qps=" + strconv.FormatFloat(qps, 'f', -1, 64),
		"--kube-api-burst=" + strconv.Itoa(int(2*qps)),
	}
}

// startScheduler runs kube-scheduler until ctx ends; the returned channel yields its exit
// error. It authenticates as system:kube-scheduler, whose built-in RBAC role is all it needs.
func startScheduler(ctx context.Context, kubeconfig string, qps float64) (<-chan error, error) {
	opts := schedoptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
	}
	args = append(args, clientLimitArgs(qps)...)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-scheduler flags: %w", err)
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-scheduler")
		if err != nil {
			return nil, err
		}
		opts.InformerName = name
	}
	cc, sched, err := schedapp.Setup(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler: %w", err)
	}
	return goDone(func() error { return schedapp.Run(ctx, cc, sched) }), nil
}
