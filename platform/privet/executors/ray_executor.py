"""Run a job's training as N data-parallel DP-SGD processes on a Ray cluster.

The job worker that claimed the job owns it (heartbeat, progress, cancellation,
registration) as for local training. This executor starts N fresh Ray actors, wires them
into a torch.distributed group (gloo on CPU, NCCL on the GPUs Ray reserved: `base.
ray_device_spec`) and runs the trainer's loop in each (`train_part`, `DistributedWorld`).

What crosses to Ray, and how:
- a fresh 256-bit *transport key* per job (never stored, never reused), handed to each
  actor as an argument of the `train` call — not of the actor's constructor, which Ray
  keeps in its control store — so it lives only in the memory of that job's processes;
- each rank's shard of the training rows (and rank 0's evaluation rows), sealed with that
  key in privet's envelope format, bound to the job (`ObjectRef("training-transport",
  job_id, project_id)`) and to the part (`shard-<r>`, `eval`): Ray's object store, its
  spill files and the network only ever hold these as ciphertext;
- the fine-tuned weights come back sealed with the same key (part `weights`); the worker
  opens them in memory and registers them (encrypted at rest with the model's own key);
- the base model spec (name, path, pinned digests): each actor loads the base model from
  its own disk and checks every digest, as a local worker does.

What is *not* ciphertext: the ranks' collectives, the clipped, un-noised gradient sums
all-reduced every step (noise is added once, after the sum). So ranks on one node talk
over loopback only (``127.0.0.1``, ``GLOO_SOCKET_IFNAME``/``NCCL_SOCKET_IFNAME`` = ``lo``),
and a job whose ranks land on several nodes is refused (``UntrustedNetworkError``) unless
the operator declares the network between them trusted
(``PRIVET_TRAINING_TRUSTED_NETWORK=true``, docs/SCALING.md).
Progress flows back from rank 0 (polled every `ray_poll_interval_s`); a cancellation
request is forwarded to every actor, and the ranks agree on it before the next step.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from privet.crypto.refs import ObjectRef
from privet.crypto.stream import seal, unseal
from privet.executors.base import JobSpec, ray_device_spec
from privet.executors.settings import ExecutorSettings, get_executor_settings
from privet.training import TrainingConfig, TrainingResult, compute_epsilon
from privet.training.catalog import CATALOG, BaseModelSpec, Catalog
from privet.training.data import LabelledTexts, label_names_for
from privet.training.progress import ProgressEvent, TrainingCancelled
from privet.training.trainer import ConfigError, RankOutcome, train_part

log = logging.getLogger("privet.executors.ray")

TRANSPORT_KIND = "training-transport"
KEY_REF = "transport"


class RayUnavailable(RuntimeError):
    """The Ray extra is not installed or the cluster cannot be reached."""


class UntrustedNetworkError(ConfigError):
    """A job's ranks would exchange plaintext gradients across an undeclared network."""


LOOPBACK = "127.0.0.1"


def collective_network(node_ips: list[str], settings: ExecutorSettings) -> str:
    """Where the ranks' collectives may run: ``loopback`` (every rank on one node) or
    ``network`` (several nodes, only on a network the operator declared trusted)."""
    nodes = sorted(set(node_ips))
    if len(nodes) <= 1:
        return "loopback"
    if settings.training_trusted_network:
        return "network"
    raise UntrustedNetworkError(
        f"the job's {len(node_ips)} training processes landed on {len(nodes)} nodes "
        f"({', '.join(nodes[:8])}): data-parallel DP-SGD would all-reduce un-noised "
        "clipped gradients between them in plaintext over gloo/NCCL. Run the job's workers "
        "on one node (fewer `workers`, or larger nodes), or, if the network between the "
        "Ray nodes is private and trusted, set PRIVET_TRAINING_TRUSTED_NETWORK=true on "
        "the job workers (docs/SCALING.md)"
    )


def _transport_ref(job: JobSpec) -> ObjectRef:
    return ObjectRef(TRANSPORT_KIND, job.job_id, job.project_id)


def seal_rows(data: LabelledTexts, *, key: bytes, ref: ObjectRef, part: str) -> bytes:
    payload = json.dumps(
        {"texts": list(data.texts), "labels": [str(x) for x in data.labels]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return seal(payload, data_key=key, key_ref=KEY_REF, ref=ref, part=part)


def open_rows(sealed: bytes, *, key: bytes, ref: ObjectRef, part: str) -> LabelledTexts:
    raw = json.loads(unseal(sealed, data_key=key, key_ref=KEY_REF, ref=ref, part=part))
    return LabelledTexts(raw["texts"], raw["labels"])


@dataclass(frozen=True)
class RankSummary:
    rank: int
    steps: int
    noise_additions: int
    examples_seen: int
    train_s: float
    node: str

    @classmethod
    def of(cls, out: dict[str, Any]) -> RankSummary:
        """From what a rank sent back (`_packed`)."""
        return cls(
            rank=int(out["rank"]),
            steps=int(out["steps"]),
            noise_additions=int(out["noise_additions"]),
            examples_seen=int(out["examples_seen"]),
            train_s=float(out["train_s"]),
            node=str(out["node"]),
        )


@dataclass(frozen=True)
class DistributedRun:
    result: TrainingResult
    ranks: tuple[RankSummary, ...]
    world_size: int
    backend: str
    duration_s: float


class _RankActorImpl:
    """One training process of one job (wrapped by `ray.remote` on first use)."""

    def __init__(self, rank: int, world_size: int, threads: int) -> None:
        self.rank = rank
        self.world_size = world_size
        self.threads = threads
        self._cancel = threading.Event()
        self._events: list[ProgressEvent] = []
        self._lock = threading.Lock()

    def node(self) -> str:
        import ray

        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]

    def endpoint(self, loopback: bool) -> tuple[str, int]:
        host = LOOPBACK if loopback else self.node()
        with socket.socket() as sock:
            sock.bind((host, 0))
            return host, int(sock.getsockname()[1])

    def cancel(self) -> None:
        self._cancel.set()

    def drain(self) -> list[ProgressEvent]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def train(
        self,
        *,
        key: bytes,
        ref: ObjectRef,
        sealed_shard: bytes | None,
        sealed_eval: bytes | None,
        spec: BaseModelSpec,
        config: TrainingConfig,
        n: int,
        label_names: list[str],
        master: tuple[str, int],
        backend: str,
        timeout_s: float,
        device_spec: str,
        precision: str,
    ) -> dict[str, Any]:
        import ray
        import torch
        import torch.distributed as dist

        from privet.executors.distributed import rank_world

        torch.set_num_threads(max(1, self.threads))
        shard = (
            None
            if sealed_shard is None
            else open_rows(sealed_shard, key=key, ref=ref, part=f"shard-{self.rank}")
        )
        eval_data = (
            None if sealed_eval is None else open_rows(sealed_eval, key=key, ref=ref, part="eval")
        )
        catalog = Catalog()
        catalog.register(spec, replace=True)
        if self.world_size > 1:
            if master[0] == LOOPBACK:  # one node: the collectives never leave it
                os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
                os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
            dist.init_process_group(
                backend,
                init_method=f"tcp://{master[0]}:{master[1]}",
                rank=self.rank,
                world_size=self.world_size,
                timeout=timedelta(seconds=timeout_s),
            )

        def on_progress(event: ProgressEvent) -> None:
            with self._lock:
                self._events.append(event)

        try:
            outcome = train_part(
                config,
                shard,
                eval_data,
                n=n,
                label_names=label_names,
                world=rank_world(self.rank, self.world_size, device_spec, precision),
                catalog=catalog,
                progress=on_progress,
                should_cancel=self._cancel.is_set,
            )
        except TrainingCancelled as exc:
            return {"cancelled": True, "steps": exc.steps, "epsilon": exc.epsilon_spent}
        finally:
            del shard, eval_data
            if self.world_size > 1 and dist.is_initialized():
                dist.destroy_process_group()
        return _packed(outcome, node=ray.util.get_node_ip_address(), key=key, ref=ref)  # type: ignore[no-untyped-call]


def _packed(outcome: RankOutcome, *, node: str, key: bytes, ref: ObjectRef) -> dict[str, Any]:
    """What a rank sends back through Ray: its counts, and the head's weights sealed."""
    out: dict[str, Any] = {
        "cancelled": False,
        "rank": outcome.rank,
        "steps": outcome.steps,
        "noise_additions": outcome.noise_additions,
        "examples_seen": outcome.examples_seen,
        "train_s": outcome.train_s,
        "node": node,
    }
    if outcome.result is not None:
        sealed = seal(
            outcome.result.weights, data_key=key, key_ref=KEY_REF, ref=ref, part="weights"
        )
        out["result"] = replace(outcome.result, weights=b"")
        out["sealed_weights"] = sealed
    return out


_actor_class: Any = None


def _rank_actor_class() -> Any:
    global _actor_class
    if _actor_class is None:
        import ray

        # Two threads: `train` runs in one, `cancel`/`drain` are answered in the other.
        _actor_class = ray.remote(max_concurrency=2)(_RankActorImpl)  # type: ignore[call-overload]
    return _actor_class


class RayExecutor:
    """The `ray` executor: see the module docstring."""

    name = "ray"

    def __init__(
        self, settings: ExecutorSettings | None = None, *, catalog: Catalog | None = None
    ) -> None:
        self.settings = settings or get_executor_settings()
        self.device_spec = ray_device_spec(self.settings)  # refuses a contradiction now
        self.catalog = catalog or CATALOG
        self._owns_ray = False
        self.last_run: DistributedRun | None = None

    def connect(self) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RayUnavailable(
                "the Ray executor needs the extra: pip install privet[ray]"
            ) from exc
        if ray.is_initialized():
            return
        address = self.settings.ray_address
        kwargs: dict[str, Any] = {
            "namespace": self.settings.ray_namespace,
            "log_to_driver": False,
            "include_dashboard": False,
        }
        if address in (None, "", "local"):
            ray.init(**kwargs)
            self._owns_ray = True
        else:
            kwargs.pop("include_dashboard")
            ray.init(address=address, **kwargs)
        log.info("connected to Ray (%s)", address or "local")

    def close(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def train(
        self,
        job: JobSpec,
        config: TrainingConfig,
        train_data: LabelledTexts,
        eval_data: LabelledTexts,
        *,
        progress: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> TrainingResult:
        return self.run(
            job, config, train_data, eval_data, progress=progress, should_cancel=should_cancel
        ).result

    def run(
        self,
        job: JobSpec,
        config: TrainingConfig,
        train_data: LabelledTexts,
        eval_data: LabelledTexts,
        *,
        progress: Callable[[ProgressEvent], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> DistributedRun:
        """Train on `job.workers` Ray processes; the result as `train(...)` returns it."""
        import ray

        started = time.monotonic()
        progress = progress or (lambda _e: None)
        should_cancel = should_cancel or (lambda: False)
        s = self.settings
        world, n = job.workers, len(train_data.texts)
        if not 1 <= world <= s.ray_max_workers:
            raise ConfigError(f"workers must be between 1 and {s.ray_max_workers}, got {world}")
        if world > n:
            raise ConfigError(f"workers ({world}) must not exceed the training rows ({n})")
        config.validate(n)
        label_names = label_names_for(train_data)
        spec = self.catalog.get(config.base_model)
        self.connect()
        self._refuse_unplaceable(world)
        backend = s.ray_backend or ("nccl" if self.device_spec == "cuda" else "gloo")
        key = secrets.token_bytes(32)
        ref = _transport_ref(job)
        shard_refs = [
            None if sealed is None else ray.put(sealed)
            for sealed in _sealed_shards(train_data, world, key=key, ref=ref)
        ]
        eval_ref = ray.put(seal_rows(eval_data, key=key, ref=ref, part="eval"))

        actor_cls = _rank_actor_class().options(
            num_cpus=s.ray_cpus_per_worker, num_gpus=s.ray_gpus_per_worker, max_restarts=0
        )
        threads = max(1, int(s.ray_cpus_per_worker))
        actors = [actor_cls.remote(rank, world, threads) for rank in range(world)]
        try:
            master = self._master_endpoint(actors)
            futures = [
                actor.train.remote(
                    key=key,
                    ref=ref,
                    sealed_shard=shard_refs[rank],
                    sealed_eval=eval_ref if rank == 0 else None,
                    spec=spec,
                    config=config,
                    n=n,
                    label_names=label_names,
                    master=master,
                    backend=backend,
                    timeout_s=s.ray_collective_timeout_s,
                    device_spec=self.device_spec,
                    precision=s.training_precision,
                )
                for rank, actor in enumerate(actors)
            ]
            outs = self._wait(actors, futures, progress, should_cancel)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)
        result = _result_of(outs, key=key, ref=ref)
        del key
        run = DistributedRun(
            result=result,
            ranks=tuple(RankSummary.of(o) for o in sorted(outs, key=lambda o: int(o["rank"]))),
            world_size=world,
            backend=backend if world > 1 else "none",
            duration_s=time.monotonic() - started,
        )
        self.last_run = run
        return run

    def _master_endpoint(self, actors: list[Any]) -> tuple[str, int]:
        """Rank 0's rendezvous address (loopback when all ranks share one node)."""
        import ray

        if len(actors) == 1:
            return (LOOPBACK, 0)
        timeout = self.settings.ray_collective_timeout_s
        nodes = ray.get([actor.node.remote() for actor in actors], timeout=timeout)
        loopback = collective_network(list(nodes), self.settings) == "loopback"
        master: tuple[str, int] = ray.get(actors[0].endpoint.remote(loopback), timeout=timeout)
        return master

    def _refuse_unplaceable(self, world: int) -> None:
        """Refuse what the cluster can never place (the actors would wait forever)."""
        import ray

        s = self.settings
        total = ray.cluster_resources()  # type: ignore[no-untyped-call]
        need = {"CPU": world * s.ray_cpus_per_worker, "GPU": world * s.ray_gpus_per_worker}
        short = {k: v for k, v in need.items() if v > 0 and total.get(k, 0.0) < v}
        if short:
            raise ConfigError(
                f"{world} workers need {short} but the Ray cluster has "
                f"{ {k: total.get(k, 0.0) for k in short} }"
            )

    def _wait(
        self,
        actors: list[Any],
        futures: list[Any],
        progress: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> list[dict[str, Any]]:
        import ray

        pending = list(futures)
        cancel_sent = False

        def forward_progress() -> None:
            for event in ray.get(actors[0].drain.remote()):
                progress(event)

        while pending:
            done, pending = ray.wait(
                pending, num_returns=len(pending), timeout=self.settings.ray_poll_interval_s
            )
            for ref in done:
                ray.get(ref)  # raise a rank's failure at once (the others get killed)
            forward_progress()
            if not cancel_sent and should_cancel():
                cancel_sent = True
                for actor in actors:
                    actor.cancel.remote()
        forward_progress()
        return list(ray.get(futures))


def _sealed_shards(
    data: LabelledTexts, world: int, *, key: bytes, ref: ObjectRef
) -> list[bytes | None]:
    """Each rank's rows sealed for it (None for an empty shard)."""
    from privet.executors.distributed import shard

    parts = [shard(data, rank, world) for rank in range(world)]
    return [
        None if part is None else seal_rows(part, key=key, ref=ref, part=f"shard-{rank}")
        for rank, part in enumerate(parts)
    ]


def _result_of(outs: list[dict[str, Any]], *, key: bytes, ref: ObjectRef) -> TrainingResult:
    """The head's result with its weights opened, or TrainingCancelled if a rank stopped."""
    cancelled = [o for o in outs if o["cancelled"]]
    if cancelled:
        first = min(cancelled, key=lambda o: o["steps"])
        raise TrainingCancelled(steps=int(first["steps"]), epsilon_spent=first["epsilon"])
    head = next(o for o in outs if "result" in o)
    weights = unseal(head["sealed_weights"], data_key=key, key_ref=KEY_REF, ref=ref, part="weights")
    result: TrainingResult = replace(head["result"], weights=weights)
    if result.privacy is None:
        return result
    # The ε on record is recomputed here, in the job's worker, from the four recorded
    # numbers (PRV's last digits can differ between processes).
    p = result.privacy
    epsilon = compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=p.sample_rate,
        steps=p.steps,
        delta=p.delta,
        accountant=p.accountant,
    )
    return replace(result, privacy=replace(p, epsilon=epsilon))
