package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReplicaProfile holds the desired number of a workload's pods in each state and makes it so: it labels
// pods, switches their traffic through a readiness gate and sets the workload's /scale. An
// IntelligentHorizontalPodAutoscaler writes one of the same name; it can also be used alone.
//
// The scale subresource maps to the online replicas, so `kubectl scale rp` works on a ReplicaProfile
// used alone. It has no label selector: a HorizontalPodAutoscaler cannot target it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.onlineReplicas,statuspath=.status.onlineReplicas
// +kubebuilder:resource:shortName=rp,categories=kapacity
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`,description="Name of the workload"
// +kubebuilder:printcolumn:name="Target-Kind",type=string,JSONPath=`.spec.scaleTargetRef.kind`,priority=1,description="Kind of the workload"
// +kubebuilder:printcolumn:name="Online",type=integer,JSONPath=`.spec.onlineReplicas`,description="Desired online replicas"
// +kubebuilder:printcolumn:name="Cutoff",type=integer,JSONPath=`.spec.cutoffReplicas`,description="Desired cutoff replicas"
// +kubebuilder:printcolumn:name="Standby",type=integer,JSONPath=`.spec.standbyReplicas`,description="Desired standby replicas"
// +kubebuilder:printcolumn:name="Current-Online",type=integer,JSONPath=`.status.onlineReplicas`,description="Running online pods"
// +kubebuilder:printcolumn:name="Current-Cutoff",type=integer,JSONPath=`.status.cutoffReplicas`,priority=1,description="Running cutoff pods"
// +kubebuilder:printcolumn:name="Current-Standby",type=integer,JSONPath=`.status.standbyReplicas`,priority=1,description="Running standby pods"
// +kubebuilder:printcolumn:name="Direction",type=string,JSONPath=`.spec.allowedScalingDirection`,priority=1,description="Allowed scaling direction of online replicas"
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`,priority=1,description="Whether reconciling is paused"
// +kubebuilder:printcolumn:name="Ensured",type=string,JSONPath=`.status.conditions[?(@.type=="Ensured")].status`,description="Whether the observed counts match the desired ones"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReplicaProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired number of pods in each state.
	Spec ReplicaProfileSpec `json:"spec,omitempty"`

	// Status is the observed number of running pods in each state.
	// +optional
	Status ReplicaProfileStatus `json:"status,omitzero"`
}

// ReplicaProfileSpec is the desired state of a ReplicaProfile.
type ReplicaProfileSpec struct {
	// ScaleTargetRef is the workload. It cannot be changed: to manage another workload, create
	// another ReplicaProfile.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="scaleTargetRef is immutable: delete the ReplicaProfile and create one for the new workload",reason="FieldValueForbidden"
	ScaleTargetRef autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`

	// OnlineReplicas is the desired number of online pods.
	// +optional
	// +kubebuilder:validation:Minimum=0
	OnlineReplicas int32 `json:"onlineReplicas,omitempty"`

	// CutoffReplicas is the desired number of cutoff pods: running, without traffic.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CutoffReplicas int32 `json:"cutoffReplicas,omitempty"`

	// StandbyReplicas is the desired number of standby pods: running, with resources reclaimed.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StandbyReplicas int32 `json:"standbyReplicas,omitempty"`

	// Paused stops reconciling.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// AllowedScalingDirection limits how online replicas may change: Both, Neither, Up or Down.
	// Cutoff and standby replicas are not limited.
	// +optional
	// +kubebuilder:validation:Enum=Both;Neither;Up;Down
	// +kubebuilder:default=Both
	AllowedScalingDirection ScalingDirection `json:"allowedScalingDirection,omitempty"`

	// Behavior chooses how pods are ordered and how their traffic is switched.
	// +optional
	// +kubebuilder:default={podSorter:{type:"WorkloadDefault"},podTrafficController:{type:"ReadinessGate"}}
	Behavior ReplicaProfileBehavior `json:"behavior,omitzero"`
}

// ScalingDirection is a direction in which online replicas may change.
type ScalingDirection string

const (
	// ScalingDirectionBoth allows scaling up and down.
	ScalingDirectionBoth ScalingDirection = "Both"

	// ScalingDirectionNeither allows no scaling.
	ScalingDirectionNeither ScalingDirection = "Neither"

	// ScalingDirectionUp allows scaling up only.
	ScalingDirectionUp ScalingDirection = "Up"

	// ScalingDirectionDown allows scaling down only.
	ScalingDirectionDown ScalingDirection = "Down"
)

// ReplicaProfileBehavior chooses how pods are ordered and how their traffic is switched.
type ReplicaProfileBehavior struct {
	// PodSorter orders the pods whose state changes first.
	// +optional
	// +kubebuilder:default={type:"WorkloadDefault"}
	PodSorter PodSorter `json:"podSorter,omitzero"`

	// PodTrafficController switches the traffic of pods.
	// +optional
	// +kubebuilder:default={type:"ReadinessGate"}
	PodTrafficController PodTrafficController `json:"podTrafficController,omitzero"`
}

// PodSorter orders the pods of a workload, first to leave first.
//
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'External' || has(self.external)",message="external must be set when type is External: add external.name",fieldPath=".external",reason="FieldValueRequired"
type PodSorter struct {
	// Type is WorkloadDefault (the order the workload's own controller would use) or External.
	// +optional
	// +kubebuilder:validation:Enum=WorkloadDefault;External
	// +kubebuilder:default=WorkloadDefault
	Type PodSorterType `json:"type,omitempty"`

	// External names an external sorter.
	// +optional
	External *ExternalPodSorter `json:"external,omitempty"`
}

// PodSorterType is the kind of a pod sorter.
type PodSorterType string

const (
	// WorkloadDefaultPodSorterType orders pods as the workload's controller would.
	WorkloadDefaultPodSorterType PodSorterType = "WorkloadDefault"

	// ExternalPodSorterType delegates ordering to an external sorter.
	ExternalPodSorterType PodSorterType = "External"
)

// ExternalPodSorter names an external pod sorter.
type ExternalPodSorter struct {
	// Name identifies the sorter.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Config is passed to the sorter as is.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Config map[string]string `json:"config,omitempty"`
}

// PodTrafficController switches pods' traffic on and off.
//
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'External' || has(self.external)",message="external must be set when type is External: add external.name",fieldPath=".external",reason="FieldValueRequired"
type PodTrafficController struct {
	// Type is ReadinessGate (the pod condition kapacitystack.io/online, which pods opt in to with the
	// label kapacitystack.io/inject-pod-readiness-gate: "true") or External.
	// +optional
	// +kubebuilder:validation:Enum=ReadinessGate;External
	// +kubebuilder:default=ReadinessGate
	Type PodTrafficControllerType `json:"type,omitempty"`

	// External names an external traffic controller.
	// +optional
	External *ExternalPodTrafficController `json:"external,omitempty"`
}

// PodTrafficControllerType is the kind of a pod traffic controller.
type PodTrafficControllerType string

const (
	// ReadinessGatePodTrafficControllerType switches traffic with a readiness gate.
	ReadinessGatePodTrafficControllerType PodTrafficControllerType = "ReadinessGate"

	// ExternalPodTrafficControllerType delegates traffic switching to an external controller.
	ExternalPodTrafficControllerType PodTrafficControllerType = "External"
)

// ExternalPodTrafficController names an external pod traffic controller.
type ExternalPodTrafficController struct {
	// Name identifies the controller.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Config is passed to the controller as is.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Config map[string]string `json:"config,omitempty"`
}

// ReplicaProfileStatus is the observed state of a ReplicaProfile.
type ReplicaProfileStatus struct {
	// OnlineReplicas is the number of running online pods.
	// +optional
	// +kubebuilder:validation:Minimum=0
	OnlineReplicas int32 `json:"onlineReplicas,omitempty"`

	// CutoffReplicas is the number of running cutoff pods.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CutoffReplicas int32 `json:"cutoffReplicas,omitempty"`

	// StandbyReplicas is the number of running standby pods.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StandbyReplicas int32 `json:"standbyReplicas,omitempty"`

	// Conditions are Applied and Ensured.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ReplicaProfileConditionType is a condition type of a ReplicaProfile.
type ReplicaProfileConditionType string

const (
	// ReplicaProfileApplied is True when every operation needed for the profile was carried out.
	ReplicaProfileApplied ReplicaProfileConditionType = "Applied"

	// ReplicaProfileEnsured is True when the observed pod counts match the profile.
	ReplicaProfileEnsured ReplicaProfileConditionType = "Ensured"
)

// ReplicaProfileList is a list of ReplicaProfile.
//
// +kubebuilder:object:root=true
type ReplicaProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the profiles.
	Items []ReplicaProfile `json:"items"`
}
