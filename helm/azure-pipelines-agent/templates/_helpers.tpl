{{/*
Helpers of the azure-pipelines-agent chart. Every object name, label set and the agent pod spec
come from here, so the StatefulSet, the ScaledJob and the placeholder hook Job cannot drift apart.
*/}}

{{/* Chart name, overridable with nameOverride; 63 characters is the limit of a label value. */}}
{{- define "azure-pipelines-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. The release name alone when it already contains the chart
name, so `helm install azure-pipelines-agent .` doesn't yield a doubled name.
*/}}
{{- define "azure-pipelines-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "azure-pipelines-agent.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods; they never change across upgrades. */}}
{{- define "azure-pipelines-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "azure-pipelines-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "azure-pipelines-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "azure-pipelines-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "azure-pipelines-agent.serviceAccountName" -}}
{{- default (include "azure-pipelines-agent.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The agent image: repository, then :tag (default appVersion), then @digest when pinned. */}}
{{- define "azure-pipelines-agent.image" -}}
{{- $reference := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}
{{- $reference = printf "%s@%s" $reference .Values.image.digest }}
{{- end }}
{{- $reference }}
{{- end }}

{{/*
How the agents authenticate: `workloadIdentity`, `pat` or `servicePrincipal`, or nothing when
auth is not configured (templates/validate.yaml turns that into a message).
*/}}
{{- define "azure-pipelines-agent.authMethod" -}}
{{- if .Values.auth.workloadIdentity.clientId }}workloadIdentity
{{- else if or .Values.auth.existingSecret .Values.auth.createSecret }}{{ .Values.auth.secretType }}
{{- end }}
{{- end }}

{{/* The Secret holding the PAT or the service principal. */}}
{{- define "azure-pipelines-agent.authSecretName" -}}
{{- default (printf "%s-auth" (include "azure-pipelines-agent.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/*
Seconds the kubelet waits before SIGKILL. The image's start.sh needs drainTimeoutSeconds for the
running job, then retries deregistration within the same budget; the extra minute covers the
listener stopping and the last deregistration attempt (agent-image/README.md, "Drain semantics").
*/}}
{{- define "azure-pipelines-agent.deregistrationSeconds" -}}60{{- end }}

{{- define "azure-pipelines-agent.minimumGracePeriod" -}}
{{- add (int .Values.drainTimeoutSeconds) (include "azure-pipelines-agent.deregistrationSeconds" .) }}
{{- end }}

{{- define "azure-pipelines-agent.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- include "azure-pipelines-agent.minimumGracePeriod" . }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Name the placeholder (KEDA's parent agent) registers under. */}}
{{- define "azure-pipelines-agent.placeholderName" -}}
{{- default (printf "%s-placeholder" (include "azure-pipelines-agent.fullname" .)) .Values.scaledJob.placeholderName }}
{{- end }}

{{/*
The ScaledJob scaling strategy for the KEDA version in keda.version. KEDA 2.20 made the
azure-pipelines trigger count only jobs no agent has received yet (kedacore/keda#7747). Running
agent pods then serve work the metric no longer holds, so `default` (queue minus running pods)
starts too few pods; `accurate` (queue minus pods not yet running) starts one per waiting job.
Before 2.20 the metric included running jobs, and `default` is the strategy that subtracts them.
*/}}
{{- define "azure-pipelines-agent.scalingStrategy" -}}
{{- if semverCompare ">=2.20.0-0" .Values.keda.version }}accurate{{ else }}default{{ end }}
{{- end }}

{{/* Client and tenant ID KEDA's operator uses for the queue, when it uses workload identity. */}}
{{- define "azure-pipelines-agent.kedaIdentityClientId" -}}
{{- default .Values.auth.workloadIdentity.clientId .Values.keda.workloadIdentity.clientId }}
{{- end }}
{{- define "azure-pipelines-agent.kedaIdentityTenantId" -}}
{{- default .Values.auth.workloadIdentity.tenantId .Values.keda.workloadIdentity.tenantId }}
{{- end }}

{{/* The CA bundle's ConfigMap, when there is one. */}}
{{- define "azure-pipelines-agent.caConfigMapName" -}}
{{- if .Values.caBundle.existingConfigMap }}{{ .Values.caBundle.existingConfigMap }}
{{- else if .Values.caBundle.pem }}{{ include "azure-pipelines-agent.fullname" . }}-ca
{{- end }}
{{- end }}

{{/* Pod-level security context meeting Pod Security `restricted`. */}}
{{- define "azure-pipelines-agent.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
# Secret and emptyDir volumes become group-readable/writable for this group.
fsGroup: {{ .Values.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context meeting Pod Security `restricted`, with a read-only root. */}}
{{- define "azure-pipelines-agent.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/*
The pod spec shared by the long-lived agents, the ScaledJob's one-job agents and the placeholder
hook. Called with (dict "root" $ "agentMode" "persistent|ephemeral|placeholder"); agentMode is the
image's AZP_MODE.

The root file system is read-only, but the agent writes its registration (.agent, .credentials,
_diag) into its own folder. An init container therefore copies the agent from the image into an
emptyDir that is then mounted over /azp/agent. Work, temp and home are emptyDirs too.
*/}}
{{- define "azure-pipelines-agent.podSpec" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $auth := include "azure-pipelines-agent.authMethod" $root }}
{{- $caConfigMap := include "azure-pipelines-agent.caConfigMapName" $root }}
{{- $placeholder := eq .agentMode "placeholder" -}}
serviceAccountName: {{ include "azure-pipelines-agent.serviceAccountName" $root }}
# Pipelines deploy with the pod's service account (PrivateAksDeploy connectionType=inCluster); the
# placeholder only registers, so it gets no token.
automountServiceAccountToken: {{ not $placeholder }}
terminationGracePeriodSeconds: {{ include "azure-pipelines-agent.gracePeriod" $root }}
securityContext:
  {{- include "azure-pipelines-agent.podSecurityContext" $root | nindent 2 }}
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
initContainers:
  - name: copy-agent
    image: {{ include "azure-pipelines-agent.image" $root }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    command: [cp, -a, /azp/agent/., /writable-agent/]
    securityContext:
      {{- include "azure-pipelines-agent.containerSecurityContext" $root | nindent 6 }}
    resources:
      {{- toYaml $values.helperResources | nindent 6 }}
    volumeMounts:
      - name: agent
        mountPath: /writable-agent
containers:
  - name: agent
    image: {{ include "azure-pipelines-agent.image" $root }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    env:
      - name: AZP_URL
        value: {{ $values.azp.url | quote }}
      {{- with $values.azp.pool }}
      - name: AZP_POOL
        value: {{ . | quote }}
      {{- end }}
      - name: AZP_AGENT_NAME
      {{- if $placeholder }}
        value: {{ include "azure-pipelines-agent.placeholderName" $root | quote }}
      {{- else }}
        # The pod name: stable for StatefulSet agents (re-registration replaces the same agent),
        # unique for ScaledJob pods.
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      {{- end }}
      - name: AZP_MODE
        value: {{ .agentMode }}
      - name: AZP_DRAIN_TIMEOUT
        value: {{ $values.drainTimeoutSeconds | quote }}
      - name: AZP_WORK
        value: /azp/_work
      # helm and kubectl keep caches and config under HOME.
      - name: HOME
        value: /home/agent
      {{- if eq $auth "workloadIdentity" }}
      # AKS' workload identity webhook injects AZURE_CLIENT_ID, AZURE_TENANT_ID and the token file.
      - name: AZP_AUTH
        value: workload-identity
      {{- else if eq $auth "servicePrincipal" }}
      - name: AZP_AUTH
        value: sp
      # Identifiers, not secrets; only clientSecret is read from a file.
      - name: AZP_CLIENT_ID
        valueFrom:
          secretKeyRef:
            name: {{ include "azure-pipelines-agent.authSecretName" $root }}
            key: clientId
      - name: AZP_TENANT_ID
        valueFrom:
          secretKeyRef:
            name: {{ include "azure-pipelines-agent.authSecretName" $root }}
            key: tenantId
      - name: AZP_CLIENT_SECRET_FILE
        value: /azp/secrets/clientSecret
      {{- else }}
      - name: AZP_AUTH
        value: pat
      - name: AZP_TOKEN_FILE
        value: /azp/secrets/pat
      {{- end }}
      {{- if $caConfigMap }}
      - name: AZP_CA_CERT_FILE
        value: /azp/ca/{{ $values.caBundle.key }}
      {{- end }}
      {{- with $values.proxy.url }}
      - name: AZP_PROXY_URL
        value: {{ . | quote }}
      {{- end }}
      {{- with $values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    securityContext:
      {{- include "azure-pipelines-agent.containerSecurityContext" $root | nindent 6 }}
    resources:
      {{- toYaml $values.resources | nindent 6 }}
    volumeMounts:
      - name: agent
        mountPath: /azp/agent
      - name: work
        mountPath: /azp/_work
      - name: tmp
        mountPath: /tmp
      - name: home
        mountPath: /home/agent
      {{- if ne $auth "workloadIdentity" }}
      - name: auth
        mountPath: /azp/secrets
        readOnly: true
      {{- end }}
      {{- if $caConfigMap }}
      - name: ca
        mountPath: /azp/ca
        readOnly: true
      {{- end }}
      {{- with $values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: agent
    emptyDir: {}
  - name: work
    emptyDir:
      {{- with $values.workVolume.medium }}
      medium: {{ . }}
      {{- end }}
      sizeLimit: {{ $values.workVolume.sizeLimit }}
  - name: tmp
    emptyDir: {}
  - name: home
    emptyDir: {}
  {{- if ne $auth "workloadIdentity" }}
  - name: auth
    secret:
      secretName: {{ include "azure-pipelines-agent.authSecretName" $root }}
      # Owner root, group fsGroup: readable by the agent's group, nobody else.
      defaultMode: 0440
      items:
        {{- if eq $auth "servicePrincipal" }}
        - key: clientSecret
          path: clientSecret
        {{- else }}
        - key: pat
          path: pat
        {{- end }}
  {{- end }}
  {{- if $caConfigMap }}
  - name: ca
    configMap:
      name: {{ $caConfigMap }}
  {{- end }}
  {{- with $values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Pod metadata shared by every agent pod: the release's labels, the workload identity opt-in, and
safe-to-evict "false" so the cluster autoscaler never removes a node under a running job.
Called with (dict "root" $ "component" "agent|placeholder").
*/}}
{{- define "azure-pipelines-agent.podMetadata" -}}
labels:
  {{- include "azure-pipelines-agent.selectorLabels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- if eq (include "azure-pipelines-agent.authMethod" .root) "workloadIdentity" }}
  azure.workload.identity/use: "true"
  {{- end }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  cluster-autoscaler.kubernetes.io/safe-to-evict: "false"
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
