{{/* lb-probe-webhook.name is the chart name, or nameOverride. */}}
{{- define "lb-probe-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
lb-probe-webhook.fullname names every object: fullnameOverride, else the release name when it
already contains the chart name (release "lb-probe-webhook" gives the kustomize base's names),
else "<release>-<chart>".
*/}}
{{- define "lb-probe-webhook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "lb-probe-webhook.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* lb-probe-webhook.selectorLabels select the webhook's pods. */}}
{{- define "lb-probe-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lb-probe-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* lb-probe-webhook.labels go on every object. */}}
{{- define "lb-probe-webhook.labels" -}}
{{ include "lb-probe-webhook.selectorLabels" . }}
app.kubernetes.io/part-of: lb-probe-webhook
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* lb-probe-webhook.tlsSecret is the Secret holding the serving certificate. */}}
{{- define "lb-probe-webhook.tlsSecret" -}}
{{ include "lb-probe-webhook.fullname" . }}-tls
{{- end }}

{{/* lb-probe-webhook.dnsNames are the serving certificate's names: the webhook Service's DNS names. */}}
{{- define "lb-probe-webhook.dnsNames" -}}
{{- $svc := printf "%s.%s.svc" (include "lb-probe-webhook.fullname" .) .Release.Namespace -}}
{{ list $svc (printf "%s.cluster.local" $svc) | toJson }}
{{- end }}

{{/* lb-probe-webhook.metricsJob is the Prometheus job label the ServiceMonitor gives the webhook's metrics (the metrics Service's name). */}}
{{- define "lb-probe-webhook.metricsJob" -}}
{{ include "lb-probe-webhook.fullname" . }}-metrics
{{- end }}

{{/*
lb-probe-webhook.albBackends is "true" when the policy writes the ALB health check on Services of
any type (provider aws with aws.alb: true), and empty otherwise. The webhook registration follows
it, so the one policy setting also sends those Services to the webhook: there is no second value
to forget, and no registration wider than the policy needs.
*/}}
{{- define "lb-probe-webhook.albBackends" -}}
{{- if and (eq .Values.policy.provider "aws") (dig "aws" "alb" false .Values.policy) }}true{{ end }}
{{- end }}
