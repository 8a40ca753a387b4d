package main

// Simulated nodes: Node objects that look like a kubelet registered them, kept alive the way
// a kubelet keeps them alive (a Lease in kube-node-lease renewed every 10 s, the status
// re-posted every minute), so the node lifecycle controller treats them as healthy. Their
// kubelet endpoint is the fake kubelet (kubelet.go): the apiserver proxies pods/log there.

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const (
	leaseDuration   = 40 * time.Second // what a kubelet asks for
	leaseRenewEvery = 10 * time.Second // a quarter of it, as a kubelet does
	statusEvery     = time.Minute      // the node lifecycle controller only needs the lease
	kubeletVersion  = "v1.37.2"
)

// nodeName is the name of simulated node i (1-based).
func nodeName(i int) string { return fmt.Sprintf("realcluster-node-%d", i) }

type nodeSim struct {
	client      kubernetes.Interface
	names       []string
	kubeletPort int
	maxPods     int
}

// register creates the Node objects (status included) and their Leases.
func (n *nodeSim) register(ctx context.Context) error {
	for _, name := range n.names {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					"kubernetes.io/hostname":  name,
					"kubernetes.io/os":        "linux",
					"kubernetes.io/arch":      "amd64",
					"beta.kubernetes.io/os":   "linux",
					"beta.kubernetes.io/arch": "amd64",
				},
			},
		}
		created, err := n.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: "kubelet"})
		if err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		// Status is a subresource: the create above dropped whatever status it carried.
		created.Status = n.status(nil)
		if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "kubelet"}); err != nil {
			return fmt.Errorf("node %s status: %w", name, err)
		}
		if err := n.renewLease(ctx, created); err != nil {
			return err
		}
	}
	return nil
}

// run keeps the nodes alive until ctx ends.
func (n *nodeSim) run(ctx context.Context) {
	leases := time.NewTicker(leaseRenewEvery)
	defer leases.Stop()
	status := time.NewTicker(statusEvery)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leases.C:
			for _, name := range n.names {
				node, err := n.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err == nil {
					err = n.renewLease(ctx, node)
				}
				if err != nil && ctx.Err() == nil {
					klog.ErrorS(err, "renewing node lease", "node", name)
				}
			}
		case <-status.C:
			for _, name := range n.names {
				if err := n.postStatus(ctx, name); err != nil && ctx.Err() == nil {
					klog.ErrorS(err, "posting node status", "node", name)
				}
			}
		}
	}
}

func (n *nodeSim) postStatus(ctx context.Context, name string) error {
	node, err := n.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	node.Status = n.status(&node.Status)
	_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{FieldManager: "kubelet"})
	return err
}

// status is a healthy node's status; old (if any) keeps the conditions' transition times.
func (n *nodeSim) status(old *corev1.NodeStatus) corev1.NodeStatus {
	now := metav1.Now()
	transition := func(t corev1.NodeConditionType) metav1.Time {
		if old != nil {
			for _, c := range old.Conditions {
				if c.Type == t && !c.LastTransitionTime.IsZero() {
					return c.LastTransitionTime
				}
			}
		}
		return now
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: now, LastTransitionTime: transition(t)}
	}
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("16"),
		corev1.ResourceMemory:           resource.MustParse("64Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
		corev1.ResourcePods:             *resource.NewQuantity(int64(n.maxPods), resource.DecimalSI),
	}
	return corev1.NodeStatus{
		Capacity:    resources,
		Allocatable: resources.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		// InternalIP is the address the apiserver uses for the kubelet
		// (--kubelet-preferred-address-types=InternalIP): the fake kubelet on loopback.
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: "localhost"},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.kubeletPort)},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               "realcluster",
			SystemUUID:              "realcluster",
			BootID:                  "realcluster",
			KernelVersion:           "simulated",
			OSImage:                 "moonship realcluster simulated node",
			ContainerRuntimeVersion: "realcluster://" + kubeletVersion,
			KubeletVersion:          kubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
}

func (n *nodeSim) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, node.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:      node.Name,
				Namespace: corev1.NamespaceNodeLease,
				// As a kubelet does: the lease goes away with its node.
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(node.Name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: "kubelet"})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: "kubelet"})
	return err
}

// schedulable tells whether every node is Ready and free of NoSchedule taints (admission
// puts node.kubernetes.io/not-ready on a new node; the node lifecycle controller lifts it).
func (n *nodeSim) schedulable(ctx context.Context) (bool, error) {
	for _, name := range n.names {
		node, err := n.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, t := range node.Spec.Taints {
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				return false, nil
			}
		}
	}
	return true, nil
}
