// Command realcluster runs a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, all built from Kubernetes' own Go modules) in one
// process on loopback, with simulated nodes whose pods follow a kubesim scenario file. It is
// moonship's reference: what moonship does against kubesim it must do against this. See
// docs/realcluster.md.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/grpclog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// tempDir is the run's temporary directory, for the exit on a second signal.
var tempDir atomic.Value

type options struct {
	kubeconfigOut string
	scenario      string
	timeScale     float64
	nodes         int
	maxPods       int
	seed          int64
	verbose       bool
	apiserverArgs []string      // extra kube-apiserver flags (--apiserver-arg, repeatable)
	dropWatches   time.Duration // cut the watches of outside clients after this long (0: never)
	controllerQPS float64       // the controller manager's and scheduler's client limit (0: theirs, 20/s)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags() options {
	var o options
	fs := flag.NewFlagSet("realcluster", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: realcluster --kubeconfig-out PATH [--scenario FILE] [--time-scale F] [--nodes N] [--seed N] [--max-pods N]\n"+
			"                   [--apiserver-arg --FLAG=VALUE]... [--drop-watches-after D] [-v]\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.kubeconfigOut, "kubeconfig-out", "", "write the kubeconfig here (atomically) once the cluster is ready")
	fs.StringVar(&o.scenario, "scenario", "", "kubesim scenario file: how the pods of each workload behave")
	fs.Float64Var(&o.timeScale, "time-scale", 0, "real seconds per simulated second (default: the scenario's time_scale, else 1)")
	fs.IntVar(&o.nodes, "nodes", 1, "number of simulated nodes")
	fs.IntVar(&o.maxPods, "max-pods", 250, "pods each node accepts")
	fs.Int64Var(&o.seed, "seed", -1, "seed of the jitter (default: the scenario's seed, else random)")
	fs.BoolVar(&o.verbose, "v", false, "log the components to stderr (default: a log file in the temporary directory)")
	fs.Var((*stringList)(&o.apiserverArgs), "apiserver-arg",
		"one more kube-apiserver flag, as --name=value (repeatable), after ours: e.g. --watch-cache-sizes=configmaps#0")
	fs.Float64Var(&o.controllerQPS, "controller-qps", 0,
		"requests/s the controller manager and the scheduler may send (burst: twice that; default theirs: 20/s, burst 30, as in most clusters)")
	fs.DurationVar(&o.dropWatches, "drop-watches-after", 0,
		"cut the connection of every watch of a client outside the control plane after this long (0: never)")
	fs.Parse(os.Args[1:])
	if o.kubeconfigOut == "" || fs.NArg() > 0 || o.nodes < 1 || o.maxPods < 1 || o.timeScale < 0 || o.dropWatches < 0 || o.controllerQPS < 0 {
		fs.Usage()
		os.Exit(2)
	}
	return o
}

func main() {
	o := parseFlags()
	ctx, stop := lifetime()
	defer stop()
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil && !interrupted {
		fmt.Fprintf(os.Stderr, "realcluster: %v\n", err)
		os.Exit(1)
	}
}

// lifetime is a context that ends on SIGTERM, SIGINT, SIGHUP, or when the parent process goes
// away: a test runner that dies must not leave a control plane behind. A second signal
// exits at once.
func lifetime() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ppid := os.Getppid()
	// The kernel signals us when the parent dies...
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "realcluster: prctl: %v\n", err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "realcluster: second signal, exiting now")
		if dir, _ := tempDir.Load().(string); dir != "" {
			os.RemoveAll(dir)
		}
		os.Exit(1)
	}()
	// ...and, in case the parent died before prctl or PDEATHSIG was cleared, we also notice
	// being re-parented.
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if os.Getppid() != ppid {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ctx, cancel
}

// setupLogging sends klog (every component logs through it), Go's log package, gRPC and
// etcd to stderr with -v, else to a file in the temporary directory. It returns the path
// given to etcd's logger.
func setupLogging(dir string, verbose bool) (string, error) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if verbose {
		_ = fs.Parse([]string{"-logtostderr=true"})
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, os.Stderr, os.Stderr))
		return "stderr", nil
	}
	path := filepath.Join(dir, "realcluster.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	// Without stderrthreshold=FATAL klog would still copy every error to stderr; one_output
	// keeps it from writing a line once per severity into the same file.
	_ = fs.Parse([]string{"-logtostderr=false", "-alsologtostderr=false", "-stderrthreshold=FATAL", "-one_output=true"})
	klog.SetOutput(f)
	log.SetOutput(f)
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, f, f))
	return path, nil
}

func run(ctx context.Context, o options) error {
	sc, err := LoadScenario(o.scenario)
	if err != nil {
		return err
	}
	if sc.HasFaults {
		fmt.Fprintln(os.Stderr, "realcluster: warning: the scenario's faults (API fault injection) are kubesim's; ignored here")
	}
	scale := 1.0
	switch {
	case o.timeScale > 0:
		scale = o.timeScale
	case sc.TimeScale != nil:
		scale = *sc.TimeScale
	}
	seed := uint64(time.Now().UnixNano())
	switch {
	case o.seed >= 0:
		seed = uint64(o.seed)
	case sc.Seed != nil:
		seed = uint64(*sc.Seed)
	}

	dir, err := os.MkdirTemp("", "realcluster-")
	if err != nil {
		return err
	}
	tempDir.Store(dir)
	defer os.RemoveAll(dir)
	logFile, err := setupLogging(dir, o.verbose)
	if err != nil {
		return err
	}
	started := time.Now()

	pki, err := NewPKI(dir)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	etcd, etcdURL, err := startEtcd(dir, logFile, o.verbose)
	if err != nil {
		return err
	}
	defer etcd.Close() // last: the apiserver must be gone first (deferred calls run in reverse)

	// Everything but etcd stops with this context; the deferred waitAll waits for them.
	cctx, cancel := context.WithCancel(ctx)
	var exits []<-chan error
	defer func() {
		cancel()
		waitAll(exits, 15*time.Second)
	}()

	token := rand.Text()
	port, apiDone, err := startAPIServer(cctx, apiserverConfig{Dir: dir, EtcdURL: etcdURL, PKI: pki, AdminToken: token,
		ExtraArgs: o.apiserverArgs, DropWatchesAfter: o.dropWatches})
	if err != nil {
		return err
	}
	exits = append(exits, apiDone)
	server := fmt.Sprintf("https://127.0.0.1:%d", port)

	admin, err := restConfig(componentKubeconfig(server, pki, pki.Admin), "realcluster")
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	if err := waitReady(cctx, client, apiDone); err != nil {
		return err
	}

	kcmKubeconfig := filepath.Join(dir, "kcm.kubeconfig")
	schedKubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	if err := writeKubeconfig(kcmKubeconfig, componentKubeconfig(server, pki, pki.KCM)); err != nil {
		return err
	}
	if err := writeKubeconfig(schedKubeconfig, componentKubeconfig(server, pki, pki.Scheduler)); err != nil {
		return err
	}
	kcmDone, err := startControllerManager(cctx, dir, kcmKubeconfig, pki, o.controllerQPS)
	if err != nil {
		return err
	}
	exits = append(exits, kcmDone)
	schedDone, err := startScheduler(cctx, schedKubeconfig, o.controllerQPS)
	if err != nil {
		return err
	}
	exits = append(exits, schedDone)

	// The simulated nodes: their kubelet endpoint, the pod controller behind it, the Nodes.
	var names []string
	for i := 1; i <= o.nodes; i++ {
		names = append(names, nodeName(i))
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := newPodController(client, factory, sc, scale, seed, names, eventBroadcaster(cctx, client))
	kubeletPort, err := startKubelet(cctx, pki, pods)
	if err != nil {
		return err
	}
	nodes := &nodeSim{client: client, names: names, kubeletPort: kubeletPort, maxPods: o.maxPods}
	if err := nodes.register(cctx); err != nil {
		return err
	}
	background(&exits, func() { nodes.run(cctx) })
	factory.Start(cctx.Done())
	background(&exits, func() { pods.run(cctx, 4) })
	background(&exits, func() { <-cctx.Done(); factory.Shutdown() }) // waits for the informers

	for _, ns := range sc.Namespaces {
		_, err := client.CoreV1().Namespaces().Create(cctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	if err := waitUsable(cctx, client, nodes, append([]string{"default"}, sc.Namespaces...)); err != nil {
		return err
	}

	if err := writeKubeconfig(o.kubeconfigOut, userKubeconfig(server, pki, token)); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	klog.InfoS("realcluster ready", "server", server, "startup", time.Since(started), "nodes", o.nodes, "timeScale", scale)
	fmt.Printf("realcluster listening on %s\n", server)
	os.Stdout.Sync()

	select {
	case <-ctx.Done():
		return nil
	case err := <-apiDone:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case err := <-kcmDone:
		return fmt.Errorf("kube-controller-manager stopped: %v", err)
	case err := <-schedDone:
		return fmt.Errorf("kube-scheduler stopped: %v", err)
	case err := <-etcd.Err():
		return fmt.Errorf("etcd: %v", err)
	}
}

// background runs f and adds its completion to exits.
func background(exits *[]<-chan error, f func()) {
	*exits = append(*exits, goDone(func() error { f(); return nil }))
}

// goDone runs f and returns a channel that yields its error once, then is closed: whoever
// reads the error first, waitAll still sees the channel as done.
func goDone(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- f()
		close(done)
	}()
	return done
}

// waitAll waits for every component to stop, at most timeout in all: a component stuck in
// its shutdown must not keep the process (and its temporary directory) alive.
func waitAll(exits []<-chan error, timeout time.Duration) {
	deadline := time.After(timeout)
	for _, ch := range exits {
		select {
		case <-ch:
		case <-deadline:
			klog.Warning("components still stopping; exiting anyway")
			return
		}
	}
}

// waitReady polls /readyz (as the admin) until it answers 200.
func waitReady(ctx context.Context, client kubernetes.Interface, apiDone <-chan error) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-apiDone:
			return false, fmt.Errorf("kube-apiserver stopped: %v", err)
		default:
		}
		code := 0
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&code)
		return code == 200, nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("kube-apiserver not ready: %w", err)
	}
	return err
}

// waitUsable waits until a client can deploy right away: the nodes are schedulable and the
// namespaces have their default ServiceAccount (without which pods are not admitted).
func waitUsable(ctx context.Context, client kubernetes.Interface, nodes *nodeSim, namespaces []string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if ok, err := nodes.schedulable(ctx); err != nil || !ok {
			return false, nil
		}
		for _, ns := range namespaces {
			if _, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cluster not usable: %w", err)
	}
	return err
}
