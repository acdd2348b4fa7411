package v1alpha1

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIHPADefault(t *testing.T) {
	cases := []struct {
		name string
		in   IntelligentHorizontalPodAutoscalerSpec
		want IntelligentHorizontalPodAutoscalerSpec
	}{
		{
			name: "empty spec gets the scale mode only",
			want: IntelligentHorizontalPodAutoscalerSpec{ScaleMode: ScaleModeAuto},
		},
		{
			name: "explicit values are kept",
			in:   IntelligentHorizontalPodAutoscalerSpec{ScaleMode: ScaleModePreview},
			want: IntelligentHorizontalPodAutoscalerSpec{ScaleMode: ScaleModePreview},
		},
		{
			name: "cron time zones, KubeHPA parameters and a present ReplicaProfile behavior",
			in: IntelligentHorizontalPodAutoscalerSpec{
				PortraitProviders: []HorizontalPortraitProvider{
					{Type: CronHorizontalPortraitProviderType, Cron: &CronHorizontalPortraitProvider{Crons: []ReplicaCron{
						{Name: "a"}, {Name: "b", TimeZone: "Asia/Shanghai"},
					}}},
					{Type: DynamicHorizontalPortraitProviderType, Dynamic: &DynamicHorizontalPortraitProvider{PortraitSpec: PortraitSpec{
						Algorithm: PortraitAlgorithm{Type: KubeHPAPortraitAlgorithmType, KubeHPA: &KubeHPAPortraitAlgorithm{Tolerance: "0.2"}},
					}}},
				},
				Behavior: IntelligentHorizontalPodAutoscalerBehavior{ReplicaProfile: &ReplicaProfileBehavior{}},
			},
			want: IntelligentHorizontalPodAutoscalerSpec{
				ScaleMode: ScaleModeAuto,
				PortraitProviders: []HorizontalPortraitProvider{
					{Type: CronHorizontalPortraitProviderType, Cron: &CronHorizontalPortraitProvider{Crons: []ReplicaCron{
						{Name: "a", TimeZone: "UTC"}, {Name: "b", TimeZone: "Asia/Shanghai"},
					}}},
					{Type: DynamicHorizontalPortraitProviderType, Dynamic: &DynamicHorizontalPortraitProvider{PortraitSpec: PortraitSpec{
						Algorithm: PortraitAlgorithm{Type: KubeHPAPortraitAlgorithmType, KubeHPA: &KubeHPAPortraitAlgorithm{
							SyncPeriod:              metav1.Duration{Duration: 15 * time.Second},
							Tolerance:               "0.2",
							CPUInitializationPeriod: metav1.Duration{Duration: 5 * time.Minute},
							InitialReadinessDelay:   metav1.Duration{Duration: 30 * time.Second},
						}},
					}}},
				},
				Behavior: IntelligentHorizontalPodAutoscalerBehavior{ReplicaProfile: &ReplicaProfileBehavior{
					PodSorter:            PodSorter{Type: WorkloadDefaultPodSorterType},
					PodTrafficController: PodTrafficController{Type: ReadinessGatePodTrafficControllerType},
				}},
			},
		},
		{
			name: "an absent KubeHPA block stays absent, as the API server leaves it",
			in: IntelligentHorizontalPodAutoscalerSpec{PortraitProviders: []HorizontalPortraitProvider{
				{Type: DynamicHorizontalPortraitProviderType, Dynamic: &DynamicHorizontalPortraitProvider{PortraitSpec: PortraitSpec{
					Algorithm: PortraitAlgorithm{Type: KubeHPAPortraitAlgorithmType},
				}}},
			}},
			want: IntelligentHorizontalPodAutoscalerSpec{ScaleMode: ScaleModeAuto, PortraitProviders: []HorizontalPortraitProvider{
				{Type: DynamicHorizontalPortraitProviderType, Dynamic: &DynamicHorizontalPortraitProvider{PortraitSpec: PortraitSpec{
					Algorithm: PortraitAlgorithm{Type: KubeHPAPortraitAlgorithmType},
				}}},
			}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &IntelligentHorizontalPodAutoscaler{Spec: tc.in}
			a.Default()
			if !reflect.DeepEqual(a.Spec, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", a.Spec, tc.want)
			}
			// Defaulting twice changes nothing.
			again := a.DeepCopy()
			again.Default()
			if !reflect.DeepEqual(again, a) {
				t.Fatal("Default is not idempotent")
			}
		})
	}
}

func TestReplicaProfileDefault(t *testing.T) {
	cases := []struct {
		name string
		in   ReplicaProfileSpec
		want ReplicaProfileSpec
	}{
		{
			name: "empty",
			want: ReplicaProfileSpec{AllowedScalingDirection: ScalingDirectionBoth, Behavior: DefaultReplicaProfileBehavior()},
		},
		{
			name: "explicit values are kept",
			in: ReplicaProfileSpec{AllowedScalingDirection: ScalingDirectionUp, Behavior: ReplicaProfileBehavior{
				PodSorter: PodSorter{Type: ExternalPodSorterType, External: &ExternalPodSorter{Name: "cost"}},
			}},
			want: ReplicaProfileSpec{AllowedScalingDirection: ScalingDirectionUp, Behavior: ReplicaProfileBehavior{
				PodSorter:            PodSorter{Type: ExternalPodSorterType, External: &ExternalPodSorter{Name: "cost"}},
				PodTrafficController: PodTrafficController{Type: ReadinessGatePodTrafficControllerType},
			}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &ReplicaProfile{Spec: tc.in}
			r.Default()
			if !reflect.DeepEqual(r.Spec, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", r.Spec, tc.want)
			}
		})
	}
}

func TestHorizontalPortraitDefault(t *testing.T) {
	p := &HorizontalPortrait{
		Spec: HorizontalPortraitSpec{PortraitSpec: PortraitSpec{Algorithm: PortraitAlgorithm{KubeHPA: &KubeHPAPortraitAlgorithm{}}}},
		Status: HorizontalPortraitStatus{PortraitData: &HorizontalPortraitData{
			Type: CronHorizontalPortraitDataType, Cron: &CronHorizontalPortraitData{Crons: []ReplicaCron{{Name: "a"}}},
		}},
	}
	p.Default()
	if got, want := *p.Spec.Algorithm.KubeHPA, DefaultKubeHPAPortraitAlgorithm(); got != want {
		t.Errorf("kubeHPA = %+v, want %+v", got, want)
	}
	if tz := p.Status.PortraitData.Cron.Crons[0].TimeZone; tz != "UTC" {
		t.Errorf("cron time zone = %q, want UTC", tz)
	}
}
