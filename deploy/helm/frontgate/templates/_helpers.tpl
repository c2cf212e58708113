{{/* The chart name, or nameOverride. */}}
{{- define "frontgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object: the release name, prefixed with the chart name unless it already contains it. */}}
{{- define "frontgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select frontgate's pods. */}}
{{- define "frontgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "frontgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "frontgate.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ printf "%s-%s" $ctx.Chart.Name $ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "frontgate.selectorLabels" $ctx }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- end }}

{{- define "frontgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "frontgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "frontgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "frontgate.servingSecretName" -}}
{{- default (printf "%s-serving" (include "frontgate.fullname" .)) .Values.tls.servingSecretName }}
{{- end }}

{{- define "frontgate.proxyClientSecretName" -}}
{{- default (printf "%s-proxy-client" (include "frontgate.fullname" .)) .Values.tls.proxyClientSecretName }}
{{- end }}

{{/* The job label Prometheus gives frontgate's metrics: the metrics Service's name. */}}
{{- define "frontgate.metricsJob" -}}
{{- printf "%s-metrics" (include "frontgate.fullname" .) }}
{{- end }}

{{/* The --config file: config plus the settings the chart owns. */}}
{{- define "frontgate.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config "listen" (printf ":%d" (int .Values.ports.https)) }}
{{- $_ := set $config "metrics-listen" (printf ":%d" (int .Values.ports.metrics)) }}
{{- $_ := set $config "tls-cert-file" "/etc/frontgate/serving/tls.crt" }}
{{- $_ := set $config "tls-private-key-file" "/etc/frontgate/serving/tls.key" }}
{{- $_ := set $config "proxy-client-cert-file" "/etc/frontgate/proxy-client/tls.crt" }}
{{- $_ := set $config "proxy-client-key-file" "/etc/frontgate/proxy-client/tls.key" }}
{{- if .Values.upstreamCA.configMapName }}
{{- $_ := set $config "upstream-ca-file" (printf "/etc/frontgate/upstream-ca/%s" .Values.upstreamCA.key) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
