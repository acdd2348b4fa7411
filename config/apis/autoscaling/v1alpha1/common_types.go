package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// Names that other components match on the wire: pod labels, pod conditions and the finalizer. They
// live with the API because Kapacity's webhook, controllers and users' manifests must agree on them.
const (
	// FinalizerName is set on all three kinds so that their controllers can clean up first.
	FinalizerName = "kapacitystack.io/finalizer"

	// PodStateLabelKey carries a pod's state. Online is the absence of the label (an empty or unknown
	// value is read as Online too), so that pods never touched by Kapacity count as serving.
	PodStateLabelKey = "kapacitystack.io/pod-state"

	// InjectReadinessGateLabelKey opts a pod in to the readiness gate that the ReadinessGate traffic
	// controller drives; its value must be "true".
	InjectReadinessGateLabelKey = "kapacitystack.io/inject-pod-readiness-gate"

	// PodOnlineConditionType is the pod condition (and readiness gate) that cuts a pod's traffic off
	// when False.
	PodOnlineConditionType = "kapacitystack.io/online"
)

// PodState is the state of a running pod of a workload that a ReplicaProfile manages.
type PodState string

const (
	// PodStateOnline means the pod is running and handles traffic.
	PodStateOnline PodState = "Online"

	// PodStateCutoff means the pod is running but receives no traffic, so it can be brought back
	// within seconds.
	PodStateCutoff PodState = "Cutoff"

	// PodStateStandby means the pod is running with its resources reclaimed.
	PodStateStandby PodState = "Standby"

	// PodStateDeleted means the pod is removed by scaling the workload down.
	PodStateDeleted PodState = "Deleted"
)

// MetricSpec is an autoscaling/v2 MetricSpec with an optional name and comparison operator.
type MetricSpec struct {
	autoscalingv2.MetricSpec `json:",inline"`

	// Name identifies this metric among the metrics of the same list. Algorithms that look metrics up
	// by name (the predictive algorithm's traffic metrics) need it; it must be unique within the list
	// when set.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// Operator turns the metric into the rule "<actual> <operator> <target>". Only stability checkers
	// read it: there the rule describes an anomaly, and an empty operator means ">" (the actual value
	// exceeds the target).
	// +optional
	// +kubebuilder:validation:Enum="==";">";"<";">=";"<="
	Operator Operator `json:"operator,omitempty"`
}

// Operator is a binary comparison operator.
type Operator string

const (
	// Equals means that the two numbers are equal.
	Equals Operator = "=="

	// GreaterThan means that the left number is greater than the right one.
	GreaterThan Operator = ">"

	// LessThan means that the left number is less than the right one.
	LessThan Operator = "<"

	// GreaterThanOrEquals means that the left number is greater than or equal to the right one.
	GreaterThanOrEquals Operator = ">="

	// LessThanOrEquals means that the left number is less than or equal to the right one.
	LessThanOrEquals Operator = "<="
)

// ReplicaCron gives a replica count to a time window that opens when Start fires and closes when End
// fires.
//
// A cron is active at time t when, evaluated in its time zone, the next Start after t comes later than
// the next End after t: the last event was a Start. Windows may wrap around midnight.
//
// +kubebuilder:validation:XValidation:rule="self.start != self.end",message="start and end must differ: a window that closes the moment it opens is never active; change end to the time the window should close",fieldPath=".end",reason="FieldValueInvalid"
type ReplicaCron struct {
	// Name identifies the rule in events and errors. It must be unique within its list.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Description is free text for people.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// TimeZone is the IANA time zone (for example "Asia/Shanghai") in which Start and End are
	// evaluated. A "CRON_TZ=" prefix inside Start or End overrides it for that expression.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`

	// Start is a standard five-field cron expression (minute hour day-of-month month day-of-week),
	// or a descriptor such as "@daily", at which the window opens.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Start string `json:"start"`

	// End is a standard cron expression, like Start, at which the window closes.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	End string `json:"end"`

	// Replicas is the desired number of online replicas while the window is open.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
}
