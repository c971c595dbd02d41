"""Audited inference: serve approved model versions, one ledger event per prediction.

- ``service.InferenceService``: predict a batch, review/contest, explain (occlusion);
- ``records``: the row, ledger event and response of each prediction;
- ``reviews``: human reviews and contests; ``served``: a version in memory;
- ``observer.PredictionObserver``: what the runtime plugs in to watch each request
  (``privet.monitoring``); inference never imports monitoring;
- ``cache.ModelCache``: decrypted versions in memory only, LRU by count and bytes;
- ``batcher.MicroBatcher``: concurrent requests share forward passes;
- ``versions``: which version a request means and whether it serves (cached ≤ 2 s);
- ``digests``: keyed input digests and subject pseudonyms.

No FastAPI here; the routes are ``privet.api.routes.inference``. See docs/INFERENCE.md.
"""

from privet.inference.settings import InferenceSettings, get_inference_settings

__all__ = ["InferenceSettings", "get_inference_settings"]
