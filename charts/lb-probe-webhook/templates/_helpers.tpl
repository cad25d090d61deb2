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

{{/* lb-probe-webhook.webhookEnforcement is "true" when the webhook enforces the policy (enforcement: webhook), and empty otherwise. */}}
{{- define "lb-probe-webhook.webhookEnforcement" -}}
{{- if eq (.Values.enforcement | default "webhook") "webhook" }}true{{ end }}
{{- end }}

{{/*
lb-probe-webhook.admissionPolicyVersion is the admissionregistration.k8s.io version of
MutatingAdmissionPolicy the cluster serves: v1 (GA, Kubernetes 1.36+), else v1beta1 (1.34 and 1.35
with the feature gate and the beta API enabled). On a cluster that serves neither, the install fails
here, before anything is created. `helm template` knows no cluster: pass --api-versions.
*/}}
{{- define "lb-probe-webhook.admissionPolicyVersion" -}}
{{- if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" }}v1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" }}v1beta1
{{- else }}
{{- fail (printf "enforcement: admissionPolicy needs the MutatingAdmissionPolicy API, which this cluster (Kubernetes %s) does not serve: it is GA and on from Kubernetes 1.36; on 1.34 and 1.35 enable --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration.k8s.io/v1beta1=true; otherwise keep enforcement: webhook (with helm template, pass --api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy)" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}

{{/*
lb-probe-webhook.admissionPolicyChecks fails on the policy settings a MutatingAdmissionPolicy cannot
carry out exactly as the webhook does, with the message `lb-probe-webhook export admission-policy`
gives (src/admission-policy/settings.ts, customRefusals): more than 3 custom per-port templates of
one intent, and custom keys that may be filled into the same annotation.
*/}}
{{- define "lb-probe-webhook.admissionPolicyChecks" -}}
{{- $program := .Files.Get "files/admission-policy.yaml" | fromYaml }}
{{- if not (has .Values.policy.provider $program.providers) }}
{{- fail (printf "enforcement: admissionPolicy: policy provider: the admission policy program has no rules for provider %q yet; use enforcement: webhook" .Values.policy.provider) }}
{{- end }}
{{- range .Values.policy.profiles | default list }}
{{- if not (has . $program.profiles) }}
{{- fail (printf "enforcement: admissionPolicy: policy profiles: the admission policy program does not recognize profile %q yet; use enforcement: webhook" .) }}
{{- end }}
{{- end }}
{{- $custom := .Values.policy.custom | default dict }}
{{- if eq .Values.policy.provider "custom" }}
{{- range $intent := list "tcp" "readiness" "kube-proxy" }}
{{- $t := get $custom $intent | default dict }}
{{- $perPort := keys ($t.perPort | default dict) | sortAlpha }}
{{- $perService := keys ($t.perService | default dict) | sortAlpha }}
{{- if gt (len $perPort) 3 }}
{{- fail (printf "enforcement: admissionPolicy: policy custom.%s.perPort: %d templates, more than the 3 whose annotations for 4,096 ports fit in a CEL expression's cost budget; use enforcement: webhook for this policy" $intent (len $perPort)) }}
{{- end }}
{{- $all := concat $perPort $perService }}
{{- range $i, $a := $all }}
{{- range $j, $b := $all }}
{{- if lt $i $j }}
{{- $pa := regexFind "^[^{]*" $a }}{{ $pb := regexFind "^[^{]*" $b }}
{{- $sa := regexFind "[^}]*$" $a }}{{ $sb := regexFind "[^}]*$" $b }}
{{- if and (or (hasPrefix $pb $pa) (hasPrefix $pa $pb)) (or (hasSuffix $sb $sa) (hasSuffix $sa $sb)) }}
{{- fail (printf "enforcement: admissionPolicy: policy custom.%s: keys %q and %q may be filled into the same annotation, whose value the webhook takes from the last one written; give them a distinct beginning or end, or use enforcement: webhook" $intent $a $b) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
lb-probe-webhook.admissionPolicySettings are the policy's values as the CEL variables the program
reads, defaults filled in, each a CEL literal (Helm's toJson, which `export admission-policy` writes
byte for byte: src/admission-policy/settings.ts).
*/}}
{{- define "lb-probe-webhook.admissionPolicySettings" -}}
{{- $p := .Values.policy }}
{{- $program := .Files.Get "files/admission-policy.yaml" | fromYaml }}
{{- $readiness := $p.readiness | default dict }}
{{- $readinessPort := toString (hasKey $readiness "port" | ternary $readiness.port "status-port") }}
{{- $readinessPath := $readiness.path | default "/healthz/ready" }}
{{- $gateway := $p.gateway | default dict }}
{{- $all := $program.profiles }}
{{- $profiles := $all }}
{{- if kindIs "slice" $p.profiles }}
{{- $profiles = list }}
{{- range $all }}{{ if has . $p.profiles }}{{ $profiles = append $profiles . }}{{ end }}{{ end }}
{{- end }}
{{- $custom := dict }}
{{- range $intent := list "tcp" "readiness" "kube-proxy" }}
{{- $t := get ($p.custom | default dict) $intent | default dict }}
{{- $entries := dict }}
{{- range $part := list "perPort" "perService" }}
{{- $map := get $t $part | default dict }}
{{- $list := list }}
{{- range $k := keys $map | sortAlpha }}
{{- $list = append $list (list (splitList "{port}" $k) (splitList "{port}" (get $map $k))) }}
{{- end }}
{{- $_ := set $entries $part $list }}
{{- end }}
{{- $_ := set $custom $intent $entries }}
{{- end }}
{{- $rules := list }}
{{- range $r := $p.rules | default list }}
{{- $match := $r.match | default dict }}
{{- $namespaces := "null" }}
{{- if kindIs "slice" $match.namespaces }}
{{- $regexes := list }}
{{- range $match.namespaces }}{{ $regexes = append $regexes (printf "^%s$" (regexQuoteMeta . | replace "\\*" ".*" | replace "\\?" ".")) }}{{ end }}
{{- $namespaces = toJson $regexes }}
{{- end }}
{{- $ruleReadiness := "null" }}
{{- if kindIs "map" $r.readiness }}
{{- $ruleReadiness = toJson (dict "path" ($r.readiness.path | default $readinessPath) "port" (toString (hasKey $r.readiness "port" | ternary $r.readiness.port $readinessPort))) }}
{{- end }}
{{- $rules = append $rules (printf "{\"labels\":dyn(%s),\"namespaces\":dyn(%s),\"probe\":dyn(%s),\"readiness\":dyn(%s)}" (toJson ($match.labels | default dict)) $namespaces (hasKey $r "probe" | ternary (toJson $r.probe) "null") $ruleReadiness) }}
{{- end }}
{{- $vars := list
  (dict "name" "provider" "expression" (toJson $p.provider))
  (dict "name" "mode" "expression" (toJson ($p.mode | default "enforce")))
  (dict "name" "defaultProbe" "expression" (toJson ($p.probe | default "tcp")))
  (dict "name" "readiness" "expression" (toJson (dict "path" $readinessPath "port" $readinessPort)))
  (dict "name" "overwrite" "expression" (toJson ($p.overwrite | default false)))
  (dict "name" "annotationsTarget" "expression" (toJson ($gateway.annotationsTarget | default "auto")))
  (dict "name" "maxInfrastructureAnnotations" "expression" (toJson ($gateway.maxInfrastructureAnnotations | default 8)))
  (dict "name" "profiles" "expression" (toJson $profiles))
  (dict "name" "azureHideStatusPort" "expression" (toJson (dig "azure" "hideStatusPort" false $p)))
  (dict "name" "awsDefaultTargetType" "expression" (toJson (dig "aws" "defaultTargetType" "instance" $p)))
  (dict "name" "awsAlb" "expression" (toJson (dig "aws" "alb" false $p)))
  (dict "name" "custom" "expression" (toJson $custom))
  (dict "name" "rules" "expression" (printf "[%s]" (join "," $rules)))
}}
{{- toYaml $vars }}
{{- end }}
