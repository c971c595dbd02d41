"""Every action of the platform, one per HTTP route, as declared in the Cedar schema.

Naming convention: ``<object>.<verb>`` or ``<object>.<part>.<verb>``, lower snake_case
words joined by dots. Collection routes (create, list) act on the parent object
(usually the Project); object routes act on the object. A test checks this list
against ``policies/schema.cedarschema`` so the two never drift apart.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """Cedar action ids; the gateway maps each route to exactly one."""

    PROJECT_CREATE = "project.create"
    PROJECT_LIST = "project.list"
    PROJECT_READ = "project.read"
    PROJECT_UPDATE = "project.update"
    MEMBER_LIST = "member.list"
    MEMBER_ADD = "member.add"
    MEMBER_REMOVE = "member.remove"
    PROJECT_INVITE = "project.invite"
    INVITATION_LIST = "invitation.list"
    INVITATION_REVOKE = "invitation.revoke"
    INVITATION_ACCEPT = "invitation.accept"
    API_KEY_CREATE = "api_key.create"
    API_KEY_LIST = "api_key.list"
    API_KEY_REVOKE = "api_key.revoke"
    IDENTITY_READ = "identity.read"
    MASTER_KEY_ROTATE = "master_key.rotate"
    MASTER_KEY_STATUS = "master_key.status"
    DATASET_UPLOAD = "dataset.upload"
    DATASET_LIST = "dataset.list"
    DATASET_READ = "dataset.read"
    DATASET_NEW_VERSION = "dataset.new_version"
    DATASET_ERASE_SUBJECTS = "dataset.erase_subjects"
    DATASET_EXPORT = "dataset.export"
    DATASET_SWEEP = "dataset.sweep"
    TRAINING_JOB_SUBMIT = "training_job.submit"
    TRAINING_JOB_LIST = "training_job.list"
    TRAINING_JOB_READ = "training_job.read"
    TRAINING_JOB_CANCEL = "training_job.cancel"
    MODEL_LIST = "model.list"
    MODEL_READ = "model.read"
    MODEL_VERSION_READ = "model_version.read"
    MODEL_VERSION_APPROVE = "model_version.approve"
    MODEL_VERSION_RETIRE = "model_version.retire"
    MODEL_VERSION_RESUME = "model_version.resume"
    MODEL_VERSION_RESOLVE_ERASURE_FLAGS = "model_version.resolve_erasure_flags"
    MODEL_VERSION_EXPORT_WEIGHTS = "model_version.export_weights"
    MODEL_VERSION_PREDICT = "model_version.predict"
    PREDICTION_EXPLAIN = "prediction.explain"
    PREDICTION_REVIEW = "prediction.review"
    PREDICTION_OUTCOME = "prediction.outcome"
    REVIEW_QUEUE_READ = "review_queue.read"
    MONITORING_READ = "monitoring.read"
    MONITORING_REFERENCE_BUILD = "monitoring.reference.build"
    DECISION_FINALIZE = "decision.finalize"
    AUDIT_CHECKPOINT_READ = "audit.checkpoint.read"
    AUDIT_EVENTS_READ = "audit.events.read"
    AUDIT_PROOFS_READ = "audit.proofs.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_VERIFY = "audit.verify"
    POLICY_READ = "policy.read"
    POLICY_RELOAD = "policy.reload"
    BASE_MODEL_REGISTER = "base_model.register"
    BASE_MODEL_LIST = "base_model.list"
    BASE_MODEL_READ = "base_model.read"
    BASE_MODEL_RETIRE = "base_model.retire"
    REPORT_ROPA_READ = "report.ropa.read"
    REPORT_MODEL_LINEAGE_READ = "report.model_lineage.read"
    REPORT_PRIVACY_BUDGET_READ = "report.privacy_budget.read"
    REPORT_ACCESS_LOG_READ = "report.access_log.read"
    REPORT_DSR_LOG_READ = "report.dsr_log.read"
    REPORT_MONITORING_READ = "report.monitoring.read"
    DSR_SUBMIT = "dsr.submit"
    DSR_LIST = "dsr.list"
    DSR_READ = "dsr.read"


REPORT_ACTIONS: dict[str, Action] = {
    "ropa": Action.REPORT_ROPA_READ,
    "model-lineage": Action.REPORT_MODEL_LINEAGE_READ,
    "privacy-budget": Action.REPORT_PRIVACY_BUDGET_READ,
    "access-log": Action.REPORT_ACCESS_LOG_READ,
    "dsr-log": Action.REPORT_DSR_LOG_READ,
    "monitoring": Action.REPORT_MONITORING_READ,
}
"""Report kind (as in ``GET /v1/reports/{kind}``) → the action that reads it."""

EXPORT_WEIGHTS_GRANT = Action.MODEL_VERSION_EXPORT_WEIGHTS.value
"""Grant name that unlocks weight export for a non-admin (see policies/grants.cedar)."""

ENTITY_TYPES_WITH_PROJECT = frozenset(
    {"Dataset", "DatasetVersion", "TrainingJob", "Model", "ModelVersion", "Prediction"}
)
"""Resource types whose schema requires a ``project`` attribute."""

ENTITY_TYPES_WITH_OPTIONAL_PROJECT = frozenset({"Principal", "Report"})
"""Resource types with an optional ``project`` attribute (set when a project is given)."""

PLATFORM_ID = "privet"
"""Id of the singleton ``Platform`` entity (project create/list, policies, DSRs, keys)."""

AUDIT_LOG_ID = "ledger"
"""Id of the singleton ``AuditLog`` entity."""
