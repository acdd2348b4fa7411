package v1alpha1

import (
	"fmt"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func manyCrons(n int, prefix string) []ReplicaCron {
	crons := make([]ReplicaCron, n)
	for i := range crons {
		// Disjoint windows: minute i to minute i+1 of hour 0 … (n ≤ 64 < 60·24).
		crons[i] = ReplicaCron{Name: fmt.Sprintf("%s%d", prefix, i), Start: fmt.Sprintf("%d %d * * *", i%60, i/60), End: fmt.Sprintf("%d %d * * *", (i+1)%60, (i+1)/60), Replicas: 1}
	}
	return crons
}

func TestLimits(t *testing.T) {
	long := strings.Repeat("a", MaxNameLength+1)
	cases := []struct {
		name   string
		mutate func(a *IntelligentHorizontalPodAutoscaler)
		want   []wantErr
	}{
		{
			name: "too many providers",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				for len(a.Spec.PortraitProviders) <= MaxPortraitProviders {
					a.Spec.PortraitProviders = append(a.Spec.PortraitProviders, a.Spec.PortraitProviders[0])
				}
			},
			want: []wantErr{{field.ErrorTypeTooMany, "spec.portraitProviders", "must have at most 32 items"}},
		},
		{
			name: "too many crons in one list",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				a.Spec.PortraitProviders[1].Cron.Crons = manyCrons(MaxCrons+1, "c")
			},
			want: []wantErr{
				{field.ErrorTypeInvalid, "spec.portraitProviders", "the Cron providers hold 65 cron rules in all, more than 64"},
			},
		},
		{
			name: "too many crons in all the providers",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				a.Spec.PortraitProviders[1].Cron.Crons = manyCrons(40, "a")
				a.Spec.PortraitProviders = append(a.Spec.PortraitProviders, cronProvider(7, manyCrons(40, "b")...))
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders", "80 cron rules in all, more than 64: merge windows or split the autoscaler"}},
		},
		{
			name:   "cron name too long",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) { a.Spec.PortraitProviders[1].Cron.Crons[0].Name = long },
			want:   []wantErr{{field.ErrorTypeTooLong, "spec.portraitProviders[1].cron.crons[0].name", "may not be more than 253 bytes"}},
		},
		{
			name:   "time zone too long",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) { a.Spec.PortraitProviders[1].Cron.Crons[0].TimeZone = long },
			want:   []wantErr{{field.ErrorTypeTooLong, "spec.portraitProviders[1].cron.crons[0].timeZone", "may not be more than 64 bytes"}},
		},
		{
			name: "too many stability checkers",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				for i := 0; i <= MaxStabilityCheckers; i++ {
					a.Spec.StabilityCheckers = append(a.Spec.StabilityCheckers, StabilityChecker{Type: ExternalStabilityCheckerType,
						StabilizationAction: StabilizationActionPause, External: &ExternalStabilityChecker{Name: fmt.Sprint(i)}})
				}
			},
			want: []wantErr{{field.ErrorTypeTooMany, "spec.stabilityCheckers", "must have at most 16 items"}},
		},
		{
			name: "external checker config too large",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				cfg := map[string]string{}
				for i := 0; i <= MaxConfigEntries; i++ {
					cfg[fmt.Sprint(i)] = "x"
				}
				a.Spec.StabilityCheckers = []StabilityChecker{{Type: ExternalStabilityCheckerType, StabilizationAction: StabilizationActionPause,
					External: &ExternalStabilityChecker{Name: "x", Config: cfg}}}
			},
			want: []wantErr{{field.ErrorTypeTooMany, "spec.stabilityCheckers[0].external.config", "must have at most 64 items"}},
		},
		{
			name: "metric name too long",
			mutate: func(a *IntelligentHorizontalPodAutoscaler) {
				a.Spec.PortraitProviders[2].Dynamic.Metrics[0].Name = long
			},
			want: []wantErr{{field.ErrorTypeTooLong, "spec.portraitProviders[2].dynamic.metrics[0].name", "may not be more than 253 bytes"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validIHPA()
			tc.mutate(a)
			a.Default()
			checkErrors(t, a.Validate(), tc.want)
		})
	}
}

func TestIHPAScaleTargetRefIsImmutable(t *testing.T) {
	old := validIHPA()
	a := validIHPA()
	a.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"}
	checkErrors(t, a.ValidateUpdate(old), []wantErr{{field.ErrorTypeForbidden, "spec.scaleTargetRef", "scaleTargetRef is immutable: delete the autoscaler"}})
	if errs := validIHPA().ValidateUpdate(old); len(errs) > 0 {
		t.Errorf("an unchanged target was refused: %v", errs)
	}
}

func TestTimeSeriesLimit(t *testing.T) {
	points := make([]ReplicaTimeSeriesPoint, MaxTimeSeriesPoints+1)
	for i := range points {
		points[i] = ReplicaTimeSeriesPoint{Timestamp: int64(60 * i), Replicas: 1}
	}
	d := &HorizontalPortraitData{Type: TimeSeriesHorizontalPortraitDataType, TimeSeries: &TimeSeriesHorizontalPortraitData{TimeSeries: points}}
	checkErrors(t, d.Validate(field.NewPath("status", "portraitData")), []wantErr{
		{field.ErrorTypeTooMany, "status.portraitData.timeSeries.timeSeries", "must have at most 10080 items"},
	})
}

// The slowest spec the limits allow for the webhook: 64 cron rules firing every minute, all of one
// priority, so that every window is walked to the event budget and compared with every other.
func BenchmarkValidateMostCrons(b *testing.B) {
	a := validIHPA()
	crons := make([]ReplicaCron, MaxCrons)
	for i := range crons {
		crons[i] = ReplicaCron{Name: fmt.Sprint(i), Start: fmt.Sprintf("%d-59/2 * * * *", i%2), End: fmt.Sprintf("%d-59/2 * * * *", (i+1)%2), Replicas: 1}
	}
	a.Spec.PortraitProviders[1].Cron.Crons = crons
	a.Default()
	b.ResetTimer()
	for b.Loop() {
		a.Validate()
	}
}
