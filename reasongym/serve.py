"""`python -m reasongym serve`: reasongym's verifiers as an HTTP reward service for other RL engines.

Stack: Starlette on uvicorn (the ASGI pair FastAPI itself is built from, maintained, and already in a
vLLM install; no FastAPI layer is needed for four JSON routes). Scoring is CPU work, so it runs in
Starlette's thread pool, through a pool of ScoringEngines per env: every completion is scored in a
forked worker with a hard timeout, and a hung verifier holds one engine, not the server.

Routes (all but /health need `Authorization: Bearer <token>` unless started with --insecure-no-token):
  GET  /health       {"status": "ok", "envs": [...]}
  POST /score        {"items": [{"env", "env_kwargs"?, "task", "completion"}]} -> {"scores": [Score JSON]}
  POST /get_reward   OpenRLHF's remote reward: {"query", "prompts", "labels"} -> {"rewards", "scores", "extra_logs"}
  POST /verify       NeMo Gym's resources-server verify: the body, with "response" (an OpenAI Responses
                     object) and "reasongym": {"env", "task", "env_kwargs"?}, echoed back with "reward"
"""

from __future__ import annotations

import difflib
import hmac
import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from reasongym.errors import UnsafeScoringRefused
from reasongym.types import Task


class RequestError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServeConfig:
    token: str | None = None  # None only with the insecure flag
    max_body_bytes: int = 8 * 1024 * 1024
    max_items: int = 512
    default_env: str | None = None
    default_env_kwargs: dict[str, Any] = field(default_factory=dict)
    engines_per_env: int = 2
    timeout: float | None = None  # per completion; default: the env's score_timeout


class EnginePool:
    """`size` single-worker ScoringEngines for one env; a request borrows one for the length of its batch."""

    def __init__(self, env, size: int, timeout: float | None) -> None:
        from reasongym.scoring import ScoringEngine

        self.env = env
        self._free: queue.Queue = queue.Queue()
        for _ in range(size):
            self._free.put(ScoringEngine(workers=1, timeout=timeout or env.score_timeout))

    def score(self, completions: list[str], tasks: list[Task]) -> list:
        engine = self._free.get()
        try:
            return engine.score(self.env, completions, tasks).scores
        finally:
            self._free.put(engine)

    def close(self) -> None:
        while not self._free.empty():
            self._free.get_nowait().close()


class Scorer:
    """Envs made on first use, one engine pool each."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._pools: dict[str, EnginePool] = {}
        self._lock = threading.Lock()

    def pool(self, env_id: str, env_kwargs: dict[str, Any]) -> EnginePool:
        from reasongym import registry
        from reasongym.envargs import make_env

        key = json.dumps([env_id, env_kwargs], sort_keys=True)
        with self._lock:
            if key not in self._pools:
                if env_id not in {s.id for s in registry.list_envs()}:
                    close = difflib.get_close_matches(env_id, [s.id for s in registry.list_envs()], n=3)
                    raise RequestError(404, f"unknown env {env_id!r}" + (f"; did you mean {close}?" if close else ""))
                try:
                    env = make_env(env_id, env_kwargs)
                except Exception as exc:  # noqa: BLE001 - bad kwargs, data unavailable: the client's to fix
                    raise RequestError(422, f"cannot make {env_id!r}: {exc}") from None
                self._pools[key] = EnginePool(env, self.config.engines_per_env, self.config.timeout)
            return self._pools[key]

    def score(self, items: list[tuple[str, dict[str, Any], Task, str]]) -> list[dict[str, Any]]:
        """Scores for (env, env_kwargs, task, completion) items, in order, each env's items in one batch."""
        groups: dict[str, list[int]] = {}
        for i, (env_id, kwargs, _, _) in enumerate(items):
            groups.setdefault(json.dumps([env_id, kwargs], sort_keys=True), []).append(i)
        out: list[dict[str, Any]] = [{}] * len(items)
        for indices in groups.values():
            env_id, kwargs = items[indices[0]][0], items[indices[0]][1]
            scores = self.pool(env_id, kwargs).score([items[i][3] for i in indices], [items[i][2] for i in indices])
            for i, score in zip(indices, scores):
                out[i] = score.to_dict()
        return out

    def loaded(self) -> list[str]:
        return sorted({json.loads(key)[0] for key in self._pools})

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def _task(value: Any) -> Task:
    try:
        return Task.from_json(value) if isinstance(value, str) else Task.from_dict(value)
    except Exception as exc:  # noqa: BLE001 - a malformed task is the client's error
        raise RequestError(422, f"malformed task ({type(exc).__name__}: {str(exc)[:120]})") from None


def _label(label: Any, config: ServeConfig) -> tuple[str, dict[str, Any], Task]:
    """An OpenRLHF label: {"env", "task", "env_kwargs"?} as JSON, or a bare task with the server's --env."""
    data = json.loads(label) if isinstance(label, str) else label
    if isinstance(data, dict) and "task" in data:
        return str(data.get("env") or config.default_env or ""), dict(data.get("env_kwargs") or {}), _task(data["task"])
    if not config.default_env:
        raise RequestError(422, "a label without an env needs the server started with --env ID")
    return config.default_env, dict(config.default_env_kwargs), _task(data)


def response_text(response: Any) -> str:
    """The assistant text of an OpenAI Responses object (its output_text parts), or a plain string."""
    if isinstance(response, str):
        return response
    parts = []
    for item in (response or {}).get("output", []) if isinstance(response, dict) else []:
        for content in item.get("content", []) if isinstance(item, dict) else []:
            if isinstance(content, dict) and content.get("type") in ("output_text", "text"):
                parts.append(str(content.get("text", "")))
    return "".join(parts)


def create_app(config: ServeConfig):
    """The Starlette app (uvicorn serves it; tests run it in a subprocess over real HTTP)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    scorer = Scorer(config)

    async def body_of(request: Request) -> Any:
        if config.token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {config.token}".encode()):
                raise RequestError(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            if int(declared) <= 16 * config.max_body_bytes:  # read it away, so the client gets the reason, not a reset
                async for _ in request.stream():
                    pass
            raise RequestError(413, f"body over {config.max_body_bytes} bytes")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > config.max_body_bytes:
                raise RequestError(413, f"body over {config.max_body_bytes} bytes")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RequestError(400, f"malformed JSON ({exc})") from None

    def check_count(count: int) -> None:
        if count > config.max_items:
            raise RequestError(413, f"{count} items in one request; at most {config.max_items}")

    def handler(fn):
        async def endpoint(request: Request) -> JSONResponse:
            try:
                return JSONResponse(await fn(request))
            except RequestError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except UnsafeScoringRefused as exc:  # an env whose scorer would run model text, made without consent
                return JSONResponse({"error": str(exc)}, status_code=403)
            except (KeyError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": f"malformed request: {type(exc).__name__}: {exc}"}, status_code=422)
        return endpoint

    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "envs": scorer.loaded()}

    async def score(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        items = body["items"]
        check_count(len(items))
        parsed = [(str(it["env"]), dict(it.get("env_kwargs") or {}), _task(it["task"]), str(it["completion"]))
                  for it in items]
        return {"scores": await run_in_threadpool(scorer.score, parsed)}

    async def get_reward(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        queries, prompts, labels = body["query"], body.get("prompts") or [], body["labels"]
        check_count(len(queries))
        if len(labels) != len(queries):
            raise RequestError(422, f"{len(queries)} queries but {len(labels)} labels")
        items = []
        for i, (query, label) in enumerate(zip(queries, labels)):
            prompt = prompts[i] if i < len(prompts) else ""
            response = query[len(prompt):] if prompt and query.startswith(prompt) else query
            env_id, kwargs, task = _label(label, config)
            items.append((env_id, kwargs, task, response))
        scores = await run_in_threadpool(scorer.score, items)
        rewards = [s["reward"] for s in scores]
        return {"rewards": rewards, "scores": [float(s["outcome"] == "correct") for s in scores],
                "extra_logs": {"outcome_correct": [float(s["outcome"] == "correct") for s in scores]}}

    async def verify(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        meta = body["reasongym"]
        item = (str(meta["env"]), dict(meta.get("env_kwargs") or {}), _task(meta["task"]),
                response_text(body.get("response")))
        (result,) = await run_in_threadpool(scorer.score, [item])
        return {**body, "reward": result["reward"], "reward_components": result["components"],
                "outcome": result["outcome"]}

    @asynccontextmanager
    async def lifespan(app):
        yield
        scorer.close()

    routes = [Route("/health", handler(health), methods=["GET"]), Route("/score", handler(score), methods=["POST"]),
              Route("/get_reward", handler(get_reward), methods=["POST"]),
              Route("/verify", handler(verify), methods=["POST"])]
    return Starlette(routes=routes, lifespan=lifespan)
