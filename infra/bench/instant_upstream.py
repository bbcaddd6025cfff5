"""An OpenAI-compatible server that answers at once: the upstream for measuring what sits in front.

The gateway's ceiling and the load generator's own overhead are measured against it (a real
engine would be the bottleneck). It is a measuring instrument, not a stand-in for vLLM in tests
of behaviour: those run against the real engine on the stand.

    python -m infra.bench.instant_upstream --host 127.0.0.1 --port 9999 [--tokens 16] [--ttft-ms 0] [--itl-ms 0]

Endpoints: POST /v1/chat/completions and /v1/completions (streamed as server-sent events when
"stream": true, with a usage chunk when stream_options.include_usage is set, as vLLM does),
GET /v1/models, GET /health. The answer has min(max_tokens, --tokens) tokens ("tok" each); the
prompt's token count is its number of whitespace-separated words. Every request is counted in
``GET /stats`` so a benchmark can check that nothing was lost on the way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from aiohttp import web

MODEL = "instant"


def _prompt_tokens(body: dict) -> int:
    if "messages" in body:
        text = " ".join(str(m.get("content") or "") for m in body["messages"])
    else:
        text = str(body.get("prompt") or "")
    return max(1, len(text.split()))


class Upstream:
    def __init__(self, tokens: int, ttft_s: float, itl_s: float, model: str):
        self.tokens, self.ttft_s, self.itl_s, self.model = tokens, ttft_s, itl_s, model
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.complete)
        app.router.add_post("/v1/completions", self.complete)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", lambda _: web.Response(text=""))
        app.router.add_get("/stats", lambda _: web.json_response({"requests": self.requests}))
        return app

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests += 1
        chat = request.path.endswith("/chat/completions")
        n = max(1, min(int(body.get("max_tokens") or self.tokens), self.tokens))
        usage = {"prompt_tokens": _prompt_tokens(body), "completion_tokens": n,
                 "total_tokens": _prompt_tokens(body) + n}
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": body.get("model") or self.model}
        if self.ttft_s:
            await asyncio.sleep(self.ttft_s)
        if not body.get("stream"):
            await asyncio.sleep(self.itl_s * (n - 1))
            text = " ".join(["tok"] * n)
            choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                      if chat else {"index": 0, "text": text, "finish_reason": "length"})
            return web.json_response({**base, "object": "chat.completion" if chat else "text_completion",
                                      "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        for i in range(n):
            if i and self.itl_s:
                await asyncio.sleep(self.itl_s)
            last = i == n - 1
            choice = ({"index": 0, "delta": {"content": "tok" if i == 0 else " tok"}} if chat
                      else {"index": 0, "text": "tok" if i == 0 else " tok"})
            choice["finish_reason"] = "length" if last else None
            await response.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.instant_upstream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=16, help="tokens per answer (at most max_tokens)")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first token")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="delay between tokens")
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args(argv)
    upstream = Upstream(args.tokens, args.ttft_ms / 1000, args.itl_ms / 1000, args.model)
    web.run_app(upstream.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
