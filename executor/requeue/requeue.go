// Package requeue holds the requeue policy the executor's controllers share.
package requeue

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
)

// ConflictDelay is how soon a reconcile that lost a race on a write runs again.
const ConflictDelay = 200 * time.Millisecond

// OnConflict turns a write conflict into a quick, quiet requeue. A conflict means the reconcile
// worked from an object older than the stored one (a stale cache, or another writer such as the
// workload's controller); starting over from what is stored is the safe answer, and never applies
// a step twice. Other results pass through.
func OnConflict(ctx context.Context, res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		logr.FromContextOrDiscard(ctx).V(1).Info("write conflict, retrying", "error", err.Error())
		return ctrl.Result{RequeueAfter: ConflictDelay}, nil
	}
	return res, err
}
