// Package v1alpha1 holds the autoscaling.kapacitystack.io/v1alpha1 API: IntelligentHorizontalPodAutoscaler,
// HorizontalPortrait and ReplicaProfile, with their defaulting and validation.
//
// The wire format (group, kinds, JSON field names, enum values, defaults) is kept identical to
// traas-stack/kapacity so that manifests and clients written for Kapacity keep working. Additions are
// optional fields only; every deliberate tightening of validation is listed in this package's
// validation.go, next to the rule that implements it.
//
// The package is pure data: it never talks to a cluster and does no I/O beyond parsing.
//
// +kubebuilder:object:generate=true
// +groupName=autoscaling.kapacitystack.io
package v1alpha1
