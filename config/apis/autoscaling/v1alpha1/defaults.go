package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the fields that the CRD schema defaults. The schema is what the API server applies; the
// Default methods below apply the same values to objects that never pass through an API server (the
// replay simulator, tests, files read from disk), so that both paths see identical objects.
const (
	DefaultScaleMode                = ScaleModeAuto
	DefaultCronTimeZone             = "UTC"
	DefaultKubeHPASyncPeriod        = 15 * time.Second
	DefaultKubeHPATolerance         = "0.1"
	DefaultKubeHPACPUInitPeriod     = 5 * time.Minute
	DefaultKubeHPAReadinessDelay    = 30 * time.Second
	DefaultBurstSyncPeriod          = 15 * time.Second
	DefaultBurstSampleInterval      = 15 * time.Second
	DefaultBurstStartupDelay        = time.Minute
	DefaultBurstMargin              = "0.1"
	DefaultAllowedScalingDirection  = ScalingDirectionBoth
	DefaultPodSorterType            = WorkloadDefaultPodSorterType
	DefaultPodTrafficControllerType = ReadinessGatePodTrafficControllerType
)

// DefaultReplicaProfileBehavior returns the behavior a ReplicaProfile gets when none is given. It is a
// function rather than a variable so that callers can never share and mutate one value.
func DefaultReplicaProfileBehavior() ReplicaProfileBehavior {
	return ReplicaProfileBehavior{
		PodSorter:            PodSorter{Type: DefaultPodSorterType},
		PodTrafficController: PodTrafficController{Type: DefaultPodTrafficControllerType},
	}
}

// DefaultKubeHPAPortraitAlgorithm returns the KubeHPA parameters used when a portrait sets none.
func DefaultKubeHPAPortraitAlgorithm() KubeHPAPortraitAlgorithm {
	var a KubeHPAPortraitAlgorithm
	a.Default()
	return a
}

// DefaultBurstPortraitAlgorithm returns the Burst parameters used when a portrait sets none.
func DefaultBurstPortraitAlgorithm() BurstPortraitAlgorithm {
	var a BurstPortraitAlgorithm
	a.Default()
	return a
}

// Default sets the defaults of the spec, as the API server would.
func (a *IntelligentHorizontalPodAutoscaler) Default() {
	a.Spec.Default()
}

// Default sets the defaults of the spec, as the API server would.
func (s *IntelligentHorizontalPodAutoscalerSpec) Default() {
	if s.ScaleMode == "" {
		s.ScaleMode = DefaultScaleMode
	}
	for i := range s.PortraitProviders {
		p := &s.PortraitProviders[i]
		if p.Cron != nil {
			defaultCrons(p.Cron.Crons)
		}
		if p.Dynamic != nil {
			p.Dynamic.PortraitSpec.Default()
		}
	}
	// The API server defaults a nested object only where it is present, so a nil ReplicaProfile
	// behavior stays nil here too: the controller then uses DefaultReplicaProfileBehavior.
	if rp := s.Behavior.ReplicaProfile; rp != nil {
		rp.Default()
	}
}

// Default sets the defaults of the spec, as the API server would.
func (p *HorizontalPortrait) Default() {
	p.Spec.PortraitSpec.Default()
	if d := p.Status.PortraitData; d != nil && d.Cron != nil {
		defaultCrons(d.Cron.Crons)
	}
}

// Default sets the defaults of a portrait spec, as the API server would.
func (s *PortraitSpec) Default() {
	if s.Algorithm.KubeHPA != nil {
		s.Algorithm.KubeHPA.Default()
	}
	if s.Algorithm.Burst != nil {
		s.Algorithm.Burst.Default()
	}
}

// Default fills unset KubeHPA parameters. Like the API server, it cannot tell an explicit zero
// duration from an unset one, so a zero duration is replaced too.
func (a *KubeHPAPortraitAlgorithm) Default() {
	if a.SyncPeriod.Duration == 0 {
		a.SyncPeriod = metav1.Duration{Duration: DefaultKubeHPASyncPeriod}
	}
	if a.Tolerance == "" {
		a.Tolerance = DefaultKubeHPATolerance
	}
	if a.CPUInitializationPeriod.Duration == 0 {
		a.CPUInitializationPeriod = metav1.Duration{Duration: DefaultKubeHPACPUInitPeriod}
	}
	if a.InitialReadinessDelay.Duration == 0 {
		a.InitialReadinessDelay = metav1.Duration{Duration: DefaultKubeHPAReadinessDelay}
	}
}

// Default fills unset Burst parameters. As for KubeHPA, a zero duration counts as unset (it is
// omitted when the spec is copied, so the API server would default it anyway).
func (a *BurstPortraitAlgorithm) Default() {
	if a.SyncPeriod.Duration == 0 {
		a.SyncPeriod = metav1.Duration{Duration: DefaultBurstSyncPeriod}
	}
	if a.SampleInterval.Duration == 0 {
		a.SampleInterval = metav1.Duration{Duration: DefaultBurstSampleInterval}
	}
	if a.StartupDelay.Duration == 0 {
		a.StartupDelay = metav1.Duration{Duration: DefaultBurstStartupDelay}
	}
	if a.Margin == "" {
		a.Margin = DefaultBurstMargin
	}
}

// Default sets the defaults of the spec, as the API server would.
func (r *ReplicaProfile) Default() {
	r.Spec.Default()
}

// Default sets the defaults of the spec, as the API server would.
func (s *ReplicaProfileSpec) Default() {
	if s.AllowedScalingDirection == "" {
		s.AllowedScalingDirection = DefaultAllowedScalingDirection
	}
	s.Behavior.Default()
}

// Default fills the pod sorter and traffic controller types.
func (b *ReplicaProfileBehavior) Default() {
	if b.PodSorter.Type == "" {
		b.PodSorter.Type = DefaultPodSorterType
	}
	if b.PodTrafficController.Type == "" {
		b.PodTrafficController.Type = DefaultPodTrafficControllerType
	}
}

func defaultCrons(crons []ReplicaCron) {
	for i := range crons {
		if crons[i].TimeZone == "" {
			crons[i].TimeZone = DefaultCronTimeZone
		}
	}
}
