"""Integrations with the tools applications already run (extras; nothing heavy is imported
here): :mod:`scaleguard.integrations.openfeature`, an OpenFeature provider on
:class:`scaleguard.safety.RolloutClient`. Argo Rollouts and Flagger call the service instead
(``/api/v1/argo``, ``/api/v1/flagger``)."""

__all__: list[str] = []
