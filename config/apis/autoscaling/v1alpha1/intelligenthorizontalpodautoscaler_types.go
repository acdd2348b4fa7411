package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IntelligentHorizontalPodAutoscaler manages the replica count and the pod states of a workload from the
// portraits (expected replica counts) of its portrait providers, merged by priority, applied in gray
// steps through a ReplicaProfile of the same name.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ihpa,categories=kapacity
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`,description="Name of the workload to scale"
// +kubebuilder:printcolumn:name="Target-Kind",type=string,JSONPath=`.spec.scaleTargetRef.kind`,priority=1,description="Kind of the workload to scale"
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.scaleMode`,priority=1,description="Auto scales the workload; Preview only computes portraits"
// +kubebuilder:printcolumn:name="Min",type=integer,JSONPath=`.spec.minReplicas`,description="Lower replica limit"
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxReplicas`,description="Upper replica limit"
// +kubebuilder:printcolumn:name="Portrait",type=string,JSONPath=`.status.currentPortraitValue.provider`,description="Provider of the portrait value in effect"
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.currentPortraitValue.replicas`,description="Replica count of the portrait value in effect"
// +kubebuilder:printcolumn:name="Online",type=integer,JSONPath=`.status.onlineReplicas`,description="Online replicas requested from the ReplicaProfile"
// +kubebuilder:printcolumn:name="Cutoff",type=integer,JSONPath=`.status.cutoffReplicas`,description="Cutoff replicas requested from the ReplicaProfile"
// +kubebuilder:printcolumn:name="Standby",type=integer,JSONPath=`.status.standbyReplicas`,description="Standby replicas requested from the ReplicaProfile"
// +kubebuilder:printcolumn:name="Gray%",type=integer,JSONPath=`.status.gray.grayPercent`,description="Progress of the current gray change"
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.conditions[?(@.type=="ScalingActive")].status`,priority=1,description="Whether autoscaling is functional"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IntelligentHorizontalPodAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired behaviour of the autoscaler.
	Spec IntelligentHorizontalPodAutoscalerSpec `json:"spec,omitempty"`

	// Status is the observed state of the autoscaler.
	// +optional
	Status IntelligentHorizontalPodAutoscalerStatus `json:"status,omitzero"`
}

// IntelligentHorizontalPodAutoscalerSpec is the desired behaviour of an IntelligentHorizontalPodAutoscaler.
//
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="maxReplicas must be greater than or equal to minReplicas: raise spec.maxReplicas or lower spec.minReplicas",fieldPath=".maxReplicas",reason="FieldValueInvalid"
// +kubebuilder:validation:XValidation:rule="self.portraitProviders.map(p, has(p.cron) ? size(p.cron.crons) : 0).sum() <= 64",message="the Cron providers may hold at most 64 cron rules in all: merge windows or split the autoscaler",fieldPath=".portraitProviders",reason="FieldValueInvalid"
type IntelligentHorizontalPodAutoscalerSpec struct {
	// ScaleTargetRef is the workload to scale. It must expose the /scale subresource; pod states are
	// managed for apps/v1 ReplicaSet, Deployment and StatefulSet. It cannot be changed (the
	// ReplicaProfile's cannot): to scale another workload, create another autoscaler.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="scaleTargetRef is immutable: delete the autoscaler and create one for the new workload",reason="FieldValueForbidden"
	ScaleTargetRef autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`

	// Paused stops autoscaling: no new portrait value is applied and the ReplicaProfile is paused too.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// MinReplicas is the lower limit applied to the chosen portrait value.
	// +kubebuilder:validation:Minimum=0
	MinReplicas int32 `json:"minReplicas"`

	// MaxReplicas is the upper limit applied to the chosen portrait value. It must not be less than
	// MinReplicas.
	// +kubebuilder:validation:Minimum=0
	MaxReplicas int32 `json:"maxReplicas"`

	// ScaleMode is Auto to scale the workload, or Preview to compute portrait values only (an existing
	// ReplicaProfile is then deleted and the workload is left alone).
	// +optional
	// +kubebuilder:validation:Enum=Auto;Preview
	// +kubebuilder:default=Auto
	ScaleMode ScaleMode `json:"scaleMode,omitempty"`

	// PortraitProviders produce the candidate portrait values. At any time the valid value with the
	// highest priority wins; on equal priority the one with more replicas wins.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	PortraitProviders []HorizontalPortraitProvider `json:"portraitProviders"`

	// Behavior configures scaling in each direction and the ReplicaProfile that carries it out.
	// +optional
	Behavior IntelligentHorizontalPodAutoscalerBehavior `json:"behavior,omitzero"`

	// StabilityCheckers watch every change the autoscaler makes and pause or roll it back when they
	// detect an anomaly. Checkers listed in a gray strategy apply in addition during that strategy's
	// gray changes.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	StabilityCheckers []StabilityChecker `json:"stabilityCheckers,omitempty"`
}

// ScaleMode is the scaling mode of an IntelligentHorizontalPodAutoscaler.
type ScaleMode string

const (
	// ScaleModeAuto scales the target workload according to its portraits.
	ScaleModeAuto ScaleMode = "Auto"

	// ScaleModePreview computes portrait values without scaling the target workload.
	ScaleModePreview ScaleMode = "Preview"
)

// HorizontalPortraitProvider is one source of portrait values. The block named by Type must be set;
// blocks of other types are ignored.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'Static' || has(self.static)",message="static must be set when type is Static: add static.replicas or change type",fieldPath=".static",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'Cron' || has(self.cron)",message="cron must be set when type is Cron: add cron.crons or change type",fieldPath=".cron",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'Dynamic' || has(self.dynamic)",message="dynamic must be set when type is Dynamic: add dynamic.portraitType and dynamic.algorithm or change type",fieldPath=".dynamic",reason="FieldValueRequired"
type HorizontalPortraitProvider struct {
	// Type is the kind of provider.
	// +kubebuilder:validation:Enum=Static;Cron;Dynamic
	Type HorizontalPortraitProviderType `json:"type"`

	// Priority ranks this provider's values: the higher number wins.
	Priority int32 `json:"priority"`

	// Static always provides the same replica count.
	// +optional
	Static *StaticHorizontalPortraitProvider `json:"static,omitempty"`

	// Cron provides replica counts for time windows. Windows of the same priority, in this provider
	// or in another Cron provider, must not overlap.
	// +optional
	Cron *CronHorizontalPortraitProvider `json:"cron,omitempty"`

	// Dynamic provides the values of a HorizontalPortrait named "<ihpa name>-<portraitType>" (lower
	// case) that the autoscaler creates and owns. PortraitType must be unique among the dynamic
	// providers of an autoscaler.
	// +optional
	Dynamic *DynamicHorizontalPortraitProvider `json:"dynamic,omitempty"`
}

// HorizontalPortraitProviderType is the kind of a portrait provider.
type HorizontalPortraitProviderType string

const (
	// StaticHorizontalPortraitProviderType always provides a fixed replica count.
	StaticHorizontalPortraitProviderType HorizontalPortraitProviderType = "Static"

	// CronHorizontalPortraitProviderType provides replica counts from cron windows.
	CronHorizontalPortraitProviderType HorizontalPortraitProviderType = "Cron"

	// DynamicHorizontalPortraitProviderType provides replica counts from a HorizontalPortrait.
	DynamicHorizontalPortraitProviderType HorizontalPortraitProviderType = "Dynamic"
)

// StaticHorizontalPortraitProvider always provides the same replica count.
type StaticHorizontalPortraitProvider struct {
	// Replicas is the desired number of online replicas.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
}

// CronHorizontalPortraitProvider provides replica counts for cron windows.
type CronHorizontalPortraitProvider struct {
	// Crons are the windows. Outside all of them the provider has no value.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Crons []ReplicaCron `json:"crons"`
}

// DynamicHorizontalPortraitProvider provides the values of a HorizontalPortrait whose spec the provider
// manages and whose status a portrait generator (built in or external) fills.
type DynamicHorizontalPortraitProvider struct {
	PortraitSpec `json:",inline"`
}

// IntelligentHorizontalPodAutoscalerBehavior configures scaling in each direction.
//
// +kubebuilder:validation:XValidation:rule="!has(self.scaleUp) || !has(self.scaleUp.grayStrategy) || self.scaleUp.grayStrategy.grayState == 'Online'",message="scaleUp.grayStrategy.grayState must be Online: pods added by a scale-up start serving at once",fieldPath=".scaleUp.grayStrategy.grayState",reason="FieldValueInvalid"
// +kubebuilder:validation:XValidation:rule="!has(self.scaleDown) || !has(self.scaleDown.grayStrategy) || self.scaleDown.grayStrategy.grayState != 'Online'",message="scaleDown.grayStrategy.grayState must be Cutoff, Standby or Deleted: use Cutoff to keep the pods being removed running without traffic until the change completes",fieldPath=".scaleDown.grayStrategy.grayState",reason="FieldValueInvalid"
type IntelligentHorizontalPodAutoscalerBehavior struct {
	// ScaleUp configures scaling up.
	// +optional
	ScaleUp ScalingBehavior `json:"scaleUp,omitzero"`

	// ScaleDown configures scaling down.
	// +optional
	ScaleDown ScalingBehavior `json:"scaleDown,omitzero"`

	// ReplicaProfile is copied into the ReplicaProfile the autoscaler writes. When unset, the pod sorter
	// is WorkloadDefault and the traffic controller is ReadinessGate.
	// +optional
	ReplicaProfile *ReplicaProfileBehavior `json:"replicaProfile,omitempty"`
}

// ScalingBehavior configures scaling in one direction.
type ScalingBehavior struct {
	// Disabled forbids scaling online replicas in this direction.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// GrayStrategy splits each change in this direction into batches. When unset, changes are applied
	// at once.
	// +optional
	GrayStrategy *GrayStrategy `json:"grayStrategy,omitempty"`
}

// GrayStrategy applies the change from the previous portrait value to the current one in batches.
type GrayStrategy struct {
	// GrayState is the state of the pods that are part of an unfinished change: Online for scaling
	// up; Cutoff, Standby or Deleted for scaling down.
	// +kubebuilder:validation:Enum=Online;Cutoff;Standby;Deleted
	GrayState PodState `json:"grayState"`

	// ChangeIntervalSeconds is the time between two batches.
	// +kubebuilder:validation:Minimum=1
	ChangeIntervalSeconds int32 `json:"changeIntervalSeconds"`

	// ChangePercent is the share of the whole change that each batch adds.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ChangePercent int32 `json:"changePercent"`

	// ObservationSeconds is the extra time, after the last batch, during which the gray pods stay in
	// GrayState (so they can still be brought back) and stability checkers keep watching.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=0
	ObservationSeconds int32 `json:"observationSeconds,omitempty"`

	// StabilityCheckers watch the gray changes of this direction only, in addition to the
	// autoscaler's spec.stabilityCheckers. (An addition to Kapacity's API.)
	// +optional
	// +kubebuilder:validation:MaxItems=16
	StabilityCheckers []StabilityChecker `json:"stabilityCheckers,omitempty"`
}

// StabilityChecker detects anomalies while a change is in progress and names the action to take.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'Metrics' || has(self.metrics)",message="metrics must be set when type is Metrics: add metrics.metrics with at least one rule",fieldPath=".metrics",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'External' || has(self.external)",message="external must be set when type is External: add external.name",fieldPath=".external",reason="FieldValueRequired"
type StabilityChecker struct {
	// Type is the kind of checker. Metrics evaluates metric rules; External delegates to a checker
	// named in External.
	// +kubebuilder:validation:Enum=Metrics;External
	Type StabilityCheckerType `json:"type"`

	// StabilizationAction is what happens when an anomaly is detected: Pause holds the change where
	// it is; Rollback returns the workload to the previous portrait value.
	// +kubebuilder:validation:Enum=Pause;Rollback
	StabilizationAction StabilizationActionType `json:"stabilizationAction"`

	// CoolDownSeconds is how long the checker must see no anomaly before the change resumes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CoolDownSeconds int32 `json:"coolDownSeconds,omitempty"`

	// Metrics configures a Metrics checker.
	// +optional
	Metrics *MetricsStabilityChecker `json:"metrics,omitempty"`

	// External configures an External checker.
	// +optional
	External *ExternalStabilityChecker `json:"external,omitempty"`
}

// StabilityCheckerType is the kind of a stability checker.
type StabilityCheckerType string

const (
	// MetricsStabilityCheckerType detects anomalies with metric rules.
	MetricsStabilityCheckerType StabilityCheckerType = "Metrics"

	// ExternalStabilityCheckerType delegates detection to an external checker.
	ExternalStabilityCheckerType StabilityCheckerType = "External"
)

// StabilizationActionType is the action taken when a stability checker detects an anomaly.
type StabilizationActionType string

const (
	// StabilizationActionPause holds the change where it is until the cool-down has passed.
	StabilizationActionPause StabilizationActionType = "Pause"

	// StabilizationActionRollback returns the workload to the previous portrait value.
	StabilizationActionRollback StabilizationActionType = "Rollback"
)

// MetricsStabilityChecker detects anomalies with metric rules.
type MetricsStabilityChecker struct {
	// Metrics are the rules. Each reads "<actual> <operator> <target>" and reports an anomaly when it
	// holds; an empty operator means ">". Any rule holding is an anomaly.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Metrics []MetricSpec `json:"metrics"`
}

// ExternalStabilityChecker names a checker implemented outside Kapacity.
type ExternalStabilityChecker struct {
	// Name identifies the checker. It must be unique among the external checkers of the autoscaler.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Config is passed to the checker as is.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Config map[string]string `json:"config,omitempty"`
}

// IntelligentHorizontalPodAutoscalerStatus is the observed state of an IntelligentHorizontalPodAutoscaler.
type IntelligentHorizontalPodAutoscalerStatus struct {
	// PreviousPortraitValue is the value that was in effect before CurrentPortraitValue; gray changes
	// go from it to CurrentPortraitValue.
	// +optional
	PreviousPortraitValue *HorizontalPortraitValue `json:"previousPortraitValue,omitempty"`

	// CurrentPortraitValue is the portrait value in effect.
	// +optional
	CurrentPortraitValue *HorizontalPortraitValue `json:"currentPortraitValue,omitempty"`

	// Gray is the progress of the current gray change.
	// +optional
	Gray *GrayStatus `json:"gray,omitempty"`

	// OnlineReplicas is the number of online replicas the autoscaler last requested from its
	// ReplicaProfile (the ReplicaProfile's status has the observed counts). (An addition to
	// Kapacity's API.)
	// +optional
	// +kubebuilder:validation:Minimum=0
	OnlineReplicas int32 `json:"onlineReplicas"`

	// CutoffReplicas is the number of cutoff replicas the autoscaler last requested from its
	// ReplicaProfile. (An addition to Kapacity's API.)
	// +optional
	// +kubebuilder:validation:Minimum=0
	CutoffReplicas int32 `json:"cutoffReplicas"`

	// StandbyReplicas is the number of standby replicas the autoscaler last requested from its
	// ReplicaProfile. (An addition to Kapacity's API.)
	// +optional
	// +kubebuilder:validation:Minimum=0
	StandbyReplicas int32 `json:"standbyReplicas"`

	// Conditions are ScalingActive, ScalingLimited and GrayProgressing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// HorizontalPortraitValue is a replica count produced by a portrait provider, valid until ExpireTime.
type HorizontalPortraitValue struct {
	// Provider identifies the provider that produced the value: "Static", "Cron" or
	// "Dynamic-<portraitType>".
	Provider string `json:"provider"`

	// Replicas is the desired number of online replicas.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`

	// ExpireTime is when the value stops being valid. Unset or zero means never.
	// +optional
	ExpireTime *metav1.Time `json:"expireTime,omitempty"`
}

// GrayStatus is the progress of a gray change.
type GrayStatus struct {
	// GrayPercent is the share of the whole change applied so far.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	GrayPercent int32 `json:"grayPercent"`

	// LastUpdateTime is when GrayPercent last changed.
	LastUpdateTime metav1.Time `json:"lastUpdateTime"`
}

// IntelligentHorizontalPodAutoscalerConditionType is a condition type of an IntelligentHorizontalPodAutoscaler.
type IntelligentHorizontalPodAutoscalerConditionType string

const (
	// ScalingActive is True when the autoscaler is configured correctly, has a portrait value and is
	// not paused.
	ScalingActive IntelligentHorizontalPodAutoscalerConditionType = "ScalingActive"

	// ScalingLimited is True when the current portrait value was capped to minReplicas or maxReplicas.
	ScalingLimited IntelligentHorizontalPodAutoscalerConditionType = "ScalingLimited"

	// GrayProgressing is True while a gray change has not reached the current portrait value.
	GrayProgressing IntelligentHorizontalPodAutoscalerConditionType = "GrayProgressing"
)

// IntelligentHorizontalPodAutoscalerList is a list of IntelligentHorizontalPodAutoscaler.
//
// +kubebuilder:object:root=true
type IntelligentHorizontalPodAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the autoscalers.
	Items []IntelligentHorizontalPodAutoscaler `json:"items"`
}
