package requeue

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestOnConflict(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "replicaprofiles"}, "web", errors.New("stale"))
	other := errors.New("boom")
	tests := []struct {
		name    string
		res     ctrl.Result
		err     error
		want    ctrl.Result
		wantErr error
	}{
		{name: "conflict becomes a quick requeue", err: conflict, want: ctrl.Result{RequeueAfter: ConflictDelay}},
		{name: "other errors pass through", res: ctrl.Result{RequeueAfter: time.Minute}, err: other, want: ctrl.Result{RequeueAfter: time.Minute}, wantErr: other},
		{name: "success passes through", res: ctrl.Result{RequeueAfter: time.Second}, want: ctrl.Result{RequeueAfter: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OnConflict(context.Background(), tt.res, tt.err)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("OnConflict = (%v, %v), want (%v, %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
