{{/* Names and labels. */}}
{{- define "privet.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "privet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "privet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "privet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "privet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "privet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "privet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "privet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "privet.image" -}}
{{- $tag := .Values.image.tag | default (printf "%s-%s" .Chart.AppVersion .Values.image.variant) -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "privet.homeClaim" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-home" (include "privet.fullname" .)) -}}
{{- end -}}

{{/*
Environment shared by the gateway and the workers. Secrets are files (PRIVET_*_FILE, read
by the image's entrypoint) mounted from existing Secrets, never literal values.
*/}}
{{- define "privet.env" -}}
- name: PRIVET_HOME
  value: /var/lib/privet
- name: PRIVET_DATABASE_URL_FILE
  value: /run/secrets/privet/database/url
- name: PRIVET_POLICY_DIR
  value: /opt/privet/policies
- name: PRIVET_KEY_PROVIDER
  value: {{ .Values.keyProvider.type | quote }}
{{- if eq .Values.keyProvider.type "pkcs11" }}
- name: PRIVET_PKCS11_MODULE
  value: {{ required "keyProvider.pkcs11.module is required" .Values.keyProvider.pkcs11.module | quote }}
- name: PRIVET_PKCS11_TOKEN
  value: {{ required "keyProvider.pkcs11.token is required" .Values.keyProvider.pkcs11.token | quote }}
- name: PRIVET_PKCS11_KEY_LABEL
  value: {{ .Values.keyProvider.pkcs11.keyLabel | quote }}
- name: PRIVET_PKCS11_PIN_FILE
  value: /run/secrets/privet/hsm/pin
{{- end }}
- name: PRIVET_LEDGER_ORIGIN
  value: {{ .Values.ledger.origin | quote }}
- name: PRIVET_LEDGER_CHECKPOINT_EVERY
  value: {{ .Values.ledger.checkpointEvery | quote }}
- name: PRIVET_LEDGER_CHECKPOINT_INTERVAL_S
  value: {{ .Values.ledger.checkpointIntervalSeconds | quote }}
{{- if .Values.oidc.issuer }}
- name: PRIVET_OIDC_ISSUER
  value: {{ .Values.oidc.issuer | quote }}
- name: PRIVET_OIDC_AUDIENCE
  value: {{ required "oidc.audience is required with oidc.issuer" .Values.oidc.audience | quote }}
- name: PRIVET_OIDC_JWKS
  value: {{ required "oidc.jwks is required with oidc.issuer" .Values.oidc.jwks | quote }}
- name: PRIVET_OIDC_SUBJECT_CLAIM
  value: {{ .Values.oidc.subjectClaim | quote }}
- name: PRIVET_OIDC_ROLES_CLAIM
  value: {{ .Values.oidc.rolesClaim | quote }}
{{- end }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
- name: HF_HUB_OFFLINE
  value: "1"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes shared by the gateway and the workers. */}}
{{- define "privet.volumes" -}}
- name: home
  persistentVolumeClaim:
    claimName: {{ include "privet.homeClaim" . }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: database-url
  secret:
    secretName: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.database.urlKey }}
        path: url
{{- if eq .Values.keyProvider.type "pkcs11" }}
- name: hsm-pin
  secret:
    secretName: {{ required "keyProvider.pkcs11.pinSecret.name is required" .Values.keyProvider.pkcs11.pinSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.keyProvider.pkcs11.pinSecret.key }}
        path: pin
{{- end }}
{{- if .Values.policies.configMap }}
- name: policies
  configMap:
    name: {{ .Values.policies.configMap }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "privet.volumeMounts" -}}
- name: home
  mountPath: /var/lib/privet
- name: tmp
  mountPath: /tmp
- name: database-url
  mountPath: /run/secrets/privet/database
  readOnly: true
{{- if eq .Values.keyProvider.type "pkcs11" }}
- name: hsm-pin
  mountPath: /run/secrets/privet/hsm
  readOnly: true
{{- end }}
{{- if .Values.policies.configMap }}
- name: policies
  mountPath: /opt/privet/policies
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A worker's mounts: not the whole of PRIVET_HOME. An empty PRIVET_HOME of its own, the
claim's blobs (ciphertext only) and, with the local key provider, the master key directory
read-only: never the API-key pepper, the ledger signing key or the HMAC secrets, which the
worker does not need (privet.runtime.build_worker_runtime never opens them).
*/}}
{{- define "privet.workerVolumeMounts" -}}
- name: worker-home
  mountPath: /var/lib/privet
- name: home
  mountPath: /var/lib/privet/blobs
  subPath: blobs
{{- if eq .Values.keyProvider.type "local" }}
- name: home
  mountPath: /var/lib/privet/secrets/kek
  subPath: secrets/kek
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
- name: database-url
  mountPath: /run/secrets/privet/database
  readOnly: true
{{- if eq .Values.keyProvider.type "pkcs11" }}
- name: hsm-pin
  mountPath: /run/secrets/privet/hsm
  readOnly: true
{{- end }}
{{- if .Values.policies.configMap }}
- name: policies
  mountPath: /opt/privet/policies
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "privet.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "privet.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* Fail early on values that would break the deployment's promises. */}}
{{- define "privet.validate" -}}
{{- if not (has .Values.keyProvider.type (list "local" "pkcs11")) -}}
{{- fail "keyProvider.type must be local or pkcs11" -}}
{{- end -}}
{{- if not (has .Values.image.variant (list "cpu" "cuda")) -}}
{{- fail "image.variant must be cpu or cuda" -}}
{{- end -}}
{{- if and (gt (int .Values.worker.gpus) 0) (ne .Values.image.variant "cuda") -}}
{{- fail "worker.gpus needs image.variant: cuda" -}}
{{- end -}}
{{- if not .Values.containerSecurityContext.readOnlyRootFilesystem -}}
{{- fail "containerSecurityContext.readOnlyRootFilesystem must stay true" -}}
{{- end -}}
{{- if .Values.containerSecurityContext.allowPrivilegeEscalation -}}
{{- fail "containerSecurityContext.allowPrivilegeEscalation must stay false" -}}
{{- end -}}
{{- if not .Values.podSecurityContext.runAsNonRoot -}}
{{- fail "podSecurityContext.runAsNonRoot must stay true" -}}
{{- end -}}
{{- end -}}

{{/* Egress every privet pod needs: PostgreSQL, DNS, extraEgress. */}}
{{- define "privet.egressCommon" -}}
{{- $np := .Values.networkPolicy -}}
# PostgreSQL
- to:
    {{- if $np.postgres.cidr }}
    - ipBlock:
        cidr: {{ $np.postgres.cidr }}
    {{- else }}
    - podSelector:
        {{- toYaml $np.postgres.podSelector | nindent 8 }}
      {{- with $np.postgres.namespaceSelector }}
      namespaceSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ $np.postgres.port }}
{{- if $np.dns.enabled }}
# DNS
- to:
    - namespaceSelector:
        {{- toYaml $np.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml $np.dns.podSelector | nindent 8 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}
{{- with $np.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}
