"""Monitoring and decision governance of served models (issue 12).

- ``hub``: the prediction-time hook (decision rules, drift aggregates, alerts): each
  runtime's ``MonitorSlot.observe`` is the inference service's ``PredictionObserver``
  (``privet.runtime`` wires it in);
- ``drift``: a window judged against the version's reference; ``quality``: outcomes
  against the accuracy floor, automatic suspension; ``alerts``: crossed thresholds;
- ``service``: references, outcomes, resumption, review queue, the monitoring view;
- ``reference``: the reference built at approval; ``metrics``: Prometheus metrics;
- ``rules``: Cedar decision rules (``policies/decision_rules.cedar``);
- ``stats``: aggregates, PSI, Jensen-Shannon, calibration error.

The ``monitoring`` report kind is ``privet.reports.kinds.monitoring``.

Nothing here keeps an input text: see docs/MONITORING.md.
"""

from privet.monitoring.hub import Monitor, MonitorSlot

__all__ = ["Monitor", "MonitorSlot"]
