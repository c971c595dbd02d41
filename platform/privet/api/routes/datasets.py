"""Datasets: streaming upload, versions, erasure by data subject, retention sweep.

Uploads are plain (sync) handlers that pull the request body chunk by chunk from the event
loop, so parsing, hashing and encryption run off the loop with bounded memory and the body
is never spooled to disk by the framework. No database transaction is open while the
body streams: the caller is admitted (project lookup + a recorded decision with the
declared facts) in a short transaction first, and the version is registered in the
request's transaction after a second recorded decision that includes the PII scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.requests import ClientDisconnect

from privet.api.deps import (
    Explanation,
    Guard,
    IdentityDep,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    project_resource,
    row_resource,
    streams_request_body,
    writes_on_safe_method,
)
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.compliance import remedies
from privet.datasets import catalog, erasure, pii, registration, retention, rows
from privet.datasets.schemas import (
    DatasetDetail,
    DatasetPublic,
    DatasetVersionPublic,
    EraseSubjectsRequest,
    ErasureResult,
    SweepResult,
    UploadResult,
)
from privet.datasets.tables import Dataset, DatasetVersion
from privet.datasets.upload import DRAIN_ON, Opener, StagedVersion, Upload, open_upload
from privet.db import read_session, session_scope
from privet.kit.errors import ForbiddenError, InvalidInputError
from privet.policy.request import upload_context
from privet.runtime import Runtime

router = APIRouter(
    route_class=OneHopRoute, prefix="/v1/projects/{project_id}/datasets", tags=["datasets"]
)


def dataset_resource(dataset: Dataset) -> Resource:
    return row_resource("Dataset", dataset)


def version_resource(version: DatasetVersion) -> Resource:
    return row_resource("DatasetVersion", version)


BODY_BATCH = 1 << 20


def _body(request: Request) -> Iterator[bytes]:
    """The request body, pulled from the event loop by this worker thread in batches of up
    to 1 MiB (one thread hop per batch rather than per socket read)."""
    stream = request.stream()

    async def pull() -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size = 0
        while size < BODY_BATCH:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return b"".join(parts), True
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts), False

    while True:
        data, done = anyio.from_thread.run(pull)
        if data:
            yield data
        if done:
            return


def _admit(
    *,
    runtime: Runtime,
    guard: Guard,
    identity: Identity,
    project_id: str,
    dataset_id: str | None,
    context: dict[str, Any],
) -> None:
    """Decide before reading the file, in a short transaction of its own (recorded)."""
    denied: ForbiddenError | None = None
    with session_scope(runtime.engine) as short:
        auth_service.get_project(short, project_id=project_id, viewer=identity)
        if dataset_id is None:
            resource = project_resource(project_id)
        else:
            resource = dataset_resource(
                catalog.get_dataset(short, project_id=project_id, dataset_id=dataset_id)
            )
        admission = Guard(
            action=guard.action,
            identity=identity,
            runtime=runtime,
            session=short,
            recorded=[],
        )
        try:
            admission.check(resource, context)
        except ForbiddenError as exc:
            denied = exc
    if denied is not None:
        raise denied


@dataclass(frozen=True)
class UploadCall:
    """What both upload routes take besides the path and their action: one dependency, so
    the two route signatures do not repeat it."""

    request: Request
    session: Session
    identity: Identity
    runtime: Runtime


def _upload_call(
    request: Request, session: SessionDep, identity: IdentityDep, runtime: RuntimeDep
) -> UploadCall:
    return UploadCall(request=request, session=session, identity=identity, runtime=runtime)


UploadCallDep = Annotated[UploadCall, Depends(_upload_call)]


def stream_upload(
    call: UploadCall,
    guard: Guard,
    *,
    project_id: str,
    dataset_id: str | None,
    opener: Opener = open_upload,
) -> UploadResult:
    """Admit, stage and register an upload (`opener` reads the declarations: the API's JSON
    part, or the console's form fields), leaving nothing behind on any failure."""
    request, session, identity, runtime = call.request, call.session, call.identity, call.runtime
    upload: Upload | None = None
    staged: StagedVersion | None = None
    try:
        upload = opener(body=_body(request), content_type=request.headers.get("content-type"))
        declared = upload.declarations.contains_personal_data
        _admit(
            runtime=runtime,
            guard=guard,
            identity=identity,
            project_id=project_id,
            dataset_id=dataset_id,
            context=upload_context(contains_personal_data=declared, pii_suspected=False),
        )
        staged = upload.stage(
            provider=runtime.key_provider,
            store=runtime.blobs,
            settings=runtime.settings,
            project_id=project_id,
        )
        auth_service.get_project(session, project_id=project_id, viewer=identity)
        dataset = (
            catalog.get_dataset(session, project_id=project_id, dataset_id=dataset_id)
            if dataset_id is not None
            else None
        )
        guard.check(
            dataset_resource(dataset) if dataset is not None else project_resource(project_id),
            upload_context(contains_personal_data=declared, pii_suspected=staged.pii_suspected),
            explain={
                pii.POLICY_ID: Explanation(
                    pii.describe(staged.pii_scan),
                    {"pii_findings": pii.findings(staged.pii_scan)},
                )
            },
        )
        version = registration.register_version(
            session,
            staged=staged,
            project_id=project_id,
            actor=identity.principal_id,
            dataset=dataset,
            name=upload.name,
            description=upload.declarations.description,
        )
        session.flush()
        name = dataset.name if dataset is not None else (upload.name or "")
        return registration.upload_result(version, dataset_name=name, warnings=staged.warnings)
    except ClientDisconnect:
        if staged is not None:
            staged.discard(runtime.blobs)
        raise InvalidInputError("the client disconnected before the upload finished") from None
    except BaseException as exc:
        if staged is not None:
            staged.discard(runtime.blobs)
        if upload is not None and isinstance(exc, DRAIN_ON):
            upload.drain()
        raise


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadResult)
@streams_request_body
def upload_dataset(
    project_id: str, call: UploadCallDep, guard: Annotated[Guard, action("dataset.upload")]
) -> UploadResult:
    """Register a new dataset: multipart/form-data with a `declarations` JSON part first,
    then the `file` part (CSV, TSV, JSON Lines or Parquet)."""
    return stream_upload(call, guard, project_id=project_id, dataset_id=None)


@router.post(
    "/{dataset_id}/versions", status_code=status.HTTP_201_CREATED, response_model=UploadResult
)
@streams_request_body
def upload_version(
    project_id: str,
    dataset_id: str,
    call: UploadCallDep,
    guard: Annotated[Guard, action("dataset.new_version")],
) -> UploadResult:
    """Upload a new immutable version of a dataset (same multipart form as an upload)."""
    return stream_upload(call, guard, project_id=project_id, dataset_id=dataset_id)


@router.get("", response_model=list[DatasetPublic])
def list_datasets(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("dataset.list")],
) -> list[DatasetPublic]:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    return [
        DatasetPublic.model_validate(d)
        for d in catalog.list_datasets(session, project_id=project.id)
    ]


@router.get("/{dataset_id}", response_model=DatasetDetail)
def get_dataset(
    project_id: str,
    dataset_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("dataset.read")],
) -> DatasetDetail:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    dataset = catalog.get_dataset(session, project_id=project.id, dataset_id=dataset_id)
    guard.check(dataset_resource(dataset))
    versions = [
        DatasetVersionPublic.model_validate(v)
        for v in catalog.list_versions(session, dataset_id=dataset.id)
    ]
    return DatasetDetail.model_validate({**dataset.model_dump(), "versions": versions})


@router.get("/{dataset_id}/versions/{version}", response_model=DatasetVersionPublic)
def get_version(
    project_id: str,
    dataset_id: str,
    version: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("dataset.read")],
) -> DatasetVersionPublic:
    """A version by id or number: metadata and statistics only."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    dataset = catalog.get_dataset(session, project_id=project.id, dataset_id=dataset_id)
    row = catalog.get_version(session, dataset=dataset, version=version)
    guard.check(version_resource(row))
    return DatasetVersionPublic.model_validate(row)


@router.get("/{dataset_id}/versions/{version}/export", response_class=StreamingResponse)
@writes_on_safe_method  # the export's ledger event commits before the first byte
def export_version(
    project_id: str,
    dataset_id: str,
    version: str,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("dataset.export")],
) -> StreamingResponse:
    """The version's raw rows as JSON Lines: the only way rows leave the platform. The
    export is a ledger event (digest and row count), committed before the first byte."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    dataset = catalog.get_dataset(session, project_id=project.id, dataset_id=dataset_id)
    row = catalog.get_version(session, dataset=dataset, version=version)
    guard.check(version_resource(row))
    rows.record_export(session, version=row, actor=identity.principal_id)
    session.commit()

    def lines() -> Iterator[bytes]:
        with read_session(runtime.engine) as reader:
            current = catalog.get_version_by_id(reader, version_id=row.id)
            yield from rows.export_lines(
                reader, provider=runtime.key_provider, store=runtime.blobs, version=current
            )

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{row.id}.jsonl"'},
    )


@router.post("/{dataset_id}:erase-subjects", response_model=ErasureResult)
def erase_subjects(
    project_id: str,
    dataset_id: str,
    body: EraseSubjectsRequest,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("dataset.erase_subjects")],
) -> ErasureResult:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    dataset = catalog.get_dataset(session, project_id=project.id, dataset_id=dataset_id)
    guard.check(dataset_resource(dataset))
    result = erasure.erase_subjects(
        session,
        provider=runtime.key_provider,
        store=runtime.blobs,
        settings=runtime.settings,
        dataset=dataset,
        subject_ids=body.subject_ids,
        actor=identity.principal_id,
    )
    # Model versions trained on the shredded versions cannot be approved until remedied.
    remedies.flag_after_erasure(session, affected=result.affected, actor=identity.principal_id)
    return result


@router.post(":sweep", response_model=SweepResult)
def sweep(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("dataset.sweep")],
) -> SweepResult:
    """Shred this project's dataset versions that are past their retention period."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    return retention.sweep_retention(
        session, store=runtime.blobs, actor=identity.principal_id, project_id=project.id
    )
