package replay

import (
	"fmt"
	"time"

	"github.com/kapacitystack/kapacity/config/apis/autoscaling/v1alpha1"
	"github.com/kapacitystack/kapacity/executor/gray"
	"github.com/kapacitystack/kapacity/executor/podstate"
)

// portraitSource gives the portrait value in effect at now; ok is false when there is none (the IHPA then
// reports NoValidPortraitValue and leaves the ReplicaProfile as it is).
type portraitSource func(now time.Time, o observation) (replicas int, ok bool)

// ihpaPolicy is an IntelligentHorizontalPodAutoscaler following a portrait, through the executor's own
// gray planner; the ReplicaProfile it writes is applied at once (its controller only relabels pods and
// sets the workload's replicas).
type ihpaPolicy struct {
	provider string
	source   portraitSource
	spec     v1alpha1.IntelligentHorizontalPodAutoscalerSpec
	status   v1alpha1.IntelligentHorizontalPodAutoscalerStatus
	profile  *podstate.Counts
}

// newIHPAPolicy scales down through grayDown (nil: straight to the target) and scales up at once, as the
// quick-start samples do.
func newIHPAPolicy(provider string, w Workload, grayDown *v1alpha1.GrayStrategy, source portraitSource) *ihpaPolicy {
	p := &ihpaPolicy{provider: provider, source: source}
	p.spec.MinReplicas, p.spec.MaxReplicas = int32(w.MinReplicas), int32(w.MaxReplicas)
	if grayDown != nil {
		g := *grayDown
		p.spec.Behavior.ScaleDown.GrayStrategy = &g
	}
	return p
}

func (p *ihpaPolicy) decide(now time.Time, o observation) (total, online int, err error) {
	replicas, ok := p.source(now, o)
	if !ok {
		return o.total, o.online, nil
	}
	value := &v1alpha1.HorizontalPortraitValue{Provider: p.provider, Replicas: int32(replicas)}
	plan, err := gray.Compute(gray.Input{Spec: &p.spec, Status: &p.status, Value: value, Profile: p.profile, Now: now})
	if err != nil {
		return 0, 0, fmt.Errorf("%s: gray plan at %s: %w", p.provider, now.Format(time.RFC3339), err)
	}
	p.status = plan.Status
	if !plan.Apply {
		return o.total, o.online, nil
	}
	t := plan.Target
	p.profile = &t
	return int(t.Online + t.Cutoff + t.Standby), int(t.Online), nil
}
