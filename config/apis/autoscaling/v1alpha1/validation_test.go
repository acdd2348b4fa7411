package v1alpha1

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// wantErr is one expected error: its type, its field path and a piece of its message.
type wantErr struct {
	typ    field.ErrorType
	path   string
	detail string
}

func checkErrors(t *testing.T, got field.ErrorList, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got.ToAggregate())
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.Field != w.path || !strings.Contains(g.Error(), w.detail) {
			t.Errorf("error %d = %q (type %s, field %s), want type %s, field %s, containing %q",
				i, g.Error(), g.Type, g.Field, w.typ, w.path, w.detail)
		}
	}
}

func validIHPA() *IntelligentHorizontalPodAutoscaler {
	return &IntelligentHorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: IntelligentHorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    1,
			MaxReplicas:    10,
			PortraitProviders: []HorizontalPortraitProvider{
				{Type: StaticHorizontalPortraitProviderType, Priority: 0, Static: &StaticHorizontalPortraitProvider{Replicas: 2}},
				{Type: CronHorizontalPortraitProviderType, Priority: 1, Cron: &CronHorizontalPortraitProvider{Crons: []ReplicaCron{
					{Name: "morning", Start: "0 8 * * *", End: "0 12 * * *", Replicas: 5},
					{Name: "evening", Start: "0 18 * * *", End: "0 22 * * *", Replicas: 6},
				}}},
				{Type: DynamicHorizontalPortraitProviderType, Priority: 2, Dynamic: &DynamicHorizontalPortraitProvider{PortraitSpec: PortraitSpec{
					PortraitType: ReactivePortraitType,
					Metrics: []MetricSpec{{MetricSpec: autoscalingv2.MetricSpec{
						Type: autoscalingv2.ResourceMetricSourceType,
						Resource: &autoscalingv2.ResourceMetricSource{Name: "cpu", Target: autoscalingv2.MetricTarget{
							Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(30)),
						}},
					}}},
					Algorithm: PortraitAlgorithm{Type: KubeHPAPortraitAlgorithmType},
				}}},
			},
			Behavior: IntelligentHorizontalPodAutoscalerBehavior{
				ScaleUp:   ScalingBehavior{GrayStrategy: &GrayStrategy{GrayState: PodStateOnline, ChangeIntervalSeconds: 30, ChangePercent: 20}},
				ScaleDown: ScalingBehavior{GrayStrategy: &GrayStrategy{GrayState: PodStateCutoff, ChangeIntervalSeconds: 30, ChangePercent: 50, ObservationSeconds: 60}},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func cronProvider(priority int32, crons ...ReplicaCron) HorizontalPortraitProvider {
	return HorizontalPortraitProvider{Type: CronHorizontalPortraitProviderType, Priority: priority, Cron: &CronHorizontalPortraitProvider{Crons: crons}}
}

func TestIHPAValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *IntelligentHorizontalPodAutoscalerSpec)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*IntelligentHorizontalPodAutoscalerSpec) {}},
		{
			name:   "min above max",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.MinReplicas, s.MaxReplicas = 5, 3 },
			want:   []wantErr{{field.ErrorTypeInvalid, "spec.maxReplicas", "raise spec.maxReplicas or lower spec.minReplicas"}},
		},
		{
			name:   "negative min",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.MinReplicas = -1 },
			want:   []wantErr{{field.ErrorTypeInvalid, "spec.minReplicas", "greater than or equal to 0"}},
		},
		{
			name: "target without kind and name",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "a/b/c"}
			},
			want: []wantErr{
				{field.ErrorTypeRequired, "spec.scaleTargetRef.kind", "for example Deployment"},
				{field.ErrorTypeRequired, "spec.scaleTargetRef.name", "name of the workload"},
				{field.ErrorTypeInvalid, "spec.scaleTargetRef.apiVersion", "apps/v1"},
			},
		},
		{
			name:   "unknown scale mode",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.ScaleMode = "Manual" },
			want:   []wantErr{{field.ErrorTypeNotSupported, "spec.scaleMode", `"Auto", "Preview"`}},
		},
		{
			name:   "no providers",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.PortraitProviders = nil },
			want:   []wantErr{{field.ErrorTypeRequired, "spec.portraitProviders", "Static provider"}},
		},
		{
			name:   "type without its block",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.PortraitProviders[0].Static = nil },
			want:   []wantErr{{field.ErrorTypeRequired, "spec.portraitProviders[0].static", "add static.replicas or change type"}},
		},
		{
			name:   "unknown provider type",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) { s.PortraitProviders[0].Type = "Magic" },
			want:   []wantErr{{field.ErrorTypeNotSupported, "spec.portraitProviders[0].type", `"Static", "Cron", "Dynamic"`}},
		},
		{
			name: "unknown time zone",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[0].TimeZone = "Mars/Olympus"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[0].timeZone", "IANA time zone"}},
		},
		{
			name: "bad cron expression",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1].Start = "0 25 * * *"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].start", "standard cron expression"}},
		},
		{
			name: "six fields are not standard",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1].End = "0 0 22 * * *"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].end", "standard cron expression"}},
		},
		{
			name: "start equals end",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1].End = "0 18 * * *"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].end", "must differ from start"}},
		},
		{
			name: "duplicate cron name",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1].Name = "morning"
			},
			want: []wantErr{{field.ErrorTypeDuplicate, "spec.portraitProviders[1].cron.crons[1].name", "already used by spec.portraitProviders[1].cron.crons[0]"}},
		},
		{
			name: "overlapping crons in one provider",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1].Start = "0 11 * * *"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1]",
				`overlaps cron "morning" (spec.portraitProviders[1].cron.crons[0]) of the same priority 1: both are active from 2024-01-01T11:00:00Z to 2024-01-01T12:00:00Z`}},
		},
		{
			name: "overlapping crons across providers of equal priority",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders = append(s.PortraitProviders, cronProvider(1, ReplicaCron{Name: "lunch", Start: "30 11 * * *", End: "0 14 * * *", Replicas: 9}))
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[3].cron.crons[0]", `overlaps cron "morning"`}},
		},
		{
			name: "overlapping crons of different priorities are fine",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders = append(s.PortraitProviders, cronProvider(5, ReplicaCron{Name: "lunch", Start: "30 11 * * *", End: "0 14 * * *", Replicas: 9}))
			},
		},
		{
			name: "overlap across time zones",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				// 16:00-17:00 in Shanghai (UTC+8) is 08:00-09:00 UTC, inside "morning".
				s.PortraitProviders[1].Cron.Crons[1] = ReplicaCron{Name: "shanghai", TimeZone: "Asia/Shanghai", Start: "0 16 * * *", End: "0 17 * * *", Replicas: 3}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1]", "from 2024-01-01T08:00:00Z to 2024-01-01T09:00:00Z"}},
		},
		{
			name: "overlap of windows wrapping midnight",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons = []ReplicaCron{
					{Name: "night", Start: "0 22 * * *", End: "0 2 * * *", Replicas: 1},
					{Name: "early", Start: "0 1 * * *", End: "0 3 * * *", Replicas: 1},
				}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1]", "from 2024-01-01T01:00:00Z to 2024-01-01T02:00:00Z"}},
		},
		{
			name: "adjacent and weekly windows do not overlap",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons = []ReplicaCron{
					{Name: "mon", Start: "0 9 * * 1", End: "0 18 * * 1", Replicas: 4},
					{Name: "mon-evening", Start: "0 18 * * 1", End: "0 23 * * 1", Replicas: 2},
					{Name: "tue", Start: "0 9 * * 2", End: "0 18 * * 2", Replicas: 4},
					{Name: "month-start", Start: "0 0 1 * *", End: "0 9 1 * *", Replicas: 8},
				}
			},
		},
		{
			name: "monthly window overlapping a weekly one later in the year",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons = []ReplicaCron{
					{Name: "tue", Start: "0 9 * * 2", End: "0 18 * * 2", Replicas: 4},
					// 1 October 2024 is the first Tuesday of the year that is also the first of a month.
					{Name: "month-start", Start: "0 8 1 * *", End: "0 10 1 * *", Replicas: 8},
				}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1]", "from 2024-10-01T09:00:00Z to 2024-10-01T10:00:00Z"}},
		},
		{
			name: "window that never opens",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				// On weekdays the end fires with the start, which keeps the window shut; at the weekend
				// another start comes before the next end. So the window never opens.
				s.PortraitProviders[1].Cron.Crons[1] = ReplicaCron{Name: "never", Start: "0 8 * * *", End: "0 8 * * 1-5", Replicas: 1}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].start", "never opens a window"}},
		},
		{
			name: "start that never fires",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[1].Cron.Crons[1] = ReplicaCron{Name: "feb30", Start: "0 0 30 2 *", End: "0 1 * * *", Replicas: 1}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[1].cron.crons[1].start", "never fires"}},
		},
		{
			name: "duplicate dynamic portrait type",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				d := *s.PortraitProviders[2].Dynamic
				s.PortraitProviders = append(s.PortraitProviders, HorizontalPortraitProvider{Type: DynamicHorizontalPortraitProviderType, Priority: 3, Dynamic: &d})
			},
			want: []wantErr{{field.ErrorTypeDuplicate, "spec.portraitProviders[3].dynamic.portraitType", "spec.portraitProviders[2].dynamic already uses this portrait type"}},
		},
		{
			name: "portrait type that cannot name an object",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[2].Dynamic.PortraitType = "Re active"
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[2].dynamic.portraitType", "DNS label"}},
		},
		{
			name: "bad tolerance",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[2].Dynamic.Algorithm.KubeHPA = &KubeHPAPortraitAlgorithm{Tolerance: "ten percent"}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitProviders[2].dynamic.algorithm.kubeHPA.tolerance", `for example "0.1"`}},
		},
		{
			name: "duplicate metric names and unknown operator",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				m := s.PortraitProviders[2].Dynamic.Metrics[0]
				m.Name, m.Operator = "cpu", "!="
				s.PortraitProviders[2].Dynamic.Metrics = []MetricSpec{m, m}
			},
			want: []wantErr{
				{field.ErrorTypeNotSupported, "spec.portraitProviders[2].dynamic.metrics[0].operator", `"=="`},
				{field.ErrorTypeDuplicate, "spec.portraitProviders[2].dynamic.metrics[1].name", `"cpu"`},
				{field.ErrorTypeNotSupported, "spec.portraitProviders[2].dynamic.metrics[1].operator", `"=="`},
			},
		},
		{
			name: "external job without its block",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.PortraitProviders[2].Dynamic.Algorithm.Type = ExternalJobPortraitAlgorithmType
			},
			want: []wantErr{{field.ErrorTypeRequired, "spec.portraitProviders[2].dynamic.algorithm.externalJob", "add externalJob.job"}},
		},
		{
			name: "scale up gray state other than Online",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.Behavior.ScaleUp.GrayStrategy.GrayState = PodStateCutoff
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.behavior.scaleUp.grayStrategy.grayState", "must be Online"}},
		},
		{
			name: "scale down gray state Online",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.Behavior.ScaleDown.GrayStrategy.GrayState = PodStateOnline
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.behavior.scaleDown.grayStrategy.grayState", "must be Cutoff, Standby or Deleted"}},
		},
		{
			name: "gray steps out of range",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				s.Behavior.ScaleDown.GrayStrategy.ChangePercent = 0
				s.Behavior.ScaleDown.GrayStrategy.ChangeIntervalSeconds = 0
			},
			want: []wantErr{
				{field.ErrorTypeInvalid, "spec.behavior.scaleDown.grayStrategy.changeIntervalSeconds", "at least 1"},
				{field.ErrorTypeInvalid, "spec.behavior.scaleDown.grayStrategy.changePercent", "between 1 and 100"},
			},
		},
		{
			name: "stability checkers",
			mutate: func(s *IntelligentHorizontalPodAutoscalerSpec) {
				errorRate := MetricSpec{Name: "error-rate", Operator: GreaterThan, MetricSpec: autoscalingv2.MetricSpec{
					Type: autoscalingv2.ExternalMetricSourceType,
					External: &autoscalingv2.ExternalMetricSource{
						Metric: autoscalingv2.MetricIdentifier{Name: "http_errors_ratio"},
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType},
					},
				}}
				s.StabilityCheckers = []StabilityChecker{
					{Type: MetricsStabilityCheckerType, StabilizationAction: StabilizationActionPause, Metrics: &MetricsStabilityChecker{Metrics: []MetricSpec{errorRate}}},
					{Type: MetricsStabilityCheckerType, StabilizationAction: "Panic"},
				}
				s.Behavior.ScaleDown.GrayStrategy.StabilityCheckers = []StabilityChecker{
					{Type: MetricsStabilityCheckerType, StabilizationAction: StabilizationActionRollback, CoolDownSeconds: 60, Metrics: &MetricsStabilityChecker{Metrics: []MetricSpec{errorRate}}},
					{Type: ExternalStabilityCheckerType, StabilizationAction: StabilizationActionRollback},
				}
			},
			want: []wantErr{
				{field.ErrorTypeRequired, "spec.behavior.scaleDown.grayStrategy.stabilityCheckers[1].external", "add external.name"},
				{field.ErrorTypeNotSupported, "spec.stabilityCheckers[1].stabilizationAction", `"Pause", "Rollback"`},
				{field.ErrorTypeRequired, "spec.stabilityCheckers[1].metrics.metrics", "at least one metric rule"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ihpa := validIHPA()
			tc.mutate(&ihpa.Spec)
			ihpa.Default()
			checkErrors(t, ihpa.Validate(), tc.want)
		})
	}
}

func TestHorizontalPortraitValidate(t *testing.T) {
	valid := func() *HorizontalPortrait {
		return &HorizontalPortrait{
			Spec: HorizontalPortraitSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "nginx"},
				PortraitSpec:   PortraitSpec{PortraitType: PredictivePortraitType, Algorithm: PortraitAlgorithm{Type: "Prophet", Config: nil}, ExternalGeneratorName: "acme"},
			},
			Status: HorizontalPortraitStatus{PortraitData: &HorizontalPortraitData{
				Type:       TimeSeriesHorizontalPortraitDataType,
				TimeSeries: &TimeSeriesHorizontalPortraitData{TimeSeries: []ReplicaTimeSeriesPoint{{Timestamp: 100, Replicas: 1}, {Timestamp: 200, Replicas: 2}}},
				ExpireTime: &metav1.Time{Time: time.Unix(300, 0)},
			}},
		}
	}
	cases := []struct {
		name   string
		mutate func(p *HorizontalPortrait)
		want   []wantErr
	}{
		{name: "valid, with an algorithm of an external generator", mutate: func(*HorizontalPortrait) {}},
		{
			name: "points out of order",
			mutate: func(p *HorizontalPortrait) {
				p.Status.PortraitData.TimeSeries.TimeSeries = append(p.Status.PortraitData.TimeSeries.TimeSeries, ReplicaTimeSeriesPoint{Timestamp: 200, Replicas: 3})
			},
			want: []wantErr{{field.ErrorTypeInvalid, "status.portraitData.timeSeries.timeSeries[2].timestamp", "sort the points by time"}},
		},
		{
			name:   "data type without its block",
			mutate: func(p *HorizontalPortrait) { p.Status.PortraitData.Type = StaticHorizontalPortraitDataType },
			want:   []wantErr{{field.ErrorTypeRequired, "status.portraitData.static", "static must be set"}},
		},
		{
			name: "overlapping cron data",
			mutate: func(p *HorizontalPortrait) {
				p.Status.PortraitData = &HorizontalPortraitData{Type: CronHorizontalPortraitDataType, Cron: &CronHorizontalPortraitData{Crons: []ReplicaCron{
					{Name: "a", Start: "@daily", End: "0 6 * * *", Replicas: 1},
					{Name: "b", Start: "0 5 * * *", End: "0 7 * * *", Replicas: 1},
				}}}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "status.portraitData.cron.crons[1]", `overlaps cron "a" (status.portraitData.cron.crons[0]) of the same portrait`}},
		},
		{
			name: "cron job without its block",
			mutate: func(p *HorizontalPortrait) {
				p.Spec.Algorithm = PortraitAlgorithm{Type: ExternalJobPortraitAlgorithmType, ExternalJob: &ExternalJobPortraitAlgorithm{
					Job: PortraitAlgorithmJob{Type: CronJobPortraitAlgorithmJobType},
				}}
			},
			want: []wantErr{
				{field.ErrorTypeRequired, "spec.algorithm.externalJob.job.cronJob", "add cronJob.template"},
				{field.ErrorTypeRequired, "spec.algorithm.externalJob.resultSource.type", "ConfigMap"},
			},
		},
		{
			name: "burst with defaults and a burst under way",
			mutate: func(p *HorizontalPortrait) {
				p.Spec.PortraitType, p.Spec.ExternalGeneratorName = BurstPortraitType, ""
				p.Spec.Algorithm = PortraitAlgorithm{Type: BurstPortraitAlgorithmType}
				p.Status.Burst = &BurstStatus{Since: metav1.Unix(100, 0), BaselineReplicas: 3}
			},
		},
		{
			name: "burst algorithm for another portrait type",
			mutate: func(p *HorizontalPortrait) {
				p.Spec.Algorithm = PortraitAlgorithm{Type: BurstPortraitAlgorithmType}
			},
			want: []wantErr{{field.ErrorTypeInvalid, "spec.portraitType", "set portraitType to Burst"}},
		},
		{
			name: "burst parameters out of bounds",
			mutate: func(p *HorizontalPortrait) {
				p.Spec.PortraitType = BurstPortraitType
				p.Spec.Algorithm = PortraitAlgorithm{Type: BurstPortraitAlgorithmType, Burst: &BurstPortraitAlgorithm{
					SyncPeriod:     metav1.Duration{Duration: 2 * time.Hour},
					SampleInterval: metav1.Duration{Duration: time.Millisecond},
					StartupDelay:   metav1.Duration{Duration: -time.Second},
					Margin:         "-0.1",
					PodCapacity:    ptr(resource.MustParse("0")),
				}}
				p.Status.Burst = &BurstStatus{BaselineReplicas: -1}
			},
			want: []wantErr{
				{field.ErrorTypeInvalid, "spec.algorithm.burst.syncPeriod", "between 1s and 1h0m0s"},
				{field.ErrorTypeInvalid, "spec.algorithm.burst.sampleInterval", "scrape interval"},
				{field.ErrorTypeInvalid, "spec.algorithm.burst.startupDelay", "time a new pod takes"},
				{field.ErrorTypeInvalid, "spec.algorithm.burst.margin", "non-negative decimal"},
				{field.ErrorTypeInvalid, "spec.algorithm.burst.podCapacity", "must be positive"},
				{field.ErrorTypeInvalid, "status.burst.baselineReplicas", ""},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.mutate(p)
			p.Default()
			checkErrors(t, p.Validate(), tc.want)
		})
	}
}

func TestReplicaProfileValidate(t *testing.T) {
	valid := func() *ReplicaProfile {
		return &ReplicaProfile{Spec: ReplicaProfileSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			OnlineReplicas: 3, CutoffReplicas: 2,
		}}
	}
	cases := []struct {
		name   string
		mutate func(r *ReplicaProfile)
		want   []wantErr
	}{
		{name: "valid", mutate: func(*ReplicaProfile) {}},
		{
			name:   "negative count",
			mutate: func(r *ReplicaProfile) { r.Spec.StandbyReplicas = -2 },
			want:   []wantErr{{field.ErrorTypeInvalid, "spec.standbyReplicas", "greater than or equal to 0"}},
		},
		{
			name:   "unknown direction",
			mutate: func(r *ReplicaProfile) { r.Spec.AllowedScalingDirection = "Sideways" },
			want:   []wantErr{{field.ErrorTypeNotSupported, "spec.allowedScalingDirection", `"Both", "Neither", "Up", "Down"`}},
		},
		{
			name: "external sorter and controller without their blocks",
			mutate: func(r *ReplicaProfile) {
				r.Spec.Behavior.PodSorter.Type = ExternalPodSorterType
				r.Spec.Behavior.PodTrafficController = PodTrafficController{Type: ExternalPodTrafficControllerType, External: &ExternalPodTrafficController{}}
			},
			want: []wantErr{
				{field.ErrorTypeRequired, "spec.behavior.podSorter.external", "add external.name"},
				{field.ErrorTypeRequired, "spec.behavior.podTrafficController.external.name", "name the external pod traffic controller"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mutate(r)
			r.Default()
			checkErrors(t, r.Validate(), tc.want)
		})
	}

	t.Run("target is immutable", func(t *testing.T) {
		old, updated := valid(), valid()
		updated.Spec.ScaleTargetRef.Name = "api"
		checkErrors(t, updated.ValidateUpdate(old), []wantErr{{field.ErrorTypeForbidden, "spec.scaleTargetRef", "scaleTargetRef is immutable"}})
		updated.Spec.ScaleTargetRef.Name = "web"
		updated.Spec.OnlineReplicas = 7
		checkErrors(t, updated.ValidateUpdate(old), nil)
	})
}

func TestCronWindowActive(t *testing.T) {
	w, err := ParseCronWindow(ReplicaCron{Name: "x", TimeZone: "Asia/Shanghai", Start: "0 22 * * *", End: "0 2 * * *"})
	if err != nil {
		t.Fatal(err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	cases := []struct {
		at         time.Time
		active     bool
		wantCloses time.Time
	}{
		{time.Date(2024, 5, 1, 21, 59, 0, 0, shanghai), false, time.Time{}},
		// A start exactly now has happened: robfig's Next is strictly after now.
		{time.Date(2024, 5, 1, 22, 0, 0, 0, shanghai), true, time.Date(2024, 5, 2, 2, 0, 0, 0, shanghai)},
		{time.Date(2024, 5, 2, 1, 0, 0, 0, shanghai), true, time.Date(2024, 5, 2, 2, 0, 0, 0, shanghai)},
		{time.Date(2024, 5, 2, 2, 0, 0, 0, shanghai), false, time.Time{}},
	}
	for _, tc := range cases {
		active, closes := w.Active(tc.at.UTC())
		if active != tc.active || !closes.Equal(tc.wantCloses) {
			t.Errorf("Active(%s) = %v, %s; want %v, %s", tc.at, active, closes, tc.active, tc.wantCloses)
		}
	}
}
