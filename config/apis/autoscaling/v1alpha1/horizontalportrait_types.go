package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// HorizontalPortrait is the expected replica count of a workload over time (its portrait), together
// with the metrics and the algorithm that produce it. Its spec is usually managed by an
// IntelligentHorizontalPodAutoscaler's Dynamic provider; its status is filled by a portrait generator.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=hp,categories=kapacity
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`,description="Name of the workload"
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.portraitType`,description="Portrait type"
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.spec.algorithm.type`,description="Algorithm that generates the portrait"
// +kubebuilder:printcolumn:name="Generator",type=string,JSONPath=`.spec.externalGeneratorName`,priority=1,description="External generator, if any"
// +kubebuilder:printcolumn:name="Data",type=string,JSONPath=`.status.portraitData.type`,description="Kind of portrait data generated"
// +kubebuilder:printcolumn:name="Generated",type=string,JSONPath=`.status.conditions[?(@.type=="PortraitGenerated")].status`,description="Whether the last generation succeeded"
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.portraitData.expireTime`,priority=1,description="When the portrait data expires"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HorizontalPortrait struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what to generate the portrait for, and how.
	Spec HorizontalPortraitSpec `json:"spec,omitempty"`

	// Status holds the generated portrait.
	// +optional
	Status HorizontalPortraitStatus `json:"status,omitzero"`
}

// HorizontalPortraitSpec is the desired state of a HorizontalPortrait.
type HorizontalPortraitSpec struct {
	// ScaleTargetRef is the workload whose portrait this is.
	ScaleTargetRef autoscalingv2.CrossVersionObjectReference `json:"scaleTargetRef"`

	PortraitSpec `json:",inline"`
}

// PortraitSpec is what a portrait generator needs: the portrait type, its metrics and its algorithm.
//
// +kubebuilder:validation:XValidation:rule="self.algorithm.type != 'Burst' || self.portraitType == 'Burst'",message="the Burst algorithm generates Burst portraits only: set portraitType to Burst",fieldPath=".portraitType",reason="FieldValueInvalid"
type PortraitSpec struct {
	// PortraitType chooses the generator: Reactive (the Kubernetes HPA algorithm, built in),
	// Predictive (traffic forecasting), Burst, or a type of an external generator. It becomes part of
	// the HorizontalPortrait's name, so it must be a DNS label apart from case.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	PortraitType PortraitType `json:"portraitType"`

	// ExternalGeneratorName, when set, hands the portrait to the external controller of that name:
	// Kapacity's generators then leave the object alone.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ExternalGeneratorName string `json:"externalGeneratorName,omitempty"`

	// Metrics are the inputs of the algorithm. Names, when set, must be unique.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Metrics []MetricSpec `json:"metrics,omitempty"`

	// Algorithm is the algorithm that generates the portrait.
	Algorithm PortraitAlgorithm `json:"algorithm"`
}

// PortraitType is the type of a portrait.
type PortraitType string

const (
	// ReactivePortraitType generates the portrait from the latest metrics.
	ReactivePortraitType PortraitType = "Reactive"

	// PredictivePortraitType generates the portrait by forecasting from historical metrics.
	PredictivePortraitType PortraitType = "Predictive"

	// BurstPortraitType generates the portrait from detected traffic bursts.
	BurstPortraitType PortraitType = "Burst"
)

// PortraitAlgorithm selects and configures the algorithm of a portrait. The block named by Type must
// be set when Type is one Kapacity knows.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'ExternalJob' || has(self.externalJob)",message="externalJob must be set when type is ExternalJob: add externalJob.job and externalJob.resultSource or change type",fieldPath=".externalJob",reason="FieldValueRequired"
type PortraitAlgorithm struct {
	// Type is the algorithm: KubeHPA (in process, for Reactive portraits), Burst (in process, for
	// Burst portraits), ExternalJob (a job whose result is read back), or a type of an external
	// generator.
	// +kubebuilder:validation:MinLength=1
	Type PortraitAlgorithmType `json:"type"`

	// ExternalJob configures the ExternalJob algorithm.
	// +optional
	ExternalJob *ExternalJobPortraitAlgorithm `json:"externalJob,omitempty"`

	// KubeHPA configures the KubeHPA algorithm. When unset, the defaults of each field apply.
	// +optional
	KubeHPA *KubeHPAPortraitAlgorithm `json:"kubeHPA,omitempty"`

	// Burst configures the Burst algorithm. When unset, the defaults of each field apply.
	// +optional
	Burst *BurstPortraitAlgorithm `json:"burst,omitempty"`

	// Config is free-form configuration for the algorithms of external generators.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	Config *runtime.RawExtension `json:"config,omitempty"`
}

// PortraitAlgorithmType is the type of a portrait algorithm.
type PortraitAlgorithmType string

const (
	// ExternalJobPortraitAlgorithmType runs the algorithm as a job outside the manager.
	ExternalJobPortraitAlgorithmType PortraitAlgorithmType = "ExternalJob"

	// KubeHPAPortraitAlgorithmType is the Kubernetes HPA replica calculation.
	KubeHPAPortraitAlgorithmType PortraitAlgorithmType = "KubeHPA"

	// BurstPortraitAlgorithmType detects traffic bursts from the last few samples of a traffic
	// metric and scales for the traffic one pod start-up ahead (package recommender/burst).
	BurstPortraitAlgorithmType PortraitAlgorithmType = "Burst"
)

// KubeHPAPortraitAlgorithm holds the parameters of the Kubernetes HPA algorithm. They have the meaning of
// kube-controller-manager's flags of the same names.
type KubeHPAPortraitAlgorithm struct {
	// SyncPeriod is how often the portrait is recomputed.
	// +optional
	// +kubebuilder:default="15s"
	SyncPeriod metav1.Duration `json:"syncPeriod,omitzero"`

	// Tolerance is the relative distance from the target within which no scaling is proposed, as a
	// decimal string (for example "0.1").
	// +optional
	// +kubebuilder:default="0.1"
	// +kubebuilder:validation:MaxLength=32
	Tolerance string `json:"tolerance,omitempty"`

	// CPUInitializationPeriod is the time after a pod starts during which its CPU samples may be
	// skipped.
	// +optional
	// +kubebuilder:default="5m"
	CPUInitializationPeriod metav1.Duration `json:"cpuInitializationPeriod,omitzero"`

	// InitialReadinessDelay is the time after a pod starts during which a readiness change counts as
	// the first one, so that its CPU samples are ignored while it is unready.
	// +optional
	// +kubebuilder:default="30s"
	InitialReadinessDelay metav1.Duration `json:"initialReadinessDelay,omitzero"`
}

// BurstPortraitAlgorithm holds the parameters of the Burst algorithm. The portrait's first metric is
// the traffic: an Object, External or Pods metric with an averageValue target (the traffic one pod
// serves at the target), or a Resource or ContainerResource metric with a utilization or averageValue
// target. Its recent samples are read from the history API (history.metrics.kapacitystack.io).
//
// +kubebuilder:validation:XValidation:rule="!has(self.syncPeriod) || (duration(self.syncPeriod) >= duration('1s') && duration(self.syncPeriod) <= duration('1h'))",message="syncPeriod must be between 1s and 1h, for example 15s",fieldPath=".syncPeriod",reason="FieldValueInvalid"
// +kubebuilder:validation:XValidation:rule="!has(self.sampleInterval) || (duration(self.sampleInterval) >= duration('1s') && duration(self.sampleInterval) <= duration('10m'))",message="sampleInterval must be between 1s and 10m, for example the traffic metric's scrape interval",fieldPath=".sampleInterval",reason="FieldValueInvalid"
// +kubebuilder:validation:XValidation:rule="!has(self.startupDelay) || (duration(self.startupDelay) >= duration('1s') && duration(self.startupDelay) <= duration('1h'))",message="startupDelay must be between 1s and 1h, for example the time a new pod takes to become ready",fieldPath=".startupDelay",reason="FieldValueInvalid"
type BurstPortraitAlgorithm struct {
	// SyncPeriod is how often the traffic is checked for a burst.
	// +optional
	// +kubebuilder:default="15s"
	SyncPeriod metav1.Duration `json:"syncPeriod,omitzero"`

	// SampleInterval is the spacing of the traffic samples read at each check: the traffic level is
	// the median of the last three and its growth the Theil–Sen slope of the last five, so one wild
	// sample moves neither and a burst shows two samples after it starts. About the traffic
	// metric's scrape interval is right; shorter only repeats samples.
	// +optional
	// +kubebuilder:default="15s"
	SampleInterval metav1.Duration `json:"sampleInterval,omitzero"`

	// StartupDelay is the time a new pod takes to serve. The traffic is projected this far ahead:
	// a growth that would overload the serving pods before new ones could help is a burst, and the
	// portrait asks for the pods that the projected traffic needs.
	// +optional
	// +kubebuilder:default="1m"
	StartupDelay metav1.Duration `json:"startupDelay,omitzero"`

	// Margin is how far above the forecast's upper band (a fraction of it, as a decimal string)
	// the traffic level must be to count as a burst. The band comes from the Predictive portrait of
	// the same autoscaler, when its job writes one for a traffic metric of the same name.
	// +optional
	// +kubebuilder:default="0.1"
	// +kubebuilder:validation:MaxLength=32
	Margin string `json:"margin,omitempty"`

	// PodCapacity is the traffic one pod serves at 100 % of its capacity, in the traffic metric's
	// units, for averageValue targets: the target is then averageValue / podCapacity. Unset, the
	// averageValue is taken as the capacity. Utilization targets need none: the capacity is the
	// pods' request of the resource.
	// +optional
	PodCapacity *resource.Quantity `json:"podCapacity,omitempty"`
}

// ExternalJobPortraitAlgorithm runs the algorithm as a job and reads its result back.
type ExternalJobPortraitAlgorithm struct {
	// Job is the job that runs the algorithm.
	Job PortraitAlgorithmJob `json:"job"`

	// ResultSource is where the job writes its result.
	ResultSource PortraitAlgorithmResultSource `json:"resultSource"`
}

// PortraitAlgorithmJob is the job that runs an external algorithm.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'CronJob' || has(self.cronJob)",message="cronJob must be set when type is CronJob: add cronJob.template",fieldPath=".cronJob",reason="FieldValueRequired"
type PortraitAlgorithmJob struct {
	// Type is the kind of job. Only CronJob is built in.
	// +kubebuilder:validation:MinLength=1
	Type PortraitAlgorithmJobType `json:"type"`

	// CronJob configures a CronJob job.
	// +optional
	CronJob *CronJobPortraitAlgorithmJob `json:"cronJob,omitempty"`
}

// PortraitAlgorithmJobType is the kind of an algorithm job.
type PortraitAlgorithmJobType string

const (
	// CronJobPortraitAlgorithmJobType runs the algorithm from a Kubernetes CronJob.
	CronJobPortraitAlgorithmJobType PortraitAlgorithmJobType = "CronJob"
)

// CronJobPortraitAlgorithmJob runs the algorithm from a Kubernetes CronJob.
type CronJobPortraitAlgorithmJob struct {
	// Template is the CronJob to create. The container named "algorithm" gets the default image and
	// the environment the algorithm needs when they are missing.
	Template CronJobTemplateSpec `json:"template"`
}

// CronJobTemplateSpec is the metadata and spec of a CronJob to create.
type CronJobTemplateSpec struct {
	// ObjectMeta holds the labels and annotations of the CronJob.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the spec of the CronJob.
	// +optional
	Spec batchv1.CronJobSpec `json:"spec,omitzero"`
}

// PortraitAlgorithmResultSource is where an algorithm job writes its result.
type PortraitAlgorithmResultSource struct {
	// Type is the kind of result source. Only ConfigMap is built in: the ConfigMap
	// "<portrait name>-result" in the portrait's namespace.
	// +kubebuilder:validation:MinLength=1
	Type PortraitAlgorithmResultSourceType `json:"type"`

	// ConfigMap configures a ConfigMap result source. It has no fields yet and may be omitted.
	// +optional
	ConfigMap *ConfigMapPortraitAlgorithmResultSource `json:"configMap,omitempty"`
}

// PortraitAlgorithmResultSourceType is the kind of a result source.
type PortraitAlgorithmResultSourceType string

const (
	// ConfigMapPortraitAlgorithmResultSourceType reads the result from a ConfigMap.
	ConfigMapPortraitAlgorithmResultSourceType PortraitAlgorithmResultSourceType = "ConfigMap"
)

// ConfigMapPortraitAlgorithmResultSource configures a ConfigMap result source. It is empty: the name
// of the ConfigMap follows from the portrait's.
type ConfigMapPortraitAlgorithmResultSource struct{}

// HorizontalPortraitStatus is the observed state of a HorizontalPortrait.
type HorizontalPortraitStatus struct {
	// PortraitData is the generated portrait.
	// +optional
	PortraitData *HorizontalPortraitData `json:"portraitData,omitempty"`

	// Conditions has PortraitGenerated.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Burst is set by the Burst generator while a burst is under way. It is kept here, not in the
	// manager's memory, so that a restarted manager carries the burst on.
	// +optional
	Burst *BurstStatus `json:"burst,omitempty"`
}

// BurstStatus is a burst under way.
type BurstStatus struct {
	// Since is when the burst was detected.
	Since metav1.Time `json:"since"`

	// BaselineReplicas are the pods that were serving when the burst was detected. The burst lasts
	// while the traffic is more than they serve (or above the forecast band), so that the pods it
	// added are not released while the traffic still needs them.
	// +kubebuilder:validation:Minimum=0
	BaselineReplicas int32 `json:"baselineReplicas"`
}

// HorizontalPortraitData is a generated portrait. The block named by Type must be set.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'Static' || has(self.static)",message="static must be set when type is Static",fieldPath=".static",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'Cron' || has(self.cron)",message="cron must be set when type is Cron",fieldPath=".cron",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="self.type != 'TimeSeries' || has(self.timeSeries)",message="timeSeries must be set when type is TimeSeries",fieldPath=".timeSeries",reason="FieldValueRequired"
type HorizontalPortraitData struct {
	// Type is the kind of data.
	// +kubebuilder:validation:Enum=Static;Cron;TimeSeries
	Type HorizontalPortraitDataType `json:"type"`

	// Static is a fixed replica count.
	// +optional
	Static *StaticHorizontalPortraitData `json:"static,omitempty"`

	// Cron is a set of cron windows.
	// +optional
	Cron *CronHorizontalPortraitData `json:"cron,omitempty"`

	// TimeSeries is a replica count over time.
	// +optional
	TimeSeries *TimeSeriesHorizontalPortraitData `json:"timeSeries,omitempty"`

	// ExpireTime is when the whole portrait stops being valid. Unset means never.
	// +optional
	ExpireTime *metav1.Time `json:"expireTime,omitempty"`
}

// HorizontalPortraitDataType is the kind of portrait data.
type HorizontalPortraitDataType string

const (
	// StaticHorizontalPortraitDataType is a fixed replica count.
	StaticHorizontalPortraitDataType HorizontalPortraitDataType = "Static"

	// CronHorizontalPortraitDataType is a set of cron windows.
	CronHorizontalPortraitDataType HorizontalPortraitDataType = "Cron"

	// TimeSeriesHorizontalPortraitDataType is a replica count over time.
	TimeSeriesHorizontalPortraitDataType HorizontalPortraitDataType = "TimeSeries"
)

// StaticHorizontalPortraitData is a fixed replica count.
type StaticHorizontalPortraitData struct {
	// Replicas is the desired number of online replicas.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
}

// CronHorizontalPortraitData is a set of cron windows; they must not overlap.
type CronHorizontalPortraitData struct {
	// Crons are the windows.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Crons []ReplicaCron `json:"crons"`
}

// TimeSeriesHorizontalPortraitData is a replica count over time.
//
// +kubebuilder:validation:XValidation:rule="self.timeSeries.map(p, p.timestamp).isSorted()",message="timeSeries must be sorted by timestamp: sort the points by time and merge duplicates",fieldPath=".timeSeries",reason="FieldValueInvalid"
type TimeSeriesHorizontalPortraitData struct {
	// TimeSeries are the points, in strictly increasing time order. Each point holds from its
	// timestamp until the next point; the last one holds until the data expires. A week of
	// points a minute apart fits.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10080
	TimeSeries []ReplicaTimeSeriesPoint `json:"timeSeries"`
}

// ReplicaTimeSeriesPoint is one point of a replica time series.
type ReplicaTimeSeriesPoint struct {
	// Timestamp is when the point takes effect, in Unix seconds.
	// +kubebuilder:validation:Minimum=0
	Timestamp int64 `json:"timestamp"`

	// Replicas is the desired number of online replicas from Timestamp on.
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
}

// HorizontalPortraitConditionType is a condition type of a HorizontalPortrait.
type HorizontalPortraitConditionType string

const (
	// PortraitGenerated is True when the portrait was generated and written to the status.
	PortraitGenerated HorizontalPortraitConditionType = "PortraitGenerated"
)

// HorizontalPortraitList is a list of HorizontalPortrait.
//
// +kubebuilder:object:root=true
type HorizontalPortraitList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the portraits.
	Items []HorizontalPortrait `json:"items"`
}
