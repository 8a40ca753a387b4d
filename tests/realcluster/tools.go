//go:build tools

// This file pins kubectl to the same k8s.io/kubernetes module (and staging pins) as the
// control plane, so `go build k8s.io/kubernetes/cmd/kubectl` from this module builds a client
// of exactly the cluster's release.
package main

import _ "k8s.io/kubernetes/cmd/kubectl"
