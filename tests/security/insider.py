"""The insider state machine: random sequences of *allowed-looking* requests by people who
already have accounts, over the real API (in-process ASGI app on SQLite), with the four
insider invariants checked after every step against the server's real state.

Principals (seeded by the operator, i.e. this harness): the platform admin; two project
admins (humans) of projects A and B; a data steward, an approver and an auditor (humans) in
A; a predictor (a service account of A whose key A's admin minted); plus every principal and
key the run itself creates. Each request is sent with one of the principals' *actual* keys,
including keys minted during the run.

Invariants (docs/SECURITY.md, "Insider invariants"):

1. no principal holds a capability (role binding, API key) that no holder of it granted;
2. for every approved model version, approver and submitter have different accountable
   humans, and the approver is no service account;
3. spent (charged + reserved) ε per dataset, over all its versions, ≤ its declared total;
4. no response carries ids of a project the caller has no role in, or platform data (data-
   subject requests) to a caller without a platform role.

The machine keeps its own model of who granted what with which key (the server does not
record which *key* minted a key) and compares it with the database after every step.
Routes of the planned API (invitations) are exercised only when the app has them.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import text

from tests.conftest import mint_key, seed_principal
from tests.datasets.conftest import WORDS, declarations

ROLES = ("admin", "data_steward", "ml_engineer", "approver", "auditor", "predictor")
REPORT_KINDS = ("ropa", "model-lineage", "privacy-budget", "access-log", "dsr-log", "monitoring")
EPSILON_TOTAL = 4.0
JOB_EPSILONS = (1.0, 2.0, 3.0)
TINY = "tiny-test"
#: (table, owner column) of every object whose id must not reach outsiders; None: platform
OWNED_TABLES = (
    ("projects", "id"),
    ("datasets", "project_id"),
    ("dataset_versions", "project_id"),
    ("training_jobs", "project_id"),
    ("models", "project_id"),
    ("model_versions", "project_id"),
    ("data_subject_requests", None),
)
PLATFORM = "<platform>"
INVARIANTS = ("capabilities", "four-eyes", "budgets", "tenancy")


@dataclass(frozen=True)
class Env:
    """What every example needs from the session: a migrated SQLite file to copy and the
    catalog file naming the tiny BERT."""

    sqlite_template: Path
    tiny_catalog: Path
    max_trainings: int = 1
    #: the invariants that fail the run (the others are still computed); one at a time
    #: gives each its own shrunk counterexample (Hypothesis stops looking soon after a bug)
    checked: frozenset[str] = frozenset(INVARIANTS)


@dataclass
class Key:
    label: str
    id: str
    secret: str
    owner: str
    scope: str | None
    expires_at: datetime
    #: why it exists: "seed", or a Grant
    origin: Any = "seed"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@dataclass(frozen=True)
class Grant:
    """A capability handed out through the API: by which key, and what that key could do at
    that moment (its owner's roles within its scope, and its own scope and expiry)."""

    via: str  # label of the key used
    owner: str
    scope: str | None
    expires_at: datetime
    roles: frozenset[tuple[str, str | None]]  # effective (role, project | None) at grant time
    how: str  # "member.add", "api_key.create", "invitation"


@dataclass
class Principal:
    id: str
    label: str
    kind: str  # user | service_account
    creator: str | None = None  # the principal whose key created it (service accounts)
    home: str | None = None  # project a service account was created in


@dataclass
class Dataset:
    id: str
    project: str
    declared_total: float
    subjects: list[str]
    versions: list[str] = field(default_factory=list)


def _note(line: str) -> None:
    """Part of a failing example's printout (and nothing outside Hypothesis)."""
    if currently_in_test_context():
        note(line)


def _at_least(held: str, granted: str) -> bool:
    return held == "admin" or held == granted


def _holds(roles: frozenset[tuple[str, str | None]], role: str, project: str | None) -> bool:
    """Whether effective roles include `role` (or a higher one) in `project`."""
    return any(_at_least(r, role) and (p is None or p == project) for r, p in roles)


def _rows(n: int, seed: int) -> tuple[bytes, list[str]]:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("text", "label", "customer"))
    subjects = [f"cust-{seed:03d}-{i:03d}" for i in range(n)]
    for i, subject in enumerate(subjects):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7)))
        writer.writerow((words, ("0", "1")[i % 2], subject))
    return out.getvalue().encode(), subjects


def _declarations(name: str, total: float) -> dict[str, Any]:
    return declarations(name=name, privacy_budget={"epsilon_total": total, "delta": 1e-5})


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return _parse_time(str(value))


class InsiderMachine(RuleBasedStateMachine):
    """Set `env` on a subclass (see `machine_for`) before running."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        from fastapi.testclient import TestClient

        from privet.api.app import create_app
        from privet.config import Settings
        from privet.jobs.settings import JobSettings
        from privet.runtime import build_runtime

        self.tmp = Path(tempfile.mkdtemp(prefix="privet-insider-"))
        shutil.copyfile(self.env.sqlite_template, self.tmp / "privet.db")
        settings = Settings(home=self.tmp / "home", database_url=f"sqlite:///{self.tmp}/privet.db")
        self.runtime = build_runtime(settings)
        self.app = create_app(runtime=self.runtime)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.client.__enter__()
        self.job_settings = JobSettings(
            heartbeat_interval_s=0.5,
            heartbeat_timeout_s=60,
            poll_interval_s=0.1,
            secure_noise=False,
            extra_catalog=self.env.tiny_catalog,
        )
        paths = {getattr(r, "path", "") for r in self.app.routes}
        self.has_invitations = "/v1/projects/{project_id}/invitations" in paths
        self.principals: dict[str, Principal] = {}
        self.keys: dict[str, Key] = {}  # label → key (the machine's copies of real secrets)
        self.bindings: dict[str, Any] = {}  # binding id → "seed" | Grant
        self.invitations: dict[str, tuple[str, Grant, str, str]] = {}  # token → (id, …)
        self.projects: dict[str, str] = {}  # "A"/"B" → id
        self.datasets: dict[str, Dataset] = {}
        self.trainings = 0
        self.leaks: list[str] = []
        self.counter = 0
        self.checks = 0  # steps after which the invariants ran

    def teardown(self) -> None:
        from privet.db import dispose_engines

        try:
            self.client.__exit__(None, None, None)
        finally:
            dispose_engines()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- plumbing ------------------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _db(self, sql: str, **params: Any) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def _effective_roles(self, key: Key) -> frozenset[tuple[str, str | None]]:
        """What a key may do now: its owner's bindings (from the database) within its scope."""
        rows = self._db(
            "SELECT role, project_id FROM role_bindings WHERE principal_id = :p", p=key.owner
        )
        roles = frozenset((r.role, r.project_id) for r in rows)
        if key.scope is None:
            return roles
        return frozenset((r, key.scope) for r, p in roles if p is None or p == key.scope)

    def _grant(self, key: Key, how: str) -> Grant:
        return Grant(
            via=key.label,
            owner=key.owner,
            scope=key.scope,
            expires_at=key.expires_at,
            roles=self._effective_roles(key),
            how=how,
        )

    def _registry(self) -> dict[str, str]:
        """Every object id the server holds → its project (or the platform), in the order
        they were made (not by id: ids are random, and choices must not depend on them, or
        Hypothesis could not replay a sequence)."""
        owned: dict[str, str] = {}
        for table, owner in OWNED_TABLES:
            column = owner or "id"
            for row in self._db(f"SELECT id, {column} AS owner FROM {table} ORDER BY rowid"):
                owned[str(row.id)] = str(row.owner) if owner else PLATFORM
        return owned

    def call(self, key: Key, method: str, path: str, **kwargs: Any) -> Any:
        """One request with a real key; its response is checked for invariant 4."""
        response = self.client.request(method, path, headers=key.headers, **kwargs)
        sent = {k: v for k, v in kwargs.items() if k in ("json", "params")}
        _note(self._pretty(f"{key.label}: {method} {path} {sent or ''} → {response.status_code}"))
        self._scan(key, method, path, kwargs, response)
        return response

    def _scan(
        self, key: Key, method: str, path: str, kwargs: dict[str, Any], response: Any
    ) -> None:
        roles = self._effective_roles(key)
        if any(p is None for _r, p in roles):  # a platform role (unscoped key) sees everything
            return
        visible = {p for _r, p in roles}
        asked = path + json.dumps(kwargs.get("json"), default=str) + str(kwargs.get("params"))
        body = response.text
        for object_id, owner in self._registry().items():
            if owner in visible or object_id in asked or object_id not in body:
                continue
            where = "the platform's" if owner == PLATFORM else f"project {self._name(owner)}'s"
            self.leaks.append(
                f"{key.label} ({self._roles_text(roles)}) got {where} id {object_id} "
                f"from {method} {path} {kwargs.get('params') or ''} → {response.status_code}"
            )

    def _pretty(self, line: str) -> str:
        """Ids replaced by the names this machine gave them, so a failing sequence reads."""
        for name, pid in self.projects.items():
            line = line.replace(pid, f"<{name}>")
        for p in self.principals.values():
            line = line.replace(p.id, f"<{p.label}>")
        for k in self.keys.values():
            line = line.replace(k.id, f"<key {k.label}>")
        return line

    def _name(self, project_id: str | None) -> str:
        for name, pid in self.projects.items():
            if pid == project_id:
                return name
        return str(project_id)

    def _roles_text(self, roles: frozenset[tuple[str, str | None]]) -> str:
        return ", ".join(sorted(f"{r}@{self._name(p) if p else 'platform'}" for r, p in roles))

    def _add_principal(self, principal: Principal) -> None:
        self.principals[principal.id] = principal

    def _add_key(self, label: str, created: dict[str, Any], origin: Any) -> Key:
        key = Key(
            label=label,
            id=created["id"],
            secret=created["key"],
            owner=created["principal_id"],
            scope=created.get("project_id"),
            expires_at=_parse_time(created["expires_at"]),
            origin=origin,
        )
        self.keys[label] = key
        return key

    def _seed_user(self, label: str, role: str | None, project: str | None) -> Key:
        """A human and an unscoped key, made by the operator (the service layer), like the
        tests' make_caller."""
        from privet.auth import service
        from privet.db import session_scope

        with session_scope(self.runtime.engine) as session:
            if label == "platform-admin":
                principal = service.bootstrap_admin(session)
            else:
                principal = seed_principal(session, role, project, label)
            created = mint_key(session, self.runtime, principal.id, f"{label} key", ttl_days=3650)
        for row in self._db("SELECT id FROM role_bindings WHERE principal_id = :p", p=principal.id):
            self.bindings[row.id] = "seed"
        self._add_principal(Principal(id=principal.id, label=label, kind="user"))
        return self._add_key(label, created.model_dump(mode="json"), "seed")

    # -- the cast ------------------------------------------------------------------------

    @initialize()
    def seed(self) -> None:
        root = self._seed_user("platform-admin", None, None)
        for name in ("A", "B"):
            response = self.call(
                root, "POST", "/v1/projects", json={"name": f"project-{name.lower()}"}
            )
            assert response.status_code == 201, response.text
            self.projects[name] = response.json()["id"]
            for binding in self._db(
                "SELECT id FROM role_bindings WHERE project_id = :p", p=self.projects[name]
            ):
                self.bindings[binding.id] = self._grant(root, "project.create")
        a, b = self.projects["A"], self.projects["B"]
        self._seed_user("admin-A", "admin", a)
        self._seed_user("admin-B", "admin", b)
        self._seed_user("steward-A", "data_steward", a)
        self._seed_user("approver-A", "approver", a)
        self._seed_user("auditor-A", "auditor", a)
        # The scoring application: a service account of A with a key its admin minted.
        self._add_service_account(self.keys["admin-A"], "A", "predictor", "predictor-A")
        # One dataset in each project, uploaded by whoever may.
        self._upload(self.keys["steward-A"], "A", seed=1)
        self._upload(self.keys["admin-B"], "B", seed=2)

    def _add_member(self, key: Key, project_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST a membership as ``key``: the binding made (recorded with the grant that
        allowed it), or None when refused."""
        grant = self._grant(key, "member.add")
        response = self.call(key, "POST", f"/v1/projects/{project_id}/members", json=body)
        if response.status_code != 201:
            return None
        made: dict[str, Any] = response.json()
        self.bindings[made["id"]] = grant
        return made

    def _add_service_account(self, key: Key, project: str, role: str, label: str) -> Key | None:
        body = self._add_member(
            key, self.projects[project], {"service_account_name": label, "role": role}
        )
        if body is None:
            return None
        sa = body["principal_id"]
        self._add_principal(
            Principal(
                id=sa,
                label=label,
                kind="service_account",
                creator=key.owner,
                home=self.projects[project],
            )
        )
        return self._mint(key, sa, self.projects[project], None, label)

    def _mint(
        self, key: Key, owner: str, scope: str | None, ttl_days: int | None, label: str
    ) -> Key | None:
        grant = self._grant(key, "api_key.create")
        body: dict[str, Any] = {"name": label, "principal_id": owner}
        if scope is not None:
            body["project_id"] = scope
        if ttl_days is not None:
            body["ttl_days"] = ttl_days
        response = self.call(key, "POST", "/v1/api-keys", json=body)
        if response.status_code != 201:
            return None
        return self._add_key(label, response.json(), grant)

    def _upload(self, key: Key, project: str, *, seed: int, dataset: Dataset | None = None) -> None:
        content, subjects = _rows(24, seed)
        pid = self.projects[project]
        path = f"/v1/projects/{pid}/datasets"
        name = f"loans-{seed}"
        if dataset is not None:
            path += f"/{dataset.id}/versions"
            name = "loans"
        files = {
            "declarations": (
                None,
                json.dumps(_declarations(name, EPSILON_TOTAL)),
                "application/json",
            ),
            "file": ("loans.csv", content, "text/csv"),
        }
        response = self.call(key, "POST", path, files=files)
        if response.status_code != 201:
            return
        version = response.json()
        dataset_id = version["dataset_id"]
        if dataset_id not in self.datasets:
            self.datasets[dataset_id] = Dataset(dataset_id, pid, EPSILON_TOTAL, list(subjects))
        else:
            self.datasets[dataset_id].subjects.extend(subjects)
        self.datasets[dataset_id].versions.append(version["id"])

    # -- choices -------------------------------------------------------------------------

    def _key(self, data: st.DataObject, name: str = "caller", prefer: tuple[str, ...] = ()) -> Key:
        """One of the real keys. Half the time (when `prefer` is given) among the keys whose
        roles fit the rule, so sequences get far enough to matter; otherwise any key."""
        labels = sorted(self.keys)
        if prefer and data.draw(st.booleans(), label=f"{name} acts in role"):
            fitting = [
                label
                for label in labels
                if any(r in prefer for r, _p in self._effective_roles(self.keys[label]))
            ]
            labels = fitting or labels
        return self.keys[data.draw(st.sampled_from(labels), label=name)]

    def _own_projects(self, key: Key) -> list[str]:
        """The projects a key has a role in, A before B."""
        return sorted({p for _r, p in self._effective_roles(key) if p is not None}, key=self._name)

    def _principal(self, data: st.DataObject, name: str) -> str:
        """Any principal an insider has seen (ids show up as created_by, in member lists)."""
        by_label = {p.label: p.id for p in self.principals.values()}
        return by_label[data.draw(st.sampled_from(sorted(by_label)), label=name)]

    def _project(self, data: st.DataObject, name: str = "project") -> str:
        return self.projects[data.draw(st.sampled_from(sorted(self.projects)), label=name)]

    # -- grants --------------------------------------------------------------------------

    @rule(data=st.data(), role=st.sampled_from(ROLES))
    def add_service_account(self, data: st.DataObject, role: str) -> None:
        """A member with a role: a new service account, with a key its creator mints."""
        key = self._key(data, "granter", ("admin",))
        project = data.draw(st.sampled_from(sorted(self.projects)), label="project")
        self._add_service_account(key, project, role, self._next(f"sa-{role}-{project}-"))

    @rule(data=st.data(), role=st.sampled_from(ROLES))
    def add_existing_member(self, data: st.DataObject, role: str) -> None:
        """Bind a role to an existing principal (any id an insider has seen)."""
        key = self._key(data, "granter", ("admin",))
        project = self._project(data)
        target = self._principal(data, "principal")
        self._add_member(key, project, {"principal_id": target, "role": role})

    @precondition(lambda self: self.has_invitations)
    @rule(data=st.data(), role=st.sampled_from(ROLES), accept=st.booleans())
    def invite(self, data: st.DataObject, role: str, accept: bool) -> None:
        """Planned API: an invitation, accepted (or not) by the new person with its token."""
        key = self._key(data, "inviter", ("admin",))
        project = self._project(data)
        label = self._next(f"invited-{role}-")
        grant = self._grant(key, "invitation")
        response = self.call(
            key, "POST", f"/v1/projects/{project}/invitations", json={"name": label, "role": role}
        )
        if response.status_code != 201 or not accept:
            return
        token = response.json()["token"]
        accepted = self.client.post(
            "/v1/invitations:accept",
            headers={"Authorization": f"Bearer {token}"},
            json={"key_name": label},
        )
        _note(f"{label}: POST /v1/invitations:accept → {accepted.status_code}")
        if accepted.status_code != 201:
            return
        body = accepted.json()
        self._add_principal(Principal(id=body["principal_id"], label=label, kind="user"))
        for row in self._db(
            "SELECT id FROM role_bindings WHERE principal_id = :p", p=body["principal_id"]
        ):
            self.bindings[row.id] = grant
        self._add_key(label, body["api_key"], ("invitation", grant, project, role))
        # The token is single-use.
        again = self.client.post(
            "/v1/invitations:accept", headers={"Authorization": f"Bearer {token}"}, json={}
        )
        assert again.status_code in (401, 403, 409, 410), again.text

    @rule(
        data=st.data(),
        for_whom=st.sampled_from(("self", "other")),
        scope=st.sampled_from((None, "A", "B", "own")),
        ttl_days=st.sampled_from((None, 1, 90, 3650)),
    )
    def mint_key(
        self, data: st.DataObject, for_whom: str, scope: str | None, ttl_days: int | None
    ) -> None:
        """A key for oneself or for someone else, scoped or not, with a lifetime."""
        key = self._key(data, "minter", ("admin",))
        if for_whom == "self":
            owner = key.owner
        else:
            owner = self._principal(data, "owner")
        if scope == "own":
            project: str | None = key.scope
        else:
            project = self.projects[scope] if scope else None
        label = self._next(f"{self.principals[owner].label}#k")
        self._mint(key, owner, project, ttl_days, label)

    def _minted(self) -> list[str]:
        return sorted(label for label, k in self.keys.items() if k.origin != "seed")

    @precondition(lambda self: bool(self._minted()))
    @rule(data=st.data())
    def revoke_key(self, data: st.DataObject) -> None:
        """Revoke a minted key (the seeded ones stay, so everyone can still act)."""
        key = self._key(data, "revoker")
        victim = self.keys[data.draw(st.sampled_from(self._minted()), label="revoked")]
        response = self.call(key, "DELETE", f"/v1/api-keys/{victim.id}")
        if response.status_code == 200:
            del self.keys[victim.label]

    # -- data ----------------------------------------------------------------------------

    @rule(data=st.data(), new=st.booleans())
    def upload(self, data: st.DataObject, new: bool) -> None:
        """A new dataset, or a new version (a re-upload of the same people) of one."""
        key = self._key(data, "uploader", ("admin", "data_steward"))
        project = data.draw(st.sampled_from(sorted(self.projects)), label="project")
        existing = [d for d in self.datasets.values() if d.project == self.projects[project]]
        dataset = None
        if existing and not new:
            dataset = self.datasets[
                data.draw(st.sampled_from([d.id for d in existing]), label="dataset")
            ]
        self._upload(key, project, seed=self.counter + 10, dataset=dataset)
        self.counter += 1

    @precondition(lambda self: bool(self.datasets))
    @rule(data=st.data(), how_many=st.integers(1, 3))
    def erase_subjects(self, data: st.DataObject, how_many: int) -> None:
        key = self._key(data, "eraser", ("admin", "data_steward"))
        dataset = data.draw(st.sampled_from(list(self.datasets)), label="dataset")
        d = self.datasets[dataset]
        subjects = d.subjects[:how_many]
        response = self.call(
            key,
            "POST",
            f"/v1/projects/{d.project}/datasets/{dataset}:erase-subjects",
            json={"subject_ids": subjects},
        )
        if response.status_code == 200:
            new = response.json().get("new_version")
            if new:
                d.versions.append(new["id"])
            del d.subjects[: len(subjects)]

    @precondition(lambda self: bool(self.datasets))
    @rule(data=st.data(), erase=st.booleans())
    def data_subject_request(self, data: st.DataObject, erase: bool) -> None:
        """A platform-wide DSR (access or erasure) for one subject."""
        key = self._key(data, "requester", ("admin", "data_steward"))
        dataset = self.datasets[data.draw(st.sampled_from(list(self.datasets)), label="dataset")]
        if not dataset.subjects:
            return
        subject = dataset.subjects[-1]
        response = self.call(
            key,
            "POST",
            "/v1/data-subject-requests",
            json={"type": "erasure" if erase else "access", "subject_id": subject},
        )
        if response.status_code == 201 and erase:
            for d in self.datasets.values():
                if subject in d.subjects:
                    d.subjects.remove(subject)
            self._refresh_versions()

    def _refresh_versions(self) -> None:
        for row in self._db("SELECT id, dataset_id FROM dataset_versions"):
            d = self.datasets.get(row.dataset_id)
            if d is not None and row.id not in d.versions:
                d.versions.append(row.id)

    # -- training and approval -----------------------------------------------------------

    @precondition(lambda self: bool(self.datasets))
    @rule(data=st.data(), epsilon=st.sampled_from(JOB_EPSILONS))
    def submit_job(self, data: st.DataObject, epsilon: float) -> None:
        key = self._key(data, "submitter", ("admin", "ml_engineer"))
        dataset = self.datasets[data.draw(st.sampled_from(list(self.datasets)), label="dataset")]
        self._refresh_versions()
        version = data.draw(st.sampled_from(dataset.versions), label="version")
        self.call(
            key,
            "POST",
            f"/v1/projects/{dataset.project}/training-jobs",
            json={
                "dataset_version_id": version,
                "base_model": TINY,
                "target_epsilon": epsilon,
                "strategy": "head",
                "epochs": 1,
                "batch_size": 8,
                "physical_batch_size": 8,
                "max_length": 8,
                "learning_rate": 0.05,
            },
        )

    def _queued(self) -> bool:
        return bool(self._db("SELECT id FROM training_jobs WHERE state = 'queued'"))

    @precondition(lambda self: self.trainings < self.env.max_trainings and self._queued())
    @rule()
    def run_job(self) -> None:
        """The worker trains the oldest queued job to a candidate version (tiny model)."""
        from privet.jobs.worker import Worker

        self.trainings += 1
        assert Worker(self.runtime, settings=self.job_settings).tick()
        for row in self._db("SELECT id, state, reason FROM training_jobs"):
            _note(f"job {row.id}: {row.state} {row.reason or ''}")

    def _candidates(self) -> list[Any]:
        return self._db(
            "SELECT id, project_id FROM model_versions WHERE state = 'candidate' ORDER BY rowid"
        )

    @precondition(lambda self: bool(self._candidates()))
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        key = self._key(data, "approver", ("admin", "approver"))
        candidates = {row.id: row.project_id for row in self._candidates()}
        version = data.draw(st.sampled_from(list(candidates)), label="version")
        self.call(
            key, "POST", f"/v1/projects/{candidates[version]}/model-versions/{version}:approve"
        )

    # -- reads ---------------------------------------------------------------------------

    @rule(
        data=st.data(),
        kind=st.sampled_from(REPORT_KINDS),
        scoped=st.sampled_from(("none", "own", "A", "B")),
    )
    def read_report(self, data: st.DataObject, kind: str, scoped: str) -> None:
        key = self._key(data, "reader", ("auditor", "data_steward", "admin", "approver"))
        params: dict[str, str] = {"format": "json"}
        if scoped == "own":
            own = self._own_projects(key)
            if own:
                params["project"] = own[0]
        elif scoped != "none":
            params["project"] = self.projects[scoped]
        self.call(key, "GET", f"/v1/reports/{kind}", params=params)

    @rule(data=st.data(), in_own_project=st.booleans())
    def read_object(self, data: st.DataObject, in_own_project: bool) -> None:
        """Read any object by id: in its own project's path, or in one the caller is in."""
        key = self._key(data, "reader")
        registry = list(self._registry().items())
        object_id, owner = data.draw(st.sampled_from(registry), label="object")
        project = owner
        own = self._own_projects(key)
        if in_own_project and own:
            project = own[0]
        if owner == PLATFORM:
            paths = [f"/v1/data-subject-requests/{object_id}"]
        else:
            kind = object_id.split("_", 1)[0]
            paths = {
                "prj": [f"/v1/projects/{object_id}", f"/v1/projects/{object_id}/members"],
                "ds": [f"/v1/projects/{project}/datasets/{object_id}"],
                "dsv": [f"/v1/projects/{project}/datasets"],
                "job": [f"/v1/projects/{project}/training-jobs/{object_id}"],
                "mdl": [f"/v1/projects/{project}/models/{object_id}"],
                "mv": [f"/v1/projects/{project}/model-versions/{object_id}"],
            }.get(kind, [f"/v1/projects/{project}"])
        for path in paths:
            self.call(key, "GET", path)

    @rule(data=st.data(), which=st.sampled_from(("projects", "dsr", "events", "events-project")))
    def read_list(self, data: st.DataObject, which: str) -> None:
        key = self._key(data, "reader")
        if which == "projects":
            self.call(key, "GET", "/v1/projects")
        elif which == "dsr":
            self.call(key, "GET", "/v1/data-subject-requests")
        elif which == "events":
            self.call(key, "GET", "/v1/audit/events")
        else:
            self.call(key, "GET", "/v1/audit/events", params={"project": self._project(data)})

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def count(self) -> None:
        self.checks += 1

    @invariant()
    def capabilities_were_granted(self) -> None:
        """1. Every role binding and every live API key is explained by a grant from someone
        who held at least that capability, through the key they used."""
        if "capabilities" not in self.env.checked:
            return
        problems: list[str] = []
        principals = {r.id: r.kind for r in self._db("SELECT id, kind FROM principals")}
        for row in self._db("SELECT id, principal_id, role, project_id FROM role_bindings"):
            origin = self.bindings.get(row.id)
            who = self._label(row.principal_id)
            where = self._name(row.project_id) if row.project_id else "platform"
            if origin is None:
                problems.append(f"binding {row.role}@{where} of {who}: no grant made it")
            elif origin != "seed" and not _holds(origin.roles, row.role, row.project_id):
                problems.append(
                    f"binding {row.role}@{where} of {who} granted with {origin.via} "
                    f"holding only [{self._roles_text(origin.roles)}]"
                )
        now = datetime.now(UTC)
        live = self._db(
            "SELECT id, principal_id, project_id, expires_at, created_by FROM api_keys "
            "WHERE revoked_at IS NULL"
        )
        by_id = {k.id: k for k in self.keys.values()}
        known_ids = {k.id for k in self.keys.values()}
        for row in live:
            if _as_utc(row.expires_at) <= now:
                continue
            key = by_id.get(row.id)
            scope = self._name(row.project_id) if row.project_id else "unscoped"
            who = self._label(row.principal_id)
            if key is None:
                if row.id not in known_ids:
                    problems.append(f"key {row.id} of {who} ({scope}): no grant made it")
                continue
            why = self._unexplained_key(key, principals)
            if why:
                problems.append(f"key {key.label} of {who} ({scope}) minted with {why}")
        assert not problems, "capabilities nobody granted:\n  " + "\n  ".join(problems)

    def _unexplained_key(self, key: Key, principals: dict[str, str]) -> str | None:
        origin = key.origin
        if origin == "seed":
            return None
        if isinstance(origin, tuple):  # accepted invitation: the invitee's own first key
            _kind, grant, project, role = origin
            if key.scope == project and _holds(grant.roles, role, project):
                return None
            return f"an invitation by {grant.via} holding [{self._roles_text(grant.roles)}]"
        grant: Grant = origin
        if grant.owner == key.owner:
            wider = grant.scope is not None and key.scope != grant.scope
            longer = key.expires_at > grant.expires_at + timedelta(seconds=5)
            if not wider and not longer:
                return None
            return (
                f"{grant.via} (own key, {self._name(grant.scope) if grant.scope else 'unscoped'}"
                f", expires {grant.expires_at:%Y-%m-%d}): "
                + ("wider scope" if wider else "")
                + (" and " if wider and longer else "")
                + (f"longer life (expires {key.expires_at:%Y-%m-%d})" if longer else "")
            )
        owner = self.principals.get(key.owner)
        if (
            principals.get(key.owner) == "service_account"
            and owner is not None
            and key.scope is not None
            and owner.home == key.scope
            and _holds(grant.roles, "admin", key.scope)
        ):
            return None
        kind = principals.get(key.owner, "?")
        return (
            f"{grant.via} holding [{self._roles_text(grant.roles)}]: a key for another "
            f"principal ({kind}) that is not a service account of the key's project"
        )

    def _label(self, principal_id: str) -> str:
        p = self.principals.get(principal_id)
        return p.label if p else principal_id

    def _accountable(self, principal_id: str) -> str:
        """The human behind a principal: a service account acts for the one who created it."""
        seen: set[str] = set()
        current = principal_id
        while current not in seen:
            seen.add(current)
            p = self.principals.get(current)
            if p is None or p.kind == "user" or p.creator is None:
                return current
            current = p.creator
        return current

    @invariant()
    def four_eyes_between_humans(self) -> None:
        """2. Approver and submitter of every approved version are different people, and no
        service account approved anything."""
        if "four-eyes" not in self.env.checked:
            return
        problems = []
        rows = self._db(
            "SELECT id, submitted_by, approved_by FROM model_versions WHERE approved_by IS NOT NULL"
        )
        kinds = {r.id: r.kind for r in self._db("SELECT id, kind FROM principals")}
        for row in rows:
            submitter = str(row.submitted_by).split(":", 1)[-1]
            approver = str(row.approved_by).split(":", 1)[-1]
            if kinds.get(approver) == "service_account":
                problems.append(
                    f"version {row.id} approved by service account {self._label(approver)}"
                )
            if self._accountable(approver) == self._accountable(submitter):
                problems.append(
                    f"version {row.id}: submitted by {self._label(submitter)} and approved by "
                    f"{self._label(approver)}, both for {self._label(self._accountable(approver))}"
                )
        assert not problems, "four eyes bypassed:\n  " + "\n  ".join(problems)

    @invariant()
    def budgets_hold_per_dataset(self) -> None:
        """3. Charged + reserved ε over all versions of a dataset ≤ its declared total."""
        if "budgets" not in self.env.checked:
            return
        entries = self._db(
            "SELECT e.job_id, e.kind, e.epsilon, v.dataset_id FROM privacy_budget_entries e "
            "JOIN dataset_versions v ON v.id = e.dataset_version_id"
        )
        per_job: dict[str, dict[str, Any]] = {}
        for e in entries:
            job = per_job.setdefault(e.job_id, {"dataset": e.dataset_id})
            job[e.kind] = float(e.epsilon)
        spent: dict[str, float] = {}
        for job in per_job.values():
            if "charge" in job:
                eps = job["charge"]
            elif "release" in job:
                eps = 0.0
            else:
                eps = job.get("reserve", 0.0)
            spent[job["dataset"]] = spent.get(job["dataset"], 0.0) + eps
        problems = [
            f"dataset {ds} ({self._name(self.datasets[ds].project)}): ε {eps:g} spent of "
            f"{self.datasets[ds].declared_total:g} declared"
            for ds, eps in sorted(spent.items())
            if ds in self.datasets and eps > self.datasets[ds].declared_total + 1e-9
        ]
        assert not problems, "privacy budgets exceeded:\n  " + "\n  ".join(problems)

    @invariant()
    def nobody_reads_outside_their_projects(self) -> None:
        """4. No response gave a caller ids of a project it has no role in, or platform data
        without a platform role."""
        leaks, self.leaks = self.leaks, []
        if "tenancy" not in self.env.checked:
            return
        assert not leaks, "data outside the caller's projects:\n  " + "\n  ".join(leaks)


def machine_for(env: Env) -> type[InsiderMachine]:
    """The machine class bound to this session's environment."""
    return type("Insider", (InsiderMachine,), {"env": env})


@dataclass
class RunStats:
    examples: int = 0
    steps: int = 0
    trainings: int = 0

    def summary(self) -> str:
        return (
            f"insider machine: {self.examples} sequences, {self.steps} steps "
            f"(each followed by the invariants), {self.trainings} trainings"
        )


def _profiles() -> None:
    """`insider-readme`: bounded and reproducible (the README's test command; no shrinking,
    which takes minutes here); `insider-long`: random, shrinks each failure to its shortest
    sequence (tests/benchmarks/test_insider_long.py)."""
    from hypothesis import HealthCheck, Phase, settings

    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
    }
    settings.register_profile(
        "insider-readme",
        max_examples=8,
        stateful_step_count=25,
        derandomize=True,
        phases=[p for p in Phase if p not in (Phase.shrink, Phase.explain)],
        **common,
    )
    settings.register_profile(
        "insider-long", max_examples=100, stateful_step_count=40, derandomize=False, **common
    )


_profiles()


def run(
    env: Env,
    *,
    profile: str,
    examples: int | None = None,
    steps: int | None = None,
    shrink: bool | None = None,
) -> RunStats:
    """Run the machine under a profile (optionally with other counts); counts what ran."""
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    chosen = settings.get_profile(profile)
    overrides: dict[str, Any] = {}
    if examples is not None:
        overrides["max_examples"] = examples
    if steps is not None:
        overrides["stateful_step_count"] = steps
    if shrink is not None:
        overrides["phases"] = [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]
    stats = RunStats()
    base = machine_for(env)

    class Counted(base):  # type: ignore[valid-type,misc]
        def __init__(self) -> None:
            super().__init__()
            stats.examples += 1

        def teardown(self) -> None:
            stats.steps += max(0, self.checks - 1)  # the first check follows the seeding
            stats.trainings += self.trainings
            super().teardown()

    try:
        run_state_machine_as_test(Counted, settings=settings(chosen, **overrides))
    except BaseException as exc:
        exc.add_note(stats.summary())
        raise
    return stats
