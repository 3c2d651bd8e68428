// An app behind the cloudrun-tasks handler (proxy mode, docs/proxy.md), with Node's own
// `http` module and nothing else. The handler claims each task, resolves its claim check and
// forwards it here; this app does the work and answers:
//   2xx                      done
//   4xx (not 408/409/423/425/429), e.g. 422   permanent: dead-lettered, never retried
//   5xx, 408, 429                            failed: retried by Cloud Tasks
//   no answer yet                            the handler keeps the task's claim until there is one
//
// Routes (any method but GET is a task):
//   GET  /healthz      200 once listening (the startup probe)
//   GET  /runs         the runs so far, as JSON (what the tests read)
//   POST /permanent    422: a task that can never succeed
//   POST /flaky?failures=N   503 while X-CloudTasks-TaskRetryCount < N (default 1), then done
//   POST /hang         never answers (the handler answers Cloud Tasks for it within its budget
//                      and keeps the task's claim while this app works)
//   POST /wait?name=N&status=S   answers S (default 200) once GET /release?name=N is asked:
//                      work that outlives the handler's budget for as long as a test wants
//   GET  /release?name=N   lets the /wait tasks named N answer
//   POST /sleep?ms=N   done after N ms (a stand-in for I/O-bound work: the benchmark's)
//   POST anything else the work: records the run, 200
//
// PORT: where to listen (default 8081; 0 picks a free port). Loopback only: the handler is
// the only caller, in the same Cloud Run instance (containers share localhost).
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const runs = [];
// name -> the answers of /wait tasks waiting for GET /release?name=
const waiting = new Map();
// The highest fencing generation applied per task: a delivery holding an older claim
// (its holder paused past its lease) must not overwrite a newer one's effect.
const fences = new Map();

function record(req, body) {
  const key = req.headers["x-task-idempotency-id"];
  const generation = Number(req.headers["x-task-fencing-generation"] || 0);
  const stale = fences.has(key) && fences.get(key) > generation;
  if (!stale) fences.set(key, generation);
  const run = {
    method: req.method,
    target: req.url,
    idempotencyId: key,
    fencingGeneration: generation,
    stale,
    traceparent: req.headers.traceparent || null,
    taskName: req.headers["x-cloudtasks-taskname"] || null,
    retryCount: Number(req.headers["x-cloudtasks-taskretrycount"] || 0),
    contentType: req.headers["content-type"] || null,
    bytes: body.length,
    sha256: crypto.createHash("sha256").update(body).digest("hex"),
  };
  runs.push(run);
  return run;
}

function answer(res, status, fields) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(fields));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && url.pathname === "/healthz") return answer(res, 200, { ok: true });
  if (req.method === "GET" && url.pathname === "/runs") return answer(res, 200, runs);
  if (req.method === "GET" && url.pathname === "/release") {
    const name = url.searchParams.get("name");
    const released = waiting.get(name) || [];
    waiting.delete(name);
    released.forEach((release) => release());
    return answer(res, 200, { released: released.length });
  }

  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const run = record(req, Buffer.concat(chunks));
    if (url.pathname === "/permanent") {
      return answer(res, 422, { error: "this task can never succeed" });
    }
    if (url.pathname === "/flaky" && run.retryCount < Number(url.searchParams.get("failures") || 1)) {
      return answer(res, 503, { error: `attempt ${run.retryCount + 1} fails` });
    }
    if (url.pathname === "/hang") return; // no answer: the handler answers 409 in time, claim kept
    if (url.pathname === "/wait") {
      const name = url.searchParams.get("name");
      const status = Number(url.searchParams.get("status") || 200);
      const release = () => answer(res, status, { done: run.idempotencyId });
      return waiting.set(name, [...(waiting.get(name) || []), release]);
    }
    if (url.pathname === "/sleep") {
      const ms = Number(url.searchParams.get("ms") || 0);
      return setTimeout(() => answer(res, 200, { done: run.idempotencyId }), ms);
    }
    answer(res, 200, { done: run.idempotencyId, stale: run.stale });
  });
});

// Longer than the handler keeps an idle connection unused between tasks, so that the
// handler rarely reuses one this server is closing (Node's default is 5 s).
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT || 8081), "127.0.0.1", () => {
  console.log(JSON.stringify({ message: "listening", port: server.address().port }));
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)) && server.closeAllConnections());
}
