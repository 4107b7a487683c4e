"""Where the observer's spans go: the global TracerProvider, or one of its own.

``exporter = "none"`` (the default) uses whatever provider the host application
installed with ``opentelemetry.trace.set_tracer_provider`` (and the API's no-op
provider when it installed none). ``console`` and ``otlp`` build a provider for
the observer alone, with ``service.name`` set to the observer's
``service_name``; the observer flushes and shuts it down when it closes.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from spindle.core.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["EXPORTERS", "build_provider", "require_api"]

#: The values ``exporter`` takes.
EXPORTERS = ("none", "console", "otlp")

_INSTALL = "pip install 'spindle[otel]'"
_OTLP_MODULES = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)


def require_api() -> None:
    """Check that the OpenTelemetry API is importable.

    Raises:
        ConfigError: it is not; the message says what to install.
    """
    try:
        import opentelemetry.propagate
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"observer 'otel' needs the OpenTelemetry API and SDK ({exc}); install them "
            f"with: {_INSTALL}"
        ) from exc


def build_provider(exporter: str, service_name: str, endpoint: str | None) -> TracerProvider | None:
    """The observer's own provider for ``exporter``; None for ``none`` (the global one).

    Raises:
        ConfigError: ``exporter`` is unknown, or the SDK or the OTLP exporter is
            not installed.
    """
    if exporter not in EXPORTERS:
        raise ConfigError(
            f"observer 'otel': exporter must be one of {', '.join(map(repr, EXPORTERS))}, "
            f"got {exporter!r}"
        )
    if exporter == "none":
        if endpoint is not None:
            raise ConfigError(
                "observer 'otel': endpoint is for exporter = 'otlp'; set exporter = 'otlp' "
                "or drop endpoint"
            )
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ConfigError(
            f"observer 'otel': exporter {exporter!r} needs the OpenTelemetry SDK ({exc}); "
            f"install it with: {_INSTALL}"
        ) from exc
    provider = SdkProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "console":
        if endpoint is not None:
            raise ConfigError(
                "observer 'otel': endpoint is for exporter = 'otlp'; the console exporter "
                "writes to stderr"
            )
        # stderr: the CLI's --json output on stdout stays one document.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(endpoint)))
    return provider


def _otlp_exporter(endpoint: str | None) -> Any:
    """An OTLP span exporter (HTTP if installed, else gRPC); its endpoint defaults to
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` as the exporter reads it."""
    options = {} if endpoint is None else {"endpoint": endpoint}
    errors = []
    # Imported by name: the exporter packages are optional, and not in spindle's extras.
    for module in _OTLP_MODULES:
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            errors.append(str(exc))
            continue
        return found.OTLPSpanExporter(**options)
    why = "; ".join(dict.fromkeys(errors))
    raise ConfigError(
        f"observer 'otel': exporter 'otlp' needs an OTLP exporter ({why}); "
        f"install one with: pip install opentelemetry-exporter-otlp-proto-http"
    )
