{{/* Names and labels shared by every template. */}}

{{- define "heketi-provisioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already holds the chart name. */}}
{{- define "heketi-provisioner.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "heketi-provisioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The pod selector: stable across upgrades, so no version in it. */}}
{{- define "heketi-provisioner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "heketi-provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "heketi-provisioner.labels" -}}
helm.sh/chart: {{ include "heketi-provisioner.chart" . }}
app.kubernetes.io/name: {{ include "heketi-provisioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: heketi-provisioner
{{- end -}}

{{- define "heketi-provisioner.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "heketi-provisioner.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the Lease and the intent records live: --namespace, else the release's. */}}
{{- define "heketi-provisioner.ownNamespace" -}}
{{- default .Release.Namespace .Values.config.namespace -}}
{{- end -}}

{{/* The Secret holding the Heketi key: an existing one, the chart's, or none. */}}
{{- define "heketi-provisioner.heketiSecretName" -}}
{{- if .Values.heketi.existingSecret -}}
{{- .Values.heketi.existingSecret -}}
{{- else if .Values.heketi.key -}}
{{- printf "%s-heketi-key" (include "heketi-provisioner.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The port of config.metricsAddress (HOST:PORT, :PORT or [IPv6]:PORT). */}}
{{- define "heketi-provisioner.metricsPort" -}}
{{- $port := .Values.config.metricsAddress | toString | splitList ":" | last -}}
{{- if or (not (regexMatch "^[0-9]+$" $port)) (eq $port "0") -}}
{{- fail "config.metricsAddress must be HOST:PORT or :PORT: the probes and the metrics Service use it" -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/*
The controller's arguments, one per key of .Values.config: --<kebab-case key>=<value>;
a switch only when true; an empty value is left out (the controller's default).
But blockProvisionerName is always passed: empty (or null) turns block volumes off,
which leaving the flag out would not (the controller's default serves
gluster.org/glusterblock).
*/}}
{{- define "heketi-provisioner.args" -}}
- {{ printf "--block-provisioner-name=%s" (.Values.config.blockProvisionerName | default "" | toString) | quote }}
{{- range $key, $value := .Values.config }}
{{- $flag := printf "--%s" (kebabcase $key) }}
{{- if eq $key "blockProvisionerName" }}
{{- else if kindIs "bool" $value }}
{{- if $value }}
- {{ $flag | quote }}
{{- end }}
{{- else if not (eq (toString $value) "" "<nil>") }}
- {{ printf "%s=%v" $flag $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The parameters of one StorageClass (dict "class" . "root" $): its own, plus resturl,
restuser and the Secret from .Values.heketi where the class does not say otherwise.
Keys are compared ignoring case, as the controller does.
*/}}
{{- define "heketi-provisioner.classParameters" -}}
{{- $root := .root -}}
{{- $own := .class.parameters | default dict -}}
{{- $keys := dict -}}
{{- range $k, $v := $own }}{{ $_ := set $keys (lower $k) $v }}{{ end -}}
{{- $params := dict -}}
{{- range $k, $v := $own }}{{ $_ := set $params $k (toString $v) }}{{ end -}}
{{- if not (hasKey $keys "resturl") -}}
{{- $_ := set $params "resturl" $root.Values.heketi.url -}}
{{- end -}}
{{- $auth := eq (toString (get $keys "restauthenabled" | default "true")) "true" -}}
{{- if $auth -}}
{{- if and (not (hasKey $keys "restuser")) $root.Values.heketi.user -}}
{{- $_ := set $params "restuser" $root.Values.heketi.user -}}
{{- end -}}
{{- if not (or (hasKey $keys "secretname") (hasKey $keys "secretnamespace") (hasKey $keys "restuserkey")) -}}
{{- $secret := include "heketi-provisioner.heketiSecretName" $root -}}
{{- if not $secret -}}
{{- fail (printf "StorageClass %s: no Heketi key; set heketi.key or heketi.existingSecret (or the class's own secretName/secretNamespace)" .class.name) -}}
{{- end -}}
{{- $_ := set $params "secretNamespace" $root.Release.Namespace -}}
{{- $_ := set $params "secretName" $secret -}}
{{- end -}}
{{- end -}}
{{- toYaml $params -}}
{{- end -}}

{{/* Whether a class has a resturl, its own or heketi.url ("true" or ""). */}}
{{- define "heketi-provisioner.classHasURL" -}}
{{- $found := .root.Values.heketi.url -}}
{{- range $k, $v := (.class.parameters | default dict) }}
{{- if and (eq (lower $k) "resturl") $v }}{{ $found = $v }}{{ end }}
{{- end -}}
{{- if $found }}true{{ end -}}
{{- end -}}
