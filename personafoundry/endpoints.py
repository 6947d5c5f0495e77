"""Resolve each role's endpoint, starting the embedded model only when one needs it.

An endpoint with a `base_url` is used as is and the embedded server is never started.
Endpoints without one share a single embedded llama.cpp server, started on a free
loopback port for the duration of the `with` block and stopped on exit, error or Ctrl-C.
The cache identity of the embedded endpoint is the model's SHA-256, not its random port,
so a resumed run hits the cache it filled before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from personafoundry.config import EmbeddedConfig, LlmConfig, LlmEndpoint
from personafoundry.llm import Endpoint

ROLES = ("generator", "critic")
EMBEDDED_TIMEOUT_S = 900.0


def needs_embedded(llm: LlmConfig) -> bool:
    return any(getattr(llm, role).base_url is None for role in ROLES)


def resolve_remote(role: str, settings: LlmEndpoint) -> Endpoint:
    """An endpoint the user configured; the key is read from its env var, never stored."""
    assert settings.base_url is not None
    dialect = "openai" if settings.dialect == "auto" else settings.dialect
    model = settings.model or "default"
    return Endpoint(
        role=role,
        base_url=settings.base_url.rstrip("/"),
        model=model,
        dialect=dialect,
        identity=settings.base_url.rstrip("/"),
        settings=settings,
        api_key=os.environ.get(settings.api_key_env, "not-needed"),
    )


def resolve_embedded(role: str, settings: LlmEndpoint, base_url: str, alias: str) -> Endpoint:
    from personafoundry.embedded import MODEL_SHA256

    dialect = "llamacpp" if settings.dialect == "auto" else settings.dialect
    # The llama.cpp server decodes one request at a time: more in flight would only wait in
    # its queue while their timeout runs. A 0.5B model on 2 busy cores can need minutes for
    # one reply, so the remote default timeout is raised unless the user set one.
    update: dict = {"max_concurrency": 1}
    if "timeout_s" not in settings.model_fields_set:
        update["timeout_s"] = EMBEDDED_TIMEOUT_S
    return Endpoint(
        role=role,
        base_url=base_url,
        model=alias,
        dialect=dialect,
        identity=f"embedded:{MODEL_SHA256}",
        settings=settings.model_copy(update=update),
    )


_ACTIVE: list = []  # the embedded server opened by an outer block of this process


@contextmanager
def open_endpoints(llm: LlmConfig, embedded: EmbeddedConfig) -> Iterator[dict[str, Endpoint]]:
    """Yield `{role: Endpoint}`; the embedded server lives exactly as long as the block.

    Re-entrant: a stage flow called inside the pipeline flow reuses the pipeline's server
    instead of starting a second one.
    """
    if not needs_embedded(llm):
        yield {role: resolve_remote(role, getattr(llm, role)) for role in ROLES}
        return
    if _ACTIVE:
        yield _resolve_all(llm, _ACTIVE[-1])
        return
    from personafoundry.embedded import EmbeddedServer

    with EmbeddedServer(embedded) as server:
        _ACTIVE.append(server)
        try:
            yield _resolve_all(llm, server)
        finally:
            _ACTIVE.remove(server)


def _resolve_all(llm: LlmConfig, server) -> dict[str, Endpoint]:
    resolved = {}
    for role in ROLES:
        settings: LlmEndpoint = getattr(llm, role)
        if settings.base_url is None:
            resolved[role] = resolve_embedded(role, settings, server.base_url, server.model)
        else:
            resolved[role] = resolve_remote(role, settings)
    return resolved
