package replicaprofile

import (
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
)

// controllerOptions recovers panics (as Kapacity does) and runs concurrency workers.
func controllerOptions(concurrency int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: max(1, concurrency), RecoverPanic: ptr.To(true)}
}
