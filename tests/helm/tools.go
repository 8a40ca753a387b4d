//go:build tools

// Pins helm's command, so that `go build helm.sh/helm/v4/cmd/helm` from this module builds the
// version go.mod names.
package main

import _ "helm.sh/helm/v4/cmd/helm"
