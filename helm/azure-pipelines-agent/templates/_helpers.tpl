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

{{/*
An image reference: repository, then :tag (default appVersion), then @digest when pinned. Called
with (dict "root" $ "image" <image values>); without "image", the release's `image`.
*/}}
{{- define "azure-pipelines-agent.image" -}}
{{- $image := .image | default .root.Values.image }}
{{- $reference := printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- if $image.digest }}
{{- $reference = printf "%s@%s" $reference $image.digest }}
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

{{/* Name the default profile's placeholder agent registers under. */}}
{{- define "azure-pipelines-agent.placeholderName" -}}
{{- default (printf "%s-placeholder" (include "azure-pipelines-agent.fullname" .)) .Values.scaledJob.placeholderName }}
{{- end }}

{{/*
The agent profiles, each with its defaults filled in, as JSON `{"profiles": [...]}` (read it back
with fromJson). No `profiles` value means one profile named `default` built from the top-level
values. The profile named `default` keeps the release's own object names (`<fullname>` and
`<fullname>-placeholder`), so moving a release from no profiles to profiles keeps its StatefulSet,
ScaledJob and placeholder; every other profile's objects are `<fullname>-<profile>`.
A profile without demands is the catch-all of scaledJob mode: it takes jobs without demands.
*/}}
{{- define "azure-pipelines-agent.profiles" -}}
{{- $root := . }}
{{- $values := .Values }}
{{- $fullname := include "azure-pipelines-agent.fullname" . }}
{{- $defaultReplicas := eq $values.mode "persistent" | ternary $values.persistent.replicas $values.scaledJob.maxReplicaCount }}
{{- $profiles := list }}
{{- range $index, $profile := $values.profiles | default (list (dict "name" "default")) }}
{{- $isDefault := eq (toString $profile.name) "default" }}
{{- $objectName := $isDefault | ternary $fullname (printf "%s-%s" $fullname (toString $profile.name)) }}
{{- $placeholder := $isDefault | ternary (include "azure-pipelines-agent.placeholderName" $root) (printf "%s-placeholder" $objectName) }}
{{- $image := mergeOverwrite (deepCopy $values.image) ($profile.image | default dict) }}
{{- $profiles = append $profiles (dict
  "index" $index
  "name" (toString $profile.name)
  "objectName" $objectName
  "placeholderName" $placeholder
  "capabilities" ($profile.capabilities | default dict)
  "demands" ($profile.demands | default list)
  "resources" (hasKey $profile "resources" | ternary $profile.resources $values.resources)
  "maxReplicas" (hasKey $profile "maxReplicas" | ternary $profile.maxReplicas $defaultReplicas)
  "image" $image
  "nodeSelector" (hasKey $profile "nodeSelector" | ternary $profile.nodeSelector $values.nodeSelector)
  "tolerations" (hasKey $profile "tolerations" | ternary $profile.tolerations $values.tolerations)
  "catchAll" (empty $profile.demands)
) }}
{{- end }}
{{- toJson (dict "profiles" $profiles) }}
{{- end }}

{{/*
Labels that tell a profile's pods apart. The profile named `default` keeps the selector of a
release without profiles (selectors of StatefulSets are immutable), so its StatefulSet also
matches the other profiles' pods; it never adopts them, because each pod is owned by its own
StatefulSet. PodDisruptionBudgets select by the profile label, so no pod has two of them (the
eviction API refuses a pod that has).
*/}}
{{- define "azure-pipelines-agent.profileLabel" -}}
azure-pipelines-agent/profile: {{ .name }}
{{- end }}
{{- define "azure-pipelines-agent.agentSelectorLabels" -}}
{{ include "azure-pipelines-agent.selectorLabels" .root }}
app.kubernetes.io/component: agent
{{- if ne .profile.name "default" }}
{{ include "azure-pipelines-agent.profileLabel" .profile }}
{{- end }}
{{- end }}

{{/*
Environment variables pointing the usual package caches and the agent's tool cache into
caches.mountPath, when caches.volume is set.
*/}}
{{- define "azure-pipelines-agent.cacheEnv" -}}
{{- $path := .Values.caches.mountPath }}
- name: npm_config_cache
  value: {{ printf "%s/npm" $path | quote }}
- name: NUGET_PACKAGES
  value: {{ printf "%s/nuget/packages" $path | quote }}
- name: MAVEN_OPTS
  value: {{ printf "-Dmaven.repo.local=%s/maven/repository" $path | quote }}
- name: PIP_CACHE_DIR
  value: {{ printf "%s/pip" $path | quote }}
- name: GOMODCACHE
  value: {{ printf "%s/go/mod" $path | quote }}
- name: GOCACHE
  value: {{ printf "%s/go/build" $path | quote }}
# The agent's tool cache (Agent.ToolsDirectory), where the Use*Version and tool installer tasks keep tools.
- name: AGENT_TOOLSDIRECTORY
  value: {{ printf "%s/tools" $path | quote }}
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
The pod spec shared by the long-lived agents, the ScaledJob's one-job agents, the placeholder
hook and the cleanup CronJob. Called with
(dict "root" $ "agentMode" "persistent|ephemeral|placeholder|cleanup" "profile" <a profile>);
agentMode is the image's AZP_MODE, and cleanup takes no profile.

The root file system is read-only, but the agent writes its registration (.agent, .credentials,
_diag) into its own folder. An init container therefore copies the agent from the image into an
emptyDir that is then mounted over /azp/agent. Work, temp and home are emptyDirs too, except the
work folder of persistent agents, which lives on their volume claim (see statefulset.yaml).
Cleanup runs no agent: it needs neither the copy nor the work folder.
*/}}
{{- define "azure-pipelines-agent.podSpec" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
{{- $profile := .profile | default dict }}
{{- $auth := include "azure-pipelines-agent.authMethod" $root }}
{{- $caConfigMap := include "azure-pipelines-agent.caConfigMapName" $root }}
{{- $placeholder := eq .agentMode "placeholder" }}
{{- $cleanup := eq .agentMode "cleanup" }}
{{- $runsJobs := has .agentMode (list "persistent" "ephemeral") }}
{{- $image := include "azure-pipelines-agent.image" (dict "root" $root "image" $profile.image) }}
{{- $nodeSelector := $cleanup | ternary $values.nodeSelector $profile.nodeSelector }}
{{- $tolerations := $cleanup | ternary $values.tolerations $profile.tolerations -}}
serviceAccountName: {{ include "azure-pipelines-agent.serviceAccountName" $root }}
# Pipelines deploy with the pod's service account (PrivateAksDeploy connectionType=inCluster); the
# placeholder and the cleanup only talk to Azure DevOps, so they get no token.
automountServiceAccountToken: {{ $runsJobs }}
{{- if not $cleanup }}
terminationGracePeriodSeconds: {{ include "azure-pipelines-agent.gracePeriod" $root }}
{{- end }}
securityContext:
  {{- include "azure-pipelines-agent.podSecurityContext" $root | nindent 2 }}
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if not $cleanup }}
initContainers:
  - name: copy-agent
    image: {{ $image }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    command: [cp, -a, /azp/agent/., /writable-agent/]
    securityContext:
      {{- include "azure-pipelines-agent.containerSecurityContext" $root | nindent 6 }}
    resources:
      {{- toYaml $values.helperResources | nindent 6 }}
    volumeMounts:
      - name: agent
        mountPath: /writable-agent
{{- end }}
containers:
  - name: {{ $cleanup | ternary "cleanup" "agent" }}
    image: {{ $image }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    env:
      - name: AZP_URL
        value: {{ $values.azp.url | quote }}
      {{- with $values.azp.pool }}
      - name: AZP_POOL
        value: {{ . | quote }}
      {{- end }}
      - name: AZP_MODE
        value: {{ .agentMode }}
      {{- if $cleanup }}
      - name: AZP_CLEANUP_OFFLINE_MINUTES
        value: {{ $values.cleanup.offlineMinutes | quote }}
      {{- with include "azure-pipelines-agent.keptAgents" $root }}
      # Never removed, though offline by design: this release's placeholders, and cleanup.keepAgents.
      - name: AZP_PLACEHOLDER_AGENTS
        value: {{ . | quote }}
      {{- end }}
      {{- else }}
      - name: AZP_AGENT_NAME
      {{- if $placeholder }}
        value: {{ $profile.placeholderName | quote }}
      {{- else }}
        # The pod name: stable for StatefulSet agents (re-registration replaces the same agent),
        # unique for ScaledJob pods.
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      {{- end }}
      - name: AZP_DRAIN_TIMEOUT
        value: {{ $values.drainTimeoutSeconds | quote }}
      {{- if and (eq .agentMode "ephemeral") (gt (int $values.scaledJob.idleTimeoutSeconds) 0) }}
      # KEDA may start an agent for a job another agent took: it leaves after this long without one.
      - name: AZP_IDLE_TIMEOUT_SECONDS
        value: {{ $values.scaledJob.idleTimeoutSeconds | quote }}
      {{- end }}
      - name: AZP_WORK
        value: /azp/_work
      # helm and kubectl keep caches and config under HOME.
      - name: HOME
        value: /home/agent
      {{- end }}
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
      {{- if and $runsJobs $values.caches.volume }}
      {{- include "azure-pipelines-agent.cacheEnv" $root | nindent 6 }}
      {{- end }}
      {{- if and (not $cleanup) $values.builder.enabled }}
      # The builder's address: PrivateAcrBuildImage's default buildkitAddress (buildctl's own
      # variable). The placeholder reports it too, so its capabilities stay the agents'.
      - name: BUILDKIT_HOST
        value: {{ include "azure-pipelines-agent.builderAddress" $root | quote }}
      {{- end }}
      {{- if not $cleanup }}
      {{- with $profile.capabilities }}
      # The profile's capabilities: the agent reports its environment as capabilities, and the
      # placeholder carries the same ones, so Azure DevOps queues jobs that demand them.
      {{- range $name, $value := . }}
      - name: {{ $name | quote }}
        value: {{ toString $value | quote }}
      {{- end }}
      {{- end }}
      {{- with $values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      {{- end }}
    securityContext:
      {{- include "azure-pipelines-agent.containerSecurityContext" $root | nindent 6 }}
    resources:
      {{- toYaml ($cleanup | ternary $values.helperResources $profile.resources) | nindent 6 }}
    volumeMounts:
      {{- if not $cleanup }}
      - name: agent
        mountPath: /azp/agent
      - name: work
        mountPath: /azp/_work
      - name: home
        mountPath: /home/agent
      {{- end }}
      - name: tmp
        mountPath: /tmp
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
      {{- if and $runsJobs $values.caches.volume }}
      - name: caches
        mountPath: {{ $values.caches.mountPath }}
      {{- end }}
      {{- if and $runsJobs $values.builder.enabled }}
      - name: buildkit-client
        mountPath: {{ include "azure-pipelines-agent.builderClientMountPath" $root }}
        readOnly: true
      {{- end }}
      {{- if not $cleanup }}
      {{- with $values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      {{- end }}
volumes:
  {{- if not $cleanup }}
  - name: agent
    emptyDir: {}
  {{- /* Persistent agents keep theirs on the StatefulSet's volume claim of the same name. */}}
  {{- if not (and (eq .agentMode "persistent") $values.persistent.workVolumeClaim.enabled) }}
  - name: work
    emptyDir:
      {{- with $values.workVolume.medium }}
      medium: {{ . }}
      {{- end }}
      sizeLimit: {{ $values.workVolume.sizeLimit }}
  {{- end }}
  - name: home
    emptyDir: {}
  {{- end }}
  - name: tmp
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
  {{- if and $runsJobs $values.caches.volume }}
  - name: caches
    {{- toYaml $values.caches.volume | nindent 4 }}
  {{- end }}
  {{- if and $runsJobs $values.builder.enabled }}
  # The client certificate the builder trusts, where the build task looks for it.
  - name: buildkit-client
    secret:
      secretName: {{ include "azure-pipelines-agent.builderClientSecretName" $root }}
      # 0440 in decimal, read the same by every YAML parser: the agent's group may read it, nobody else.
      defaultMode: 288
      items:
        - key: ca.crt
          path: ca.crt
        - key: tls.crt
          path: tls.crt
        - key: tls.key
          path: tls.key
  {{- end }}
  {{- if not $cleanup }}
  {{- with $values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if not $cleanup }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod metadata shared by every agent pod: the release's labels, the profile's, the workload
identity opt-in, and safe-to-evict "false" so the cluster autoscaler never removes a node under a
running job. Called with (dict "root" $ "component" "agent|placeholder|cleanup" "profile" <a profile>).
*/}}
{{- define "azure-pipelines-agent.podMetadata" -}}
labels:
  {{- include "azure-pipelines-agent.selectorLabels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .profile }}
  {{- include "azure-pipelines-agent.profileLabel" . | nindent 2 }}
  {{- end }}
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

{{/* Agents cleanup never removes: the placeholders (scaledJob mode) and cleanup.keepAgents, comma-separated. */}}
{{- define "azure-pipelines-agent.keptAgents" -}}
{{- $names := list }}
{{- if eq .Values.mode "scaledJob" }}
{{- range (include "azure-pipelines-agent.profiles" . | fromJson).profiles }}
{{- $names = append $names .placeholderName }}
{{- end }}
{{- end }}
{{- join "," (concat $names .Values.cleanup.keepAgents) }}
{{- end }}

{{/*
The BuildKit builder (builder.*). Its objects live in a namespace of their own, named here, and
carry the release's selector labels with component `builder`: the agents' NetworkPolicy and pod
templates never select them, and theirs select only the builder.
*/}}
{{- define "azure-pipelines-agent.builderNamespace" -}}
{{- default (printf "%s-buildkit" .Release.Namespace) .Values.builder.namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "azure-pipelines-agent.builderName" -}}
{{- printf "%s-buildkit" (include "azure-pipelines-agent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "azure-pipelines-agent.builderSelectorLabels" -}}
{{ include "azure-pipelines-agent.selectorLabels" . }}
app.kubernetes.io/component: builder
{{- end }}

{{/* What the agents pass to buildctl: the builder Service's name in the cluster's DNS. */}}
{{- define "azure-pipelines-agent.builderAddress" -}}
{{- printf "tcp://%s.%s.svc:%d" (include "azure-pipelines-agent.builderName" .) (include "azure-pipelines-agent.builderNamespace" .) (int .Values.builder.port) }}
{{- end }}

{{/* The Secrets with the daemon's certificate (builder namespace) and the agents' (release namespace). */}}
{{- define "azure-pipelines-agent.builderServerSecretName" -}}
{{- default (printf "%s-server" (include "azure-pipelines-agent.builderName" .)) .Values.builder.tls.existingServerSecret }}
{{- end }}
{{- define "azure-pipelines-agent.builderClientSecretName" -}}
{{- default (printf "%s-client" (include "azure-pipelines-agent.builderName" .)) .Values.builder.tls.existingClientSecret }}
{{- end }}

{{/* Where agents find their BuildKit client certificate: PrivateAcrBuildImage's default buildkitCertificates. */}}
{{- define "azure-pipelines-agent.builderClientMountPath" -}}/azp/buildkit{{- end }}
