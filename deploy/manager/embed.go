// Package deploymanager ships the manager's RBAC manifests inside the binary, so that whatever
// installs them outside `kubectl apply -k deploy/` (the test bed, the demo) uses exactly the
// checked-in files.
package deploymanager

import (
	"bytes"
	_ "embed"
)

var (
	//go:embed algorithm-job-rbac.yaml
	algorithmJobRBAC []byte
	//go:embed rbac.yaml
	managerRBAC []byte
)

// AlgorithmJobRBAC returns a copy of algorithm-job-rbac.yaml: the ClusterRole
// kapacity-algorithm-job that algorithm jobs are bound to in their portrait's namespace.
func AlgorithmJobRBAC() []byte { return bytes.Clone(algorithmJobRBAC) }

// ManagerRBAC returns a copy of rbac.yaml: the manager's ServiceAccount, roles and bindings, the
// webhook certificate Secret and the metrics reader role, as YAML documents.
func ManagerRBAC() []byte { return bytes.Clone(managerRBAC) }
