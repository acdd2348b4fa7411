package v1alpha1

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation in Go repeats every rule of the CRD schema (so objects that never reach an API server are
// held to the same rules) and adds what the schema cannot express: cron expressions and time zones that
// parse, overlapping cron windows, uniqueness within lists, ordered time series.
//
// Rules Kapacity did not enforce and this package does, on purpose:
//   - spec.maxReplicas >= spec.minReplicas (documented, not enforced; max silently won);
//   - scaleUp.grayStrategy.grayState is Online and scaleDown's is not (documented, not enforced);
//   - the block named by a type field is present (Kapacity failed at reconcile time, or panicked);
//   - cron rules parse, their time zone exists and their windows of equal priority do not overlap
//     (Kapacity failed every reconcile with "found overlapping cron" while both were active);
//   - cron rule names and dynamic portrait types are unique (documented, not enforced);
//   - time series points are in increasing time order (documented as MUST, not enforced);
//   - a ReplicaProfile's or an autoscaler's scaleTargetRef cannot change (Kapacity kept scaling the
//     old workload);
//   - lists, maps and strings are bounded (limits.go), which also bounds the time the cron checks
//     take in the validating webhook.
//
// Validate expects defaulted objects but also accepts an empty value wherever a default exists.

// Validate checks the whole object. Call Default first.
func (a *IntelligentHorizontalPodAutoscaler) Validate() field.ErrorList {
	return a.Spec.Validate()
}

// Validate checks the spec; paths start at "spec".
func (s *IntelligentHorizontalPodAutoscalerSpec) Validate() field.ErrorList {
	path := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, validateScaleTargetRef(s.ScaleTargetRef, path.Child("scaleTargetRef"))...)
	errs = append(errs, validateNonNegative(int64(s.MinReplicas), path.Child("minReplicas"))...)
	errs = append(errs, validateNonNegative(int64(s.MaxReplicas), path.Child("maxReplicas"))...)
	if s.MinReplicas > s.MaxReplicas {
		errs = append(errs, field.Invalid(path.Child("maxReplicas"), s.MaxReplicas,
			fmt.Sprintf("must be greater than or equal to spec.minReplicas (%d): raise spec.maxReplicas or lower spec.minReplicas", s.MinReplicas)))
	}
	switch s.ScaleMode {
	case "", ScaleModeAuto, ScaleModePreview:
	default:
		errs = append(errs, field.NotSupported(path.Child("scaleMode"), s.ScaleMode, []ScaleMode{ScaleModeAuto, ScaleModePreview}))
	}
	errs = append(errs, validatePortraitProviders(s.PortraitProviders, path.Child("portraitProviders"))...)
	errs = append(errs, validateBehavior(&s.Behavior, path.Child("behavior"))...)
	errs = append(errs, validateStabilityCheckers(s.StabilityCheckers, path.Child("stabilityCheckers"))...)
	return errs
}

// ValidateUpdate checks an update of the object: the new object must be valid and keep its target.
func (a *IntelligentHorizontalPodAutoscaler) ValidateUpdate(old *IntelligentHorizontalPodAutoscaler) field.ErrorList {
	errs := a.Validate()
	if a.Spec.ScaleTargetRef != old.Spec.ScaleTargetRef {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "scaleTargetRef"),
			"scaleTargetRef is immutable: delete the autoscaler and create one for the new workload"))
	}
	return errs
}

func validatePortraitProviders(providers []HorizontalPortraitProvider, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(providers) == 0 {
		return append(errs, field.Required(path, "add at least one portrait provider, for example a Static provider of low priority as a fallback"))
	}
	if tooMany := append(validateMaxItems(len(providers), MaxPortraitProviders, path), validateCronTotal(providers, path)...); len(tooMany) > 0 {
		// Checking that many rules (their windows over a year, pairwise) would take too long.
		return append(errs, tooMany...)
	}
	portraitTypes := map[PortraitType]*field.Path{}
	// Cron windows compete only with windows of the same priority: a higher priority overrides a
	// lower one by design, so only equal priorities can be ambiguous.
	cronsByPriority := map[int32][]cronRef{}
	for i := range providers {
		p := &providers[i]
		pp := path.Index(i)
		switch p.Type {
		case StaticHorizontalPortraitProviderType:
			if p.Static == nil {
				errs = append(errs, field.Required(pp.Child("static"), "static must be set when type is Static: add static.replicas or change type"))
			} else {
				errs = append(errs, validateNonNegative(int64(p.Static.Replicas), pp.Child("static", "replicas"))...)
			}
		case CronHorizontalPortraitProviderType:
			if p.Cron == nil {
				errs = append(errs, field.Required(pp.Child("cron"), "cron must be set when type is Cron: add cron.crons or change type"))
				continue
			}
			refs, cronErrs := parseCrons(p.Cron.Crons, pp.Child("cron", "crons"), cronEventBudget(cronCount(providers)))
			errs = append(errs, cronErrs...)
			cronsByPriority[p.Priority] = append(cronsByPriority[p.Priority], refs...)
		case DynamicHorizontalPortraitProviderType:
			if p.Dynamic == nil {
				errs = append(errs, field.Required(pp.Child("dynamic"), "dynamic must be set when type is Dynamic: add dynamic.portraitType and dynamic.algorithm or change type"))
				continue
			}
			dp := pp.Child("dynamic")
			errs = append(errs, p.Dynamic.PortraitSpec.validate(dp)...)
			if first, dup := portraitTypes[p.Dynamic.PortraitType]; dup {
				errs = append(errs, field.Duplicate(dp.Child("portraitType"), p.Dynamic.PortraitType))
				errs[len(errs)-1].Detail = fmt.Sprintf("%s already uses this portrait type, and each dynamic provider owns the HorizontalPortrait named after it: give each dynamic provider its own portraitType", first)
			} else {
				portraitTypes[p.Dynamic.PortraitType] = dp
			}
		default:
			errs = append(errs, field.NotSupported(pp.Child("type"), p.Type, []HorizontalPortraitProviderType{
				StaticHorizontalPortraitProviderType, CronHorizontalPortraitProviderType, DynamicHorizontalPortraitProviderType,
			}))
		}
	}
	priorities := make([]int32, 0, len(cronsByPriority))
	for prio := range cronsByPriority {
		priorities = append(priorities, prio)
	}
	sort.Slice(priorities, func(i, j int) bool { return priorities[i] < priorities[j] })
	for _, prio := range priorities {
		errs = append(errs, validateCronOverlaps(cronsByPriority[prio], fmt.Sprintf("of the same priority %d", prio))...)
	}
	return errs
}

func validateBehavior(b *IntelligentHorizontalPodAutoscalerBehavior, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if g := b.ScaleUp.GrayStrategy; g != nil {
		gp := path.Child("scaleUp", "grayStrategy")
		errs = append(errs, validateGrayStrategy(g, gp)...)
		if g.GrayState != PodStateOnline && g.GrayState != "" {
			errs = append(errs, field.Invalid(gp.Child("grayState"), g.GrayState,
				"must be Online: pods added by a scale-up start serving at once"))
		}
	}
	if g := b.ScaleDown.GrayStrategy; g != nil {
		gp := path.Child("scaleDown", "grayStrategy")
		errs = append(errs, validateGrayStrategy(g, gp)...)
		if g.GrayState == PodStateOnline {
			errs = append(errs, field.Invalid(gp.Child("grayState"), g.GrayState,
				"must be Cutoff, Standby or Deleted: use Cutoff to keep the pods being removed running without traffic until the change completes"))
		}
	}
	if b.ReplicaProfile != nil {
		errs = append(errs, validateReplicaProfileBehavior(b.ReplicaProfile, path.Child("replicaProfile"))...)
	}
	return errs
}

func validateGrayStrategy(g *GrayStrategy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch g.GrayState {
	case PodStateOnline, PodStateCutoff, PodStateStandby, PodStateDeleted:
	case "":
		errs = append(errs, field.Required(path.Child("grayState"), "set the state of the pods in an unfinished change: Online to scale up, Cutoff, Standby or Deleted to scale down"))
	default:
		errs = append(errs, field.NotSupported(path.Child("grayState"), g.GrayState, []PodState{PodStateOnline, PodStateCutoff, PodStateStandby, PodStateDeleted}))
	}
	if g.ChangeIntervalSeconds < 1 {
		errs = append(errs, field.Invalid(path.Child("changeIntervalSeconds"), g.ChangeIntervalSeconds, "must be at least 1: set the seconds to wait between two batches"))
	}
	if g.ChangePercent < 1 || g.ChangePercent > 100 {
		errs = append(errs, field.Invalid(path.Child("changePercent"), g.ChangePercent, "must be between 1 and 100: set the share of the whole change that each batch adds"))
	}
	errs = append(errs, validateNonNegative(int64(g.ObservationSeconds), path.Child("observationSeconds"))...)
	errs = append(errs, validateStabilityCheckers(g.StabilityCheckers, path.Child("stabilityCheckers"))...)
	return errs
}

func validateStabilityCheckers(checkers []StabilityChecker, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if tooMany := validateMaxItems(len(checkers), MaxStabilityCheckers, path); len(tooMany) > 0 {
		return tooMany
	}
	externalNames := sets.New[string]()
	for i := range checkers {
		c := &checkers[i]
		cp := path.Index(i)
		switch c.StabilizationAction {
		case StabilizationActionPause, StabilizationActionRollback:
		case "":
			errs = append(errs, field.Required(cp.Child("stabilizationAction"), "set Pause to hold the change or Rollback to undo it when an anomaly is detected"))
		default:
			errs = append(errs, field.NotSupported(cp.Child("stabilizationAction"), c.StabilizationAction,
				[]StabilizationActionType{StabilizationActionPause, StabilizationActionRollback}))
		}
		errs = append(errs, validateNonNegative(int64(c.CoolDownSeconds), cp.Child("coolDownSeconds"))...)
		switch c.Type {
		case MetricsStabilityCheckerType:
			if c.Metrics == nil || len(c.Metrics.Metrics) == 0 {
				errs = append(errs, field.Required(cp.Child("metrics", "metrics"), "metrics must be set when type is Metrics: add at least one metric rule"))
				continue
			}
			errs = append(errs, validateMetrics(c.Metrics.Metrics, cp.Child("metrics", "metrics"))...)
		case ExternalStabilityCheckerType:
			if c.External == nil {
				errs = append(errs, field.Required(cp.Child("external"), "external must be set when type is External: add external.name"))
				continue
			}
			np := cp.Child("external", "name")
			if c.External.Name == "" {
				errs = append(errs, field.Required(np, "name the external checker"))
			} else if tooLong := validateMaxLength(c.External.Name, MaxNameLength, np); len(tooLong) > 0 {
				errs = append(errs, tooLong...)
			} else if externalNames.Has(c.External.Name) {
				errs = append(errs, field.Duplicate(np, c.External.Name))
			}
			externalNames.Insert(c.External.Name)
			errs = append(errs, validateConfig(c.External.Config, cp.Child("external", "config"))...)
		default:
			errs = append(errs, field.NotSupported(cp.Child("type"), c.Type, []StabilityCheckerType{MetricsStabilityCheckerType, ExternalStabilityCheckerType}))
		}
	}
	return errs
}

// Validate checks the whole object: the spec, and the portrait data in the status when present.
func (p *HorizontalPortrait) Validate() field.ErrorList {
	errs := p.Spec.Validate()
	if p.Status.PortraitData != nil {
		errs = append(errs, p.Status.PortraitData.Validate(field.NewPath("status", "portraitData"))...)
	}
	if b := p.Status.Burst; b != nil {
		errs = append(errs, validateNonNegative(int64(b.BaselineReplicas), field.NewPath("status", "burst", "baselineReplicas"))...)
	}
	return errs
}

// Validate checks the spec; paths start at "spec".
func (s *HorizontalPortraitSpec) Validate() field.ErrorList {
	path := field.NewPath("spec")
	errs := validateScaleTargetRef(s.ScaleTargetRef, path.Child("scaleTargetRef"))
	return append(errs, s.PortraitSpec.validate(path)...)
}

func (s *PortraitSpec) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	tp := path.Child("portraitType")
	if s.PortraitType == "" {
		errs = append(errs, field.Required(tp, "set the portrait type, for example Reactive or Predictive"))
	} else if msgs := validation.IsDNS1123Label(strings.ToLower(string(s.PortraitType))); len(msgs) > 0 {
		errs = append(errs, field.Invalid(tp, s.PortraitType,
			"must be a DNS label apart from case (letters, digits and '-'), because it names the HorizontalPortrait: "+strings.Join(msgs, "; ")))
	}
	errs = append(errs, validateMaxLength(s.ExternalGeneratorName, MaxNameLength, path.Child("externalGeneratorName"))...)
	errs = append(errs, validateMetrics(s.Metrics, path.Child("metrics"))...)
	errs = append(errs, validateAlgorithm(&s.Algorithm, path.Child("algorithm"))...)
	if s.Algorithm.Type == BurstPortraitAlgorithmType && s.PortraitType != "" && s.PortraitType != BurstPortraitType {
		errs = append(errs, field.Invalid(tp, s.PortraitType, "the Burst algorithm generates Burst portraits only: set portraitType to Burst"))
	}
	return errs
}

func validateMetrics(metrics []MetricSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if tooMany := validateMaxItems(len(metrics), MaxMetrics, path); len(tooMany) > 0 {
		return tooMany
	}
	names := sets.New[string]()
	for i := range metrics {
		m := &metrics[i]
		mp := path.Index(i)
		if tooLong := validateMaxLength(m.Name, MaxNameLength, mp.Child("name")); len(tooLong) > 0 {
			errs = append(errs, tooLong...)
		} else if m.Name != "" {
			if names.Has(m.Name) {
				errs = append(errs, field.Duplicate(mp.Child("name"), m.Name))
			}
			names.Insert(m.Name)
		}
		switch m.Operator {
		case "", Equals, GreaterThan, LessThan, GreaterThanOrEquals, LessThanOrEquals:
		default:
			errs = append(errs, field.NotSupported(mp.Child("operator"), m.Operator,
				[]Operator{Equals, GreaterThan, LessThan, GreaterThanOrEquals, LessThanOrEquals}))
		}
		switch m.Type {
		case autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
			autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType:
		case "":
			errs = append(errs, field.Required(mp.Child("type"), "set the metric source type: Resource, ContainerResource, Pods, Object or External"))
		default:
			// Targets are not checked: Kapacity's predictive algorithm uses the placeholder target
			// type "NA" for metrics it only reads history from.
			errs = append(errs, field.NotSupported(mp.Child("type"), m.Type, []autoscalingv2.MetricSourceType{
				autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType,
				autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType, autoscalingv2.ExternalMetricSourceType,
			}))
		}
	}
	return errs
}

func validateAlgorithm(a *PortraitAlgorithm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch a.Type {
	case "":
		errs = append(errs, field.Required(path.Child("type"), "set the algorithm, for example KubeHPA for a Reactive portrait or ExternalJob for a Predictive one"))
	case ExternalJobPortraitAlgorithmType:
		if a.ExternalJob == nil {
			errs = append(errs, field.Required(path.Child("externalJob"), "externalJob must be set when type is ExternalJob: add externalJob.job and externalJob.resultSource or change type"))
		}
	}
	if j := a.ExternalJob; j != nil {
		jp := path.Child("externalJob")
		switch j.Job.Type {
		case "":
			errs = append(errs, field.Required(jp.Child("job", "type"), "set the job type, for example CronJob"))
		case CronJobPortraitAlgorithmJobType:
			if j.Job.CronJob == nil {
				errs = append(errs, field.Required(jp.Child("job", "cronJob"), "cronJob must be set when type is CronJob: add cronJob.template"))
			}
		}
		if j.ResultSource.Type == "" {
			errs = append(errs, field.Required(jp.Child("resultSource", "type"), "set the result source type, for example ConfigMap"))
		}
	}
	if b := a.Burst; b != nil {
		errs = append(errs, b.validate(path.Child("burst"))...)
	}
	if k := a.KubeHPA; k != nil {
		kp := path.Child("kubeHPA")
		if k.SyncPeriod.Duration < 0 {
			errs = append(errs, field.Invalid(kp.Child("syncPeriod"), k.SyncPeriod.Duration.String(), "must be positive, for example 15s"))
		}
		if len(k.Tolerance) > MaxToleranceLength {
			errs = append(errs, field.TooLong(kp.Child("tolerance"), "", MaxToleranceLength))
		} else if k.Tolerance != "" {
			if t, err := strconv.ParseFloat(k.Tolerance, 64); err != nil || t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
				errs = append(errs, field.Invalid(kp.Child("tolerance"), k.Tolerance, "must be a non-negative decimal number in a string, for example \"0.1\""))
			}
		}
		if k.CPUInitializationPeriod.Duration < 0 {
			errs = append(errs, field.Invalid(kp.Child("cpuInitializationPeriod"), k.CPUInitializationPeriod.Duration.String(), "must not be negative, for example 5m"))
		}
		if k.InitialReadinessDelay.Duration < 0 {
			errs = append(errs, field.Invalid(kp.Child("initialReadinessDelay"), k.InitialReadinessDelay.Duration.String(), "must not be negative, for example 30s"))
		}
	}
	return errs
}

// Bounds of the Burst parameters, as the CRD's CEL rules state them.
const (
	minBurstPeriod         = time.Second
	maxBurstSyncPeriod     = time.Hour
	maxBurstSampleInterval = 10 * time.Minute
	maxBurstStartupDelay   = time.Hour
)

// validate checks the Burst parameters; a zero duration is unset (defaulted).
func (b *BurstPortraitAlgorithm) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	within := func(d metav1.Duration, lo, hi time.Duration, name, example string) {
		if d.Duration != 0 && (d.Duration < lo || d.Duration > hi) {
			errs = append(errs, field.Invalid(path.Child(name), d.Duration.String(), fmt.Sprintf("must be between %s and %s, for example %s", lo, hi, example)))
		}
	}
	within(b.SyncPeriod, minBurstPeriod, maxBurstSyncPeriod, "syncPeriod", "15s")
	within(b.SampleInterval, minBurstPeriod, maxBurstSampleInterval, "sampleInterval", "the traffic metric's scrape interval")
	within(b.StartupDelay, minBurstPeriod, maxBurstStartupDelay, "startupDelay", "the time a new pod takes to become ready")
	if len(b.Margin) > MaxToleranceLength {
		errs = append(errs, field.TooLong(path.Child("margin"), "", MaxToleranceLength))
	} else if b.Margin != "" {
		if m, err := strconv.ParseFloat(b.Margin, 64); err != nil || m < 0 || math.IsNaN(m) || math.IsInf(m, 0) {
			errs = append(errs, field.Invalid(path.Child("margin"), b.Margin, "must be a non-negative decimal number in a string, for example \"0.1\""))
		}
	}
	if c := b.PodCapacity; c != nil && c.Sign() <= 0 {
		errs = append(errs, field.Invalid(path.Child("podCapacity"), c.String(), "must be positive: the traffic one pod serves at 100 %"))
	}
	return errs
}

// Validate checks portrait data, such as a generator writes to a HorizontalPortrait's status.
func (d *HorizontalPortraitData) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch d.Type {
	case StaticHorizontalPortraitDataType:
		if d.Static == nil {
			errs = append(errs, field.Required(path.Child("static"), "static must be set when type is Static"))
		}
	case CronHorizontalPortraitDataType:
		if d.Cron == nil {
			errs = append(errs, field.Required(path.Child("cron"), "cron must be set when type is Cron"))
		}
	case TimeSeriesHorizontalPortraitDataType:
		if d.TimeSeries == nil {
			errs = append(errs, field.Required(path.Child("timeSeries"), "timeSeries must be set when type is TimeSeries"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("type"), d.Type, []HorizontalPortraitDataType{
			StaticHorizontalPortraitDataType, CronHorizontalPortraitDataType, TimeSeriesHorizontalPortraitDataType,
		}))
	}
	if d.Static != nil {
		errs = append(errs, validateNonNegative(int64(d.Static.Replicas), path.Child("static", "replicas"))...)
	}
	if d.Cron != nil {
		refs, cronErrs := parseCrons(d.Cron.Crons, path.Child("cron", "crons"), cronEventBudget(len(d.Cron.Crons)))
		errs = append(errs, cronErrs...)
		errs = append(errs, validateCronOverlaps(refs, "of the same portrait")...)
	}
	if d.TimeSeries != nil {
		sp := path.Child("timeSeries", "timeSeries")
		if len(d.TimeSeries.TimeSeries) == 0 {
			errs = append(errs, field.Required(sp, "add at least one point"))
		}
		errs = append(errs, validateMaxItems(len(d.TimeSeries.TimeSeries), MaxTimeSeriesPoints, sp)...)
		for i, p := range d.TimeSeries.TimeSeries {
			pp := sp.Index(i)
			errs = append(errs, validateNonNegative(p.Timestamp, pp.Child("timestamp"))...)
			errs = append(errs, validateNonNegative(int64(p.Replicas), pp.Child("replicas"))...)
			if i > 0 && p.Timestamp <= d.TimeSeries.TimeSeries[i-1].Timestamp {
				errs = append(errs, field.Invalid(pp.Child("timestamp"), p.Timestamp,
					fmt.Sprintf("must be after the previous point's timestamp (%d): sort the points by time and merge duplicates", d.TimeSeries.TimeSeries[i-1].Timestamp)))
			}
		}
	}
	return errs
}

// Validate checks the whole object.
func (r *ReplicaProfile) Validate() field.ErrorList {
	return r.Spec.Validate()
}

// ValidateUpdate checks an update of the object: the new object must be valid and keep its target.
func (r *ReplicaProfile) ValidateUpdate(old *ReplicaProfile) field.ErrorList {
	errs := r.Validate()
	if r.Spec.ScaleTargetRef != old.Spec.ScaleTargetRef {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "scaleTargetRef"),
			"scaleTargetRef is immutable: delete the ReplicaProfile and create one for the new workload"))
	}
	return errs
}

// Validate checks the spec; paths start at "spec".
func (s *ReplicaProfileSpec) Validate() field.ErrorList {
	path := field.NewPath("spec")
	errs := validateScaleTargetRef(s.ScaleTargetRef, path.Child("scaleTargetRef"))
	errs = append(errs, validateNonNegative(int64(s.OnlineReplicas), path.Child("onlineReplicas"))...)
	errs = append(errs, validateNonNegative(int64(s.CutoffReplicas), path.Child("cutoffReplicas"))...)
	errs = append(errs, validateNonNegative(int64(s.StandbyReplicas), path.Child("standbyReplicas"))...)
	switch s.AllowedScalingDirection {
	case "", ScalingDirectionBoth, ScalingDirectionNeither, ScalingDirectionUp, ScalingDirectionDown:
	default:
		errs = append(errs, field.NotSupported(path.Child("allowedScalingDirection"), s.AllowedScalingDirection,
			[]ScalingDirection{ScalingDirectionBoth, ScalingDirectionNeither, ScalingDirectionUp, ScalingDirectionDown}))
	}
	return append(errs, validateReplicaProfileBehavior(&s.Behavior, path.Child("behavior"))...)
}

func validateReplicaProfileBehavior(b *ReplicaProfileBehavior, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := path.Child("podSorter")
	switch b.PodSorter.Type {
	case "", WorkloadDefaultPodSorterType:
	case ExternalPodSorterType:
		if b.PodSorter.External == nil {
			errs = append(errs, field.Required(sp.Child("external"), "external must be set when type is External: add external.name"))
		} else if b.PodSorter.External.Name == "" {
			errs = append(errs, field.Required(sp.Child("external", "name"), "name the external pod sorter"))
		}
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), b.PodSorter.Type, []PodSorterType{WorkloadDefaultPodSorterType, ExternalPodSorterType}))
	}
	if e := b.PodSorter.External; e != nil {
		errs = append(errs, validateMaxLength(e.Name, MaxNameLength, sp.Child("external", "name"))...)
		errs = append(errs, validateConfig(e.Config, sp.Child("external", "config"))...)
	}
	tp := path.Child("podTrafficController")
	switch b.PodTrafficController.Type {
	case "", ReadinessGatePodTrafficControllerType:
	case ExternalPodTrafficControllerType:
		if b.PodTrafficController.External == nil {
			errs = append(errs, field.Required(tp.Child("external"), "external must be set when type is External: add external.name"))
		} else if b.PodTrafficController.External.Name == "" {
			errs = append(errs, field.Required(tp.Child("external", "name"), "name the external pod traffic controller"))
		}
	default:
		errs = append(errs, field.NotSupported(tp.Child("type"), b.PodTrafficController.Type,
			[]PodTrafficControllerType{ReadinessGatePodTrafficControllerType, ExternalPodTrafficControllerType}))
	}
	if e := b.PodTrafficController.External; e != nil {
		errs = append(errs, validateMaxLength(e.Name, MaxNameLength, tp.Child("external", "name"))...)
		errs = append(errs, validateConfig(e.Config, tp.Child("external", "config"))...)
	}
	return errs
}

func validateScaleTargetRef(ref autoscalingv2.CrossVersionObjectReference, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Kind == "" {
		errs = append(errs, field.Required(path.Child("kind"), "set the kind of the workload, for example Deployment"))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "set the name of the workload"))
	} else if msgs := validation.IsDNS1123Subdomain(ref.Name); len(msgs) > 0 {
		errs = append(errs, field.Invalid(path.Child("name"), ref.Name, strings.Join(msgs, "; ")))
	}
	if ref.APIVersion != "" {
		if _, err := schema.ParseGroupVersion(ref.APIVersion); err != nil {
			errs = append(errs, field.Invalid(path.Child("apiVersion"), ref.APIVersion, "must be group/version or version, for example apps/v1: "+err.Error()))
		}
	}
	return errs
}

func validateNonNegative(v int64, path *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(path, v, "must be greater than or equal to 0")}
	}
	return nil
}
