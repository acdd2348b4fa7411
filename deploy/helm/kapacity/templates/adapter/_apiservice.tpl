{{/*
One APIService backed by the adapter's Service. kube-apiserver verifies the adapter: the caBundle
is written by the adapter itself (self-signed), injected by cert-manager, or given
(adapter.servingCert.caBundle). Arguments: root, name, group, version, versionPriority.
*/}}
{{- define "kapacity.adapter.apiService" -}}
{{- $root := .root -}}
{{- $mode := include "kapacity.adapter.certMode" $root -}}
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: {{ .name }}
  labels:
    {{- include "kapacity.labels" $root | nindent 4 }}
  {{- if eq $mode "cert-manager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ $root.Release.Namespace }}/{{ include "kapacity.adapter.name" $root }}
  {{- end }}
spec:
  group: {{ .group }}
  version: {{ .version }}
  service: {name: {{ include "kapacity.adapter.name" $root }}, namespace: {{ $root.Release.Namespace }}}
  {{- if eq $mode "external" }}
  caBundle: {{ $root.Values.adapter.servingCert.caBundle }}
  {{- end }}
  groupPriorityMinimum: 100
  versionPriority: {{ .versionPriority }}
{{- end -}}

{{/*
Self-signed mode: the right to write the CA into the APIServices of one API group (names), by name,
as its own ClusterRole and binding, so that an API left to another server (metrics-server, KEDA) is
not in the adapter's reach. Arguments: root, api (a short name), names.
*/}}
{{- define "kapacity.adapter.apiServiceRBAC" -}}
{{- $root := .root -}}
{{- $adapter := include "kapacity.adapter.name" $root -}}
{{- if eq (include "kapacity.adapter.certMode" $root) "self-signed" }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $adapter }}-apiservices-{{ .api }}
  labels:
    {{- include "kapacity.labels" $root | nindent 4 }}
rules:
  - apiGroups: [apiregistration.k8s.io]
    resources: [apiservices]
    resourceNames: [{{ join ", " .names }}]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $adapter }}-apiservices-{{ .api }}
  labels:
    {{- include "kapacity.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $adapter }}-apiservices-{{ .api }}
subjects:
  - kind: ServiceAccount
    name: {{ $adapter }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end -}}
