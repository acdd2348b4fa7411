{{/*
Name prefix of every object: the release name when it contains the chart name (so `helm install
kapacity` gives kapacity-adapter, kapacity-manager, … as in deploy/), else "<release>-<chart>".
*/}}
{{- define "kapacity.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kapacity.adapter.name" -}}{{ include "kapacity.fullname" . }}-adapter{{- end -}}
{{- define "kapacity.manager.name" -}}{{ include "kapacity.fullname" . }}-manager{{- end -}}
{{- define "kapacity.webhook.serviceName" -}}{{ include "kapacity.fullname" . }}-webhook{{- end -}}
{{- define "kapacity.webhook.configurationName" -}}{{ include "kapacity.fullname" . }}-pod-webhook{{- end -}}
{{- define "kapacity.webhook.certSecretName" -}}
{{- if and (eq (include "kapacity.webhook.certMode" .) "external") .Values.webhook.certSecretName -}}
{{- .Values.webhook.certSecretName -}}
{{- else -}}
{{- include "kapacity.fullname" . }}-webhook-cert
{{- end -}}
{{- end -}}

{{/* The webhook certificate mode; Kapacity's webhook.useCertManager: true means cert-manager. */}}
{{- define "kapacity.webhook.certMode" -}}
{{- $mode := .Values.webhook.certMode -}}
{{- if .Values.webhook.useCertManager -}}{{- $mode = "cert-manager" -}}{{- end -}}
{{- if not (has $mode (list "self-signed" "cert-manager" "external")) -}}
{{- fail (printf "webhook.certMode is %q: use self-signed, cert-manager or external" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* The adapter's serving certificate mode (adapter.servingCert.mode). */}}
{{- define "kapacity.adapter.certMode" -}}
{{- $mode := .Values.adapter.servingCert.mode -}}
{{- if not (has $mode (list "self-signed" "cert-manager" "external")) -}}
{{- fail (printf "adapter.servingCert.mode is %q: use self-signed, cert-manager or external" $mode) -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{/* The Secret holding the adapter's serving certificate (and, self-signed, its CA). */}}
{{- define "kapacity.adapter.certSecretName" -}}
{{- if and (eq (include "kapacity.adapter.certMode" .) "external") .Values.adapter.servingCert.secretName -}}
{{- .Values.adapter.servingCert.secretName -}}
{{- else -}}
{{- include "kapacity.adapter.name" . }}-cert
{{- end -}}
{{- end -}}

{{/* The Service name kube-apiserver verifies the adapter's certificate for. */}}
{{- define "kapacity.adapter.serviceDNSName" -}}
{{- include "kapacity.adapter.name" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* Where the adapter's serving certificate files are: written by itself (self-signed) or mounted. */}}
{{- define "kapacity.adapter.certDir" -}}
{{- if eq (include "kapacity.adapter.certMode" .) "self-signed" -}}/tmp/certs{{- else -}}/var/run/kapacity/serving-cert{{- end -}}
{{- end -}}

{{- define "kapacity.webhook.validatingConfigurationName" -}}{{ include "kapacity.fullname" . }}-validating-webhook{{- end -}}

{{/* The logging flags of every component (component-base's), when not the defaults. */}}
{{- define "kapacity.loggingArgs" -}}
{{- if ne (toString .Values.logging.format) "text" }}
- --logging-format={{ .Values.logging.format }}
{{- end }}
{{- if .Values.logging.verbosity }}
- --v={{ .Values.logging.verbosity }}
{{- end }}
{{- end -}}

{{- define "kapacity.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kapacity.algorithmJob.namespace" -}}
{{- default .Release.Namespace .Values.algorithmJob.namespace -}}
{{- end -}}

{{/* Labels of every object. In the kustomize tree (kustomize: true) nothing claims Helm manages it. */}}
{{- define "kapacity.labels" -}}
app.kubernetes.io/part-of: kapacity
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- if not .Values.kustomize }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}
{{- end -}}

{{/* Pod selector of a component: the name deploy/ has always used, so kustomize installs upgrade. */}}
{{- define "kapacity.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{/*
Kapacity chart keys that are per component here, or not supported: fail with the fix rather than
ignore them silently.
*/}}
{{- define "kapacity.validate" -}}
{{- $moved := dict "replicaCount" "adapter.replicaCount and manager.replicaCount" "resources" "adapter.resources and manager.resources" "nodeSelector" "adapter.nodeSelector and manager.nodeSelector" "tolerations" "adapter.tolerations and manager.tolerations" "affinity" "adapter.affinity and manager.affinity" "podAnnotations" "adapter.podAnnotations and manager.podAnnotations" "securityContext" "adapter.securityContext and manager.securityContext" "podSecurityContext" "adapter.podSecurityContext and manager.podSecurityContext" "serviceAccount" "adapter.serviceAccount and manager.serviceAccount (their names follow the release)" -}}
{{- range $key, $instead := $moved -}}
{{- if hasKey $.Values $key -}}
{{- fail (printf "%s is per component in this chart: set %s instead" $key $instead) -}}
{{- end -}}
{{- end -}}
{{- $unsupported := dict "objectSelector" "the manager watches all objects" "logPath" "logs go to stderr; set logging.verbosity and logging.format" "logFileMaxAge" "logs go to stderr" "logFileRotationTime" "logs go to stderr" "zap" "every component logs as the Kubernetes components do: set logging.verbosity (-v) and logging.format (text or json)" "timezone" "cron portraits name their own time zone" -}}
{{- range $key, $why := $unsupported -}}
{{- if hasKey $.Values $key -}}
{{- fail (printf "%s is a Kapacity chart key this chart does not support (%s): remove it" $key $why) -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey .Values "metricProvider") (ne .Values.metricProvider "prometheus") -}}
{{- fail (printf "metricProvider %q is not supported: the adapter reads Prometheus only (remove metricProvider)" .Values.metricProvider) -}}
{{- end -}}
{{- if and .Values.prometheus.auth.incluster .Values.prometheus.auth.config -}}
{{- fail "prometheus.auth.incluster and prometheus.auth.config are alternatives (as --prometheus-auth-incluster and --prometheus-auth-config): set one" -}}
{{- end -}}
{{- if and .Values.prometheus.tls.caSecretName .Values.prometheus.tls.caConfigMapName -}}
{{- fail "prometheus.tls.caSecretName and prometheus.tls.caConfigMapName are both set: keep one" -}}
{{- end -}}
{{- if and .Values.manager.enabled (gt (int .Values.manager.replicaCount) 1) (not .Values.manager.leaderElection.enabled) -}}
{{- fail "manager.replicaCount > 1 needs manager.leaderElection.enabled: true (two managers would both reconcile)" -}}
{{- end -}}
{{- if and .Values.webhook.enabled (eq (include "kapacity.webhook.certMode" .) "external") (not .Values.webhook.caBundle) -}}
{{- fail "webhook.certMode external needs webhook.caBundle (the base64 PEM CA that signed webhook.certSecretName)" -}}
{{- end -}}
{{- if and .Values.webhook.enabled (eq (include "kapacity.webhook.certMode" .) "external") (not .Values.webhook.certSecretName) -}}
{{- fail "webhook.certMode external needs webhook.certSecretName (a Secret with tls.crt and tls.key)" -}}
{{- end -}}
{{- if and .Values.adapter.enabled (eq (include "kapacity.adapter.certMode" .) "external") (not .Values.adapter.servingCert.secretName) -}}
{{- fail "adapter.servingCert.mode external needs adapter.servingCert.secretName (a Secret with tls.crt and tls.key)" -}}
{{- end -}}
{{- if and .Values.adapter.enabled (eq (include "kapacity.adapter.certMode" .) "external") (not .Values.adapter.servingCert.caBundle) -}}
{{- fail "adapter.servingCert.mode external needs adapter.servingCert.caBundle (the base64 PEM CA that signed adapter.servingCert.secretName): kube-apiserver verifies the adapter with it" -}}
{{- end -}}
{{- if hasKey .Values.algorithmJob "serviceAccount" -}}
{{- fail "algorithmJob.serviceAccount is gone: the manager creates ServiceAccount algorithmJob.defaultServiceAccount in each portrait's namespace (remove algorithmJob.serviceAccount)" -}}
{{- end -}}
{{- end -}}
