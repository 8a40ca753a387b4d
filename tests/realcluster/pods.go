package main

// The simulated kubelet: every pod that the scheduler binds to one of our nodes goes through
// the life the scenario gives its workload, with the same stages, delays, back-offs, messages
// and log lines as kubesim's (src/kubesim/ctl_pods.c), so that a scenario means the same thing
// against both. The difference is that here the pod's status is written through the real
// apiserver and read by the real controllers: Deployments, Jobs, Endpoints and the rest react
// to it exactly as they do in a cluster.
//
// Only our side scales time (--time-scale): the delays and back-offs below are simulated
// seconds. The control plane runs in real time (a Job's retry back-off is the Job
// controller's 10 s, 20 s, ...; a Deployment's progressDeadlineSeconds are real seconds).

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// stage is where a pod is in its life; the order matters (kubesim's enum ks_pod_stage).
type stage int

const (
	stageNew         stage = iota // just bound to a node
	stageCreating                 // pulling the image, creating the container
	stagePullErr                  // ErrImagePull
	stagePullBackOff              // ImagePullBackOff
	stageRunning                  // started, not ready (or a Job's pod at work)
	stageReady                    // the readiness probe passed
	stageCrashed                  // CrashLoopBackOff (a required Service was missing, or the image crashes)
	stageDone                     // a Job's pod exited
)

// podState is what a kubelet knows about a pod and the API does not show (timers, attempts).
type podState struct {
	uid          types.UID
	rule         string // the workload name whose scenario entry applies
	job          bool   // runs to completion (a Job's pod, or restartPolicy != Always)
	attempt      int    // a Job's pods in the order we saw them: fail_attempts counts these
	stage        stage
	next         time.Time // when the next step is due; zero: none
	restarts     int
	pullFailures int
	exitCode     int
	ip           string
	missing      string // the required Service that was not available at the last start
	crashing     string // the image (crashing_images) whose container exits at start, or ""
	startTime    time.Time
	started      time.Time // the current container's start
	finished     time.Time
	lastStarted  time.Time // the previous (crashed) container's run
	lastFinished time.Time
	lastWritten  *corev1.PodStatus // what we last wrote: a status we cannot reproduce is not rewritten
}

type podController struct {
	client      kubernetes.Interface
	sc          *Scenario
	scale       float64 // real seconds per simulated second
	nodes       map[string]bool
	pods        corelisters.PodLister
	replicaSets appslisters.ReplicaSetLister
	slices      discoverylisters.EndpointSliceLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	recorder    map[string]record.EventRecorder // by node: events come from "kubelet" on that host

	mu          sync.Mutex           // guards everything below; held while a pod is reconciled
	states      map[string]*podState // by namespace/name
	jobAttempts map[types.UID]int    // pods seen per Job uid
	rng         *rand.Rand
	nextIP      uint32
}

func newPodController(client kubernetes.Interface, factory informers.SharedInformerFactory, sc *Scenario,
	scale float64, seed uint64, nodes []string, broadcaster record.EventBroadcaster) *podController {
	c := &podController{
		client: client,
		sc:     sc,
		scale:  scale,
		nodes:  map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "realcluster_pods"}),
		recorder:    map[string]record.EventRecorder{},
		states:      map[string]*podState{},
		jobAttempts: map[types.UID]int{},
		rng:         rand.New(rand.NewPCG(seed, seed^0x5eedfa17)),
	}
	for _, n := range nodes {
		c.nodes[n] = true
		c.recorder[n] = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: n})
	}
	podInformer := factory.Core().V1().Pods()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	rsInformer := factory.Apps().V1().ReplicaSets()
	c.pods = podInformer.Lister()
	c.slices = sliceInformer.Lister()
	c.replicaSets = rsInformer.Lister()
	c.synced = []cache.InformerSynced{podInformer.Informer().HasSynced, sliceInformer.Informer().HasSynced,
		rsInformer.Informer().HasSynced}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	return c
}

// run processes pods with a few workers until ctx ends.
func (c *podController) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	if cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		for range workers {
			wg.Go(func() {
				for c.processNext(ctx) {
				}
			})
		}
	}
	<-ctx.Done()
	c.queue.ShutDown() // the workers return once their current pod is done
	wg.Wait()
}

func (c *podController) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.reconcile(ctx, key); err != nil {
		if ctx.Err() == nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "pod", "key", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// sim converts simulated seconds into a real duration.
func (c *podController) sim(seconds float64) time.Duration {
	return time.Duration(seconds * c.scale * float64(time.Second))
}

// jitter is a uniform [0, b.Jitter) simulated seconds (caller holds c.mu).
func (c *podController) jitter(b *Behaviour) float64 {
	if b.Jitter <= 0 {
		return 0
	}
	return b.Jitter * c.rng.Float64()
}

// backoff is the kubelet's: 10 s doubling per failure, capped (simulated seconds).
func backoff(n int, limit float64) float64 {
	b := 10 * math.Pow(2, float64(max(n-1, 0)))
	return math.Min(b, limit)
}

func (c *podController) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.states, key)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	if !c.nodes[pod.Spec.NodeName] {
		return nil // not bound yet, or to a node that is not ours
	}
	if pod.DeletionTimestamp != nil {
		return c.finishDeletion(ctx, pod)
	}

	c.mu.Lock()
	st := c.states[key]
	if st == nil || st.uid != pod.UID {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			c.mu.Unlock()
			return nil // finished before we knew it: nothing left to run
		}
		st = c.newState(pod)
		c.states[key] = st
	}
	now := time.Now()
	if !st.next.IsZero() && !now.Before(st.next) {
		c.step(pod, st, now)
	}
	if !st.next.IsZero() {
		c.queue.AddAfter(key, time.Until(st.next))
	}
	desired := c.status(pod, st)
	skip := equality.Semantic.DeepEqual(desired, &pod.Status) ||
		(st.lastWritten != nil && equality.Semantic.DeepEqual(desired, st.lastWritten))
	c.mu.Unlock()
	if skip {
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status = *desired
	if _, err := c.client.CoreV1().Pods(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{FieldManager: "kubelet"}); err != nil {
		return err
	}
	c.mu.Lock()
	st.lastWritten = desired
	c.mu.Unlock()
	return nil
}

// finishDeletion does what a kubelet does once the containers of a pod being deleted have
// stopped: it deletes the pod for good. There is no termination grace period to sit out.
func (c *podController) finishDeletion(ctx context.Context, pod *corev1.Pod) error {
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g == 0 {
		return nil // already done; only finalizers (e.g. a Job's tracking finalizer) hold it
	}
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		for _, ct := range pod.Spec.Containers {
			c.recorder[pod.Spec.NodeName].Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", ct.Name)
		}
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by a pod of the same name
	}
	return err
}

// newState names the workload a pod belongs to (its controller; a ReplicaSet's Deployment)
// and numbers a Job's attempts (caller holds c.mu).
func (c *podController) newState(pod *corev1.Pod) *podState {
	st := &podState{uid: pod.UID, rule: pod.Name, stage: stageNew, next: time.Now()}
	owner := metav1.GetControllerOf(pod)
	if owner != nil {
		st.rule = owner.Name
		if owner.Kind == "ReplicaSet" {
			if rs, err := c.replicaSets.ReplicaSets(pod.Namespace).Get(owner.Name); err == nil {
				if d := metav1.GetControllerOf(rs); d != nil {
					st.rule = d.Name
				}
			} else if i := strings.LastIndexByte(owner.Name, '-'); i > 0 {
				st.rule = owner.Name[:i] // the Deployment's name less the pod-template hash
			}
		}
	}
	isJob := owner != nil && owner.Kind == "Job"
	st.job = isJob || (pod.Spec.RestartPolicy != "" && pod.Spec.RestartPolicy != corev1.RestartPolicyAlways)
	if isJob {
		st.attempt = c.jobAttempts[owner.UID]
		c.jobAttempts[owner.UID]++
	}
	return st
}

// step moves a pod one stage on, as ks_pod_reconcile does (caller holds c.mu).
func (c *podController) step(pod *corev1.Pod, st *podState, now time.Time) {
	b := c.sc.Behaviour(st.rule)
	rec := c.recorder[pod.Spec.NodeName]
	image := firstImage(pod)
	st.next = time.Time{}
	switch st.stage {
	case stageNew:
		rec.Eventf(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", image)
		st.stage = stageCreating
		st.next = now.Add(c.sim(b.StartDelay + c.jitter(&b)))
	case stageCreating, stagePullBackOff:
		if broken := c.brokenImage(pod); broken != "" {
			st.stage = stagePullErr
			st.pullFailures++
			rec.Eventf(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: not found", broken)
			rec.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
			st.next = now.Add(c.sim(1))
		} else {
			c.startContainer(pod, st, &b, now)
		}
	case stagePullErr:
		st.stage = stagePullBackOff
		rec.Eventf(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", image)
		rec.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
		st.next = now.Add(c.sim(backoff(st.pullFailures, 300)))
	case stageRunning:
		switch {
		case st.job:
			code := b.ExitCode
			if st.attempt < b.FailAttempts {
				code = b.ExitCode
				if code == 0 {
					code = 1
				}
			}
			st.exitCode = code
			st.stage = stageDone
			st.finished = now
		case st.missing != "" || st.crashing != "":
			st.lastStarted, st.lastFinished = st.started, now
			st.restarts++
			st.stage = stageCrashed
			rec.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)",
				pod.Spec.Containers[0].Name, pod.Name, pod.Namespace, pod.UID)
			st.next = now.Add(c.sim(backoff(st.restarts, 300)))
		default:
			st.stage = stageReady
		}
	case stageCrashed:
		c.startContainer(pod, st, &b, now)
	}
}

func (c *podController) startContainer(pod *corev1.Pod, st *podState, b *Behaviour, now time.Time) {
	rec := c.recorder[pod.Spec.NodeName]
	if st.restarts == 0 {
		rec.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in 1.2s (1.2s including waiting)", firstImage(pod))
	} else {
		rec.Eventf(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", firstImage(pod))
	}
	name := pod.Spec.Containers[0].Name
	rec.Eventf(pod, corev1.EventTypeNormal, "Created", "Created container: %s", name)
	rec.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", name)
	st.stage = stageRunning
	st.started = now
	if st.ip == "" {
		// Any address in the pod network: shown, put into Endpoints, never contacted.
		c.nextIP++
		st.ip = fmt.Sprintf("10.244.%d.%d", (c.nextIP/250)%256, c.nextIP%250+2)
	}
	st.missing = ""
	for _, svc := range b.Requires {
		if !c.serviceAvailable(pod.Namespace, svc) {
			st.missing = svc
			break
		}
	}
	st.crashing = c.crashingImage(pod)
	switch {
	case st.job:
		st.next = now.Add(c.sim(b.Duration + c.jitter(b)))
	case st.missing != "" || st.crashing != "":
		st.next = now.Add(c.sim(b.CrashAfter))
	case b.NeverReady:
		st.next = time.Time{}
	default:
		st.next = now.Add(c.sim(b.ReadyDelay + c.jitter(b)))
	}
}

// serviceAvailable tells whether a Service has a ready endpoint, as the endpointslice
// controller published it from the pods' readiness.
func (c *podController) serviceAvailable(ns, svc string) bool {
	slices, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc}))
	if err != nil {
		return false
	}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

func firstImage(pod *corev1.Pod) string {
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	return pod.Spec.Containers[0].Image
}

func (c *podController) crashingImage(pod *corev1.Pod) string {
	for _, ct := range pod.Spec.Containers {
		if c.sc.ImageCrashes(ct.Image) {
			return ct.Image
		}
	}
	return ""
}

func (c *podController) brokenImage(pod *corev1.Pod) string {
	for _, ct := range pod.Spec.Containers {
		if c.sc.ImageBroken(ct.Image) {
			return ct.Image
		}
	}
	return ""
}

// stamp is a time as the API stores it (seconds): a status built from the same state twice
// must compare equal to what was read back.
func stamp(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// status is the pod status a kubelet would report for st, as kubesim's write_status builds
// it (caller holds c.mu).
func (c *podController) status(pod *corev1.Pod, st *podState) *corev1.PodStatus {
	now := time.Now()
	old := &pod.Status
	started := st.stage >= stageRunning
	ready := st.stage == stageReady || (st.job && st.stage == stageRunning)
	s := &corev1.PodStatus{
		ObservedGeneration: pod.Generation,
		Phase:              corev1.PodPending,
		HostIP:             "127.0.0.1",
		HostIPs:            []corev1.HostIP{{IP: "127.0.0.1"}},
		QOSClass:           old.QOSClass,
	}
	switch {
	case st.stage == stageDone && st.exitCode != 0:
		s.Phase = corev1.PodFailed
	case st.stage == stageDone:
		s.Phase = corev1.PodSucceeded
	case started:
		s.Phase = corev1.PodRunning
	}
	if st.startTime.IsZero() {
		st.startTime = now
		if old.StartTime != nil {
			st.startTime = old.StartTime.Time
		}
	}
	s.StartTime = ptr.To(stamp(st.startTime))
	if st.ip != "" {
		s.PodIP = st.ip
		s.PodIPs = []corev1.PodIP{{IP: st.ip}}
	}

	names := make([]string, 0, len(pod.Spec.Containers))
	for _, ct := range pod.Spec.Containers {
		names = append(names, ct.Name)
	}
	why, msg := "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
	if st.stage == stageDone {
		why, msg = "PodCompleted", ""
	}
	initialized := started || len(pod.Spec.InitContainers) == 0
	cond := func(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
		pc := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, ObservedGeneration: pod.Generation}
		if !ok {
			pc.Status, pc.Reason, pc.Message = corev1.ConditionFalse, reason, message
		}
		pc.LastTransitionTime = stamp(now)
		for _, o := range old.Conditions { // a transition time only moves when the status does
			if o.Type == t && o.Status == pc.Status && !o.LastTransitionTime.IsZero() {
				pc.LastTransitionTime = o.LastTransitionTime
			}
		}
		return pc
	}
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, started && st.stage != stageDone, "", ""),
		cond(corev1.PodInitialized, initialized, "ContainersNotInitialized", "containers with incomplete status: [init]"),
		cond(corev1.PodReady, ready, why, msg),
		cond(corev1.ContainersReady, ready, why, msg),
	}
	// Conditions that others own (PodScheduled from the scheduler, DisruptionTarget, ...) stay.
	for _, o := range old.Conditions {
		switch o.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady:
		default:
			s.Conditions = append(s.Conditions, o)
		}
	}

	for i, ct := range pod.Spec.InitContainers {
		cs := corev1.ContainerStatus{Name: ct.Name, Image: ct.Image, ImageID: imageID(ct.Image, started)}
		if started { // init containers take no time here: done before the first start
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
				StartedAt: stamp(st.started), FinishedAt: stamp(st.started),
				ContainerID: containerID(pod.UID, 100+i, 0)}
			cs.ContainerID = cs.State.Terminated.ContainerID
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		cs.Started = ptr.To(false)
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	for i, ct := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{
			Name:         ct.Name,
			Image:        ct.Image,
			ImageID:      imageID(ct.Image, started),
			Ready:        ready,
			Started:      ptr.To(st.stage == stageRunning || st.stage == stageReady),
			RestartCount: int32(st.restarts),
		}
		if started {
			cs.ContainerID = containerID(pod.UID, i, st.restarts)
		}
		switch st.stage {
		case stageNew, stageCreating:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			if !initialized {
				cs.State.Waiting.Reason = "PodInitializing"
			}
		case stagePullErr:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull",
				Message: fmt.Sprintf("failed to pull and unpack image %q: not found", ct.Image)}
		case stagePullBackOff:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff",
				Message: fmt.Sprintf("Back-off pulling image %q", ct.Image)}
		case stageRunning, stageReady:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: stamp(st.started)}
		case stageCrashed:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %ds restarting failed container=%s pod=%s_%s(%s)",
					int(backoff(st.restarts, 300)), ct.Name, pod.Name, pod.Namespace, pod.UID)}
		case stageDone:
			reason := "Completed"
			if st.exitCode != 0 {
				reason = "Error"
			}
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(st.exitCode), Reason: reason,
				StartedAt: stamp(st.started), FinishedAt: stamp(st.finished), ContainerID: cs.ContainerID}
		}
		if st.restarts > 0 && !st.lastFinished.IsZero() {
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
				StartedAt: stamp(st.lastStarted), FinishedAt: stamp(st.lastFinished),
				ContainerID: containerID(pod.UID, i, st.restarts-1)}
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	return s
}

func imageID(image string, pulled bool) string {
	if !pulled {
		return ""
	}
	var h uint32 = 2166136261 // FNV-1a, as kubesim: a stable made-up digest per image
	for i := 0; i < len(image); i++ {
		h = (h ^ uint32(image[i])) * 16777619
	}
	return fmt.Sprintf("%s@sha256:%08x%08x", image, h, h^0x9e3779b9)
}

func containerID(uid types.UID, index, restarts int) string {
	u := strings.ReplaceAll(string(uid), "-", "")
	return fmt.Sprintf("containerd://%s%04x%04x", u, index, restarts)
}

// logLine is one line of a container's output and when it was printed.
type logLine struct {
	at   time.Time
	text string
}

// logError is a kubelet's refusal to serve logs (HTTP status and message).
type logError struct {
	code int
	msg  string
}

func (e *logError) Error() string { return e.msg }

// logs returns the lines of a container that have been printed so far, and whether the
// container has stopped (so a follow stream ends), as kubesim's ks_ctl_pod_log computes them:
// the scenario's lines spread over a Job pod's run, then what a crashing process prints.
func (c *podController) logs(ns, name, container string, previous bool) ([]logLine, bool, *logError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.states[ns+"/"+name]
	if st == nil {
		if _, err := c.pods.Pods(ns).Get(name); err == nil {
			return nil, false, &logError{400, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, name)}
		}
		return nil, true, &logError{404, fmt.Sprintf("pod %s/%s not found", ns, name)}
	}
	if st.stage < stageRunning && st.restarts == 0 {
		reason := "ContainerCreating"
		switch st.stage {
		case stagePullErr:
			reason = "ErrImagePull"
		case stagePullBackOff:
			reason = "ImagePullBackOff"
		}
		return nil, false, &logError{400, fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, name, reason)}
	}
	if previous && st.restarts == 0 {
		return nil, true, &logError{400, fmt.Sprintf("previous terminated container %q in pod %q not found", container, name)}
	}
	b := c.sc.Behaviour(st.rule)
	start := st.started
	if previous && !st.lastStarted.IsZero() {
		start = st.lastStarted
	}
	var lines []logLine
	n := len(b.Logs)
	run := c.sim(b.Duration)
	for i, text := range b.Logs {
		at := start
		if st.job && n > 0 {
			at = start.Add(run * time.Duration(i) / time.Duration(n))
		}
		lines = append(lines, logLine{at, text})
	}
	visible := len(lines)
	end := st.finished
	if st.stage == stageCrashed {
		end = st.lastFinished
	}
	if st.job {
		if st.stage != stageDone && run > 0 {
			visible = 1 + int(float64(time.Since(start))/float64(run)*float64(n))
		}
		if st.stage == stageDone && st.exitCode != 0 {
			lines = append(lines, logLine{end, fmt.Sprintf("error: exit status %d", st.exitCode)})
			visible = len(lines)
		}
	} else if st.crashing != "" {
		if st.stage == stageCrashed || previous {
			lines = append(lines, logLine{end, fmt.Sprintf("panic: %s exited at start (scenario crashing_images)", st.crashing)})
			visible = len(lines)
		}
	} else if st.missing != "" {
		lines = append(lines, logLine{start, fmt.Sprintf("waiting for service %q...", st.missing)})
		visible = len(lines)
		if st.stage == stageCrashed || previous {
			lines = append(lines, logLine{end, fmt.Sprintf("fatal: required service %q is not available", st.missing)})
			visible = len(lines)
		}
	}
	visible = min(visible, len(lines))
	return lines[:visible], st.stage == stageDone || st.stage == stageCrashed, nil
}

// eventBroadcaster sends our events (as the "kubelet" of each node) to the API.
func eventBroadcaster(ctx context.Context, client kubernetes.Interface) record.EventBroadcaster {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return b
}
